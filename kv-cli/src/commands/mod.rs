//! One module per group of commands; [`run`] picks the command.

mod bench;
mod info;
mod keys;
mod transfer;

use std::io::Write;
use std::sync::Arc;

use kv::{Key, KvStore};

use crate::args::{Cli, Command};
use crate::failure::{Failure, Outcome, Secrets};

/// What every command gets: the store's URL and the output settings.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    url: Option<String>,
    /// No progress bar, no summary line.
    pub(crate) quiet: bool,
    /// Say more on stderr.
    pub(crate) verbose: bool,
    secrets: &'a Secrets,
}

impl Ctx<'_> {
    /// Opens the store of `--url` / `KV_URL`.
    pub(crate) async fn store(&self) -> Outcome<Arc<dyn KvStore>> {
        let url = self
            .url
            .as_deref()
            .ok_or_else(|| Failure::usage("no store given: pass --url URL or set KV_URL"))?;
        self.open(url).await
    }

    /// Opens the store at `url`.
    pub(crate) async fn open(&self, url: &str) -> Outcome<Arc<dyn KvStore>> {
        let started = std::time::Instant::now();
        let store = kv::connect_store(url)
            .await
            .map_err(|e| Failure::store(&format!("connecting to {}", kv::redact_url(url)), &e))?;
        self.say(&format!(
            "connected to {} ({}) in {}",
            kv::redact_url(url),
            store.backend(),
            crate::units::show_duration(started.elapsed())
        ));
        Ok(store)
    }

    /// The store's URL with its password replaced.
    pub(crate) fn redacted_url(&self) -> String {
        self.secrets
            .scrub(&kv::redact_url(self.url.as_deref().unwrap_or_default()))
    }

    /// A line on stderr with `--verbose`, secrets scrubbed.
    pub(crate) fn say(&self, line: &str) {
        if self.verbose {
            eprintln!("kv: {}", self.secrets.scrub(line));
        }
    }

    /// A summary line on stderr unless `--quiet`, secrets scrubbed.
    pub(crate) fn summary(&self, line: &str) {
        if !self.quiet {
            eprintln!("kv: {}", self.secrets.scrub(line));
        }
    }
}

/// URLs other than `--url` on the command line (`copy --to`), whose
/// secrets are scrubbed too.
pub(crate) fn other_urls(cli: &Cli) -> Option<&str> {
    match &cli.command {
        Command::Copy(args) => Some(args.to.as_str()),
        _ => None,
    }
}

/// Runs the command.
pub(crate) async fn run(cli: Cli, secrets: &Secrets) -> Outcome {
    let ctx = Ctx {
        url: cli.url,
        quiet: cli.quiet,
        verbose: cli.verbose,
        secrets,
    };
    match cli.command {
        Command::Get { key } => keys::get(&ctx, &key).await,
        Command::Set {
            key,
            value,
            file,
            ttl,
        } => keys::set(&ctx, &key, value, file.as_deref(), ttl).await,
        Command::Del { keys } => keys::del(&ctx, &keys).await,
        Command::Exists { key } => keys::exists(&ctx, &key).await,
        Command::Ttl { key } => keys::ttl(&ctx, &key).await,
        Command::List(args) => keys::list(&ctx, args).await,
        Command::Export(args) => transfer::export(&ctx, args).await,
        Command::Import(args) => transfer::import(&ctx, args).await,
        Command::Copy(args) => transfer::copy(&ctx, args).await,
        Command::Bench(args) => bench::run(&ctx, args).await,
        Command::Info => info::run(&ctx).await,
    }
}

/// A key from the command line; a bad one is a usage error.
fn key(text: &str) -> Outcome<Key> {
    Key::new(text).map_err(|e| Failure::usage(format!("bad key {text:?}: {e}")))
}

/// Writes to stdout, mapping a failure (a closed pipe ends quietly).
fn print(out: &mut impl Write, bytes: &[u8]) -> Outcome {
    out.write_all(bytes)
        .map_err(|e| Failure::io("writing to stdout", &e))
}

/// A `--batch` the store accepts: at least 1, at most its `max_batch_ops`.
fn check_batch(store: &dyn KvStore, batch: usize) -> Outcome {
    if batch == 0 {
        return Err(Failure::usage("--batch must be at least 1"));
    }
    match store.capabilities().max_batch_ops {
        Some(max) if batch > max => Err(Failure::usage(format!(
            "--batch {batch} is over this {} store's limit of {max} keys per batch",
            store.backend()
        ))),
        _ => Ok(()),
    }
}
