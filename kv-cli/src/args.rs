//! The command line, as clap derive types.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::units::{parse_duration, parse_size};

/// Inspect, load, export, copy and benchmark any kv store by URL.
///
/// Exit codes: 0 success, 1 an error (one line on stderr with its kind),
/// 2 a usage error.
#[derive(Debug, Parser)]
#[command(name = "kv", version, about, long_about = None)]
pub(crate) struct Cli {
    /// The store: `redis://`, `postgres://`, `mysql://`, `rocksdb:///path`,
    /// `sqlite:///path.db`, `etcd://`, `mongodb://` or `memory://`
    /// (passwords are never printed).
    #[arg(long, env = "KV_URL", global = true, hide_env_values = true)]
    pub(crate) url: Option<String>,

    /// No progress bar (one is shown on a terminal only).
    #[arg(long, short, global = true)]
    pub(crate) quiet: bool,

    /// Say more on stderr: the store's redacted URL and capabilities, each
    /// error's causes, timings.
    #[arg(long, short, global = true)]
    pub(crate) verbose: bool,

    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print a key's value (raw bytes, as stored).
    Get {
        /// The key.
        key: String,
    },
    /// Write a key.
    Set {
        /// The key.
        key: String,
        /// The value (or `--file`).
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        value: Option<String>,
        /// Read the value from this file (`-` for stdin).
        #[arg(long, short)]
        file: Option<PathBuf>,
        /// Time to live, e.g. `30s`, `15m`, `2h 30m`.
        #[arg(long, value_parser = parse_duration)]
        ttl: Option<Duration>,
    },
    /// Delete keys in one batch; prints how many existed.
    #[command(alias = "delete")]
    Del {
        /// The keys.
        #[arg(required = true)]
        keys: Vec<String>,
    },
    /// Print `true` or `false`.
    Exists {
        /// The key.
        key: String,
    },
    /// Print a key's remaining time to live (`none` without one).
    Ttl {
        /// The key.
        key: String,
    },
    /// List keys under a prefix in key order, one per line.
    List(ListArgs),
    /// Write every entry under a prefix as JSON Lines, with remaining TTLs.
    Export(ExportArgs),
    /// Load JSON Lines (the export format) through the bulk writer.
    Import(ImportArgs),
    /// Copy every entry under a prefix from `--url` to `--to`, with TTLs.
    Copy(CopyArgs),
    /// Measure operations per second and latency percentiles.
    Bench(BenchArgs),
    /// Print the backend, its capabilities and the round-trip latency.
    Info,
}

/// `kv list`.
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only keys starting with this (literal: no wildcards).
    #[arg(default_value = "")]
    pub(crate) prefix: String,
    /// At most this many keys.
    #[arg(long, default_value_t = 1000, conflicts_with = "all")]
    pub(crate) limit: usize,
    /// Every key, page after page.
    #[arg(long)]
    pub(crate) all: bool,
    /// Start after this key (what a previous page ended with).
    #[arg(long)]
    pub(crate) start_after: Option<String>,
    /// A JSON array of strings instead of lines.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `kv export`.
#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Only keys starting with this.
    #[arg(default_value = "")]
    pub(crate) prefix: String,
    /// Write here instead of stdout.
    #[arg(long, short)]
    pub(crate) output: Option<PathBuf>,
    /// Start after this key.
    #[arg(long)]
    pub(crate) start_after: Option<String>,
}

/// Bulk-writer settings shared by `import` and `copy`.
#[derive(Debug, Args)]
pub(crate) struct LoadArgs {
    /// Entries per batch (default: the store's limit, at most 1000).
    #[arg(long)]
    pub(crate) batch: Option<usize>,
    /// Batches in flight at once.
    #[arg(long, default_value_t = kv::DEFAULT_CONCURRENCY)]
    pub(crate) concurrency: usize,
}

/// `kv import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A JSON Lines file, or `-` for stdin.
    pub(crate) file: PathBuf,
    /// Stop at the first bad line instead of skipping it. From a file,
    /// every line is checked before the first write.
    #[arg(long)]
    pub(crate) strict: bool,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

/// `kv copy`.
#[derive(Debug, Args)]
pub(crate) struct CopyArgs {
    /// The destination store.
    #[arg(long, env = "KV_TO_URL", hide_env_values = true)]
    pub(crate) to: String,
    /// Only keys starting with this.
    #[arg(default_value = "")]
    pub(crate) prefix: String,
    /// Read both stores again afterwards and compare every entry.
    #[arg(long)]
    pub(crate) verify: bool,
    /// Resume: copy only keys after this one (a failed copy prints it).
    #[arg(long)]
    pub(crate) start_after: Option<String>,
    #[command(flatten)]
    pub(crate) load: LoadArgs,
}

/// `kv bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Operations to measure, in order: set, get, exists, batch_set,
    /// batch_get.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "set,get,batch_set,batch_get"
    )]
    pub(crate) ops: Vec<String>,
    /// Keys per batch operation.
    #[arg(long, default_value_t = 100)]
    pub(crate) batch: usize,
    /// Bytes per value, e.g. `100`, `1KiB`, `4kB`.
    #[arg(long, default_value = "100", value_parser = parse_size)]
    pub(crate) value_size: usize,
    /// How long to run each operation.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Calls in flight at once.
    #[arg(long, default_value_t = 4)]
    pub(crate) concurrency: usize,
    /// Where the bench writes its keys (removed afterwards).
    #[arg(long, default_value = "kv-bench/")]
    pub(crate) prefix: String,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
