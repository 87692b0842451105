//! `kv`: the command line of the kv library. See the crate README for every
//! command with its output.

mod args;
mod commands;
mod failure;
mod jsonl;
mod progress;
mod units;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;
use crate::failure::{Failure, Secrets};

fn main() -> ExitCode {
    // Usage errors end here with clap's message and exit code 2.
    let cli = Cli::parse();
    let secrets = Secrets::of(
        cli.url
            .iter()
            .map(String::as_str)
            .chain(commands::other_urls(&cli)),
    );
    let verbose = cli.verbose;
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::io("starting the runtime", &e))
        .and_then(|runtime| runtime.block_on(commands::run(cli, &secrets)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) if failure.broken_pipe => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{}", secrets.scrub(&failure.to_string()));
            if let Some(detail) = failure.detail.as_ref().filter(|_| verbose) {
                eprintln!("kv: detail: {}", secrets.scrub(detail));
            }
            failure.exit_code()
        }
    }
}
