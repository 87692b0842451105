//! `export`, `import` and `copy`: whole prefixes, streamed in bounded
//! memory, TTLs kept.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use futures::StreamExt;
use kv::{BulkReport, BulkWriter, CopyOptions, Entry, ExportOptions, Key, KvStoreExt};
use tokio::sync::mpsc;

use super::{Ctx, key};
use crate::args::{CopyArgs, ExportArgs, ImportArgs, LoadArgs};
use crate::failure::{Failure, Outcome};
use crate::jsonl;
use crate::progress::{self, Bar};
use crate::units::show_count;

/// Entries read ahead of the bulk writer by the import's reader thread.
const READ_AHEAD: usize = 4096;

/// `kv export [PREFIX] [-o FILE]`: JSON Lines on stdout or into a file.
pub(crate) async fn export(ctx: &Ctx<'_>, args: ExportArgs) -> Outcome {
    let start_after = args.start_after.as_deref().map(key).transpose()?;
    let store = ctx.store().await?;
    let sink: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(
            File::create(path)
                .map_err(|e| Failure::io(&format!("creating {}", path.display()), &e))?,
        ),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut out = BufWriter::with_capacity(1 << 16, sink);
    // A bar only when the lines go to a file: on stdout it would mix with them
    // on a terminal.
    let bar = Bar::new(ctx.quiet || args.output.is_none(), None);
    let started = Instant::now();
    let options = ExportOptions {
        start_after,
        ..ExportOptions::default()
    };
    let mut entries = store.export_with(&args.prefix, options);
    let (mut keys, mut bytes) = (0u64, 0u64);
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(|e| {
            Failure::store(&format!("export after {} entries", show_count(keys)), &e)
        })?;
        jsonl::write_line(&mut out, &entry).map_err(|e| Failure::io("writing the export", &e))?;
        keys += 1;
        bytes += (entry.key.as_str().len() + entry.value.len()) as u64;
        if keys % 1024 == 0 {
            bar.show(keys, bytes, rate(keys, started), None);
        }
    }
    out.flush()
        .map_err(|e| Failure::io("writing the export", &e))?;
    bar.finish();
    ctx.summary(&format!(
        "exported {} entries ({} of keys and values) in {:.2}s",
        show_count(keys),
        indicatif::HumanBytes(bytes),
        started.elapsed().as_secs_f64()
    ));
    Ok(())
}

/// What the import's reader saw.
#[derive(Debug, Default)]
struct Reading {
    lines: u64,
    bad: u64,
    /// The bad line that stopped a `--strict` import, and why.
    fatal: Option<String>,
    io_error: Option<std::io::Error>,
}

/// `kv import FILE|-`: JSON Lines through the bulk writer.
pub(crate) async fn import(ctx: &Ctx<'_>, args: ImportArgs) -> Outcome {
    let from_stdin = args.file == Path::new("-");
    // From a file, --strict checks every line before the first write, so a
    // bad file changes nothing.
    if args.strict && !from_stdin {
        check_file(&args.file)?;
    }
    let total = if from_stdin {
        None
    } else {
        let meta = std::fs::metadata(&args.file)
            .map_err(|e| Failure::io(&format!("reading {}", args.file.display()), &e))?;
        Some(meta.len())
    };
    let input: Box<dyn BufRead + Send> = if from_stdin {
        Box::new(BufReader::new(std::io::stdin()))
    } else {
        Box::new(BufReader::new(File::open(&args.file).map_err(|e| {
            Failure::io(&format!("opening {}", args.file.display()), &e)
        })?))
    };
    let store = ctx.store().await?;
    let writer = writer(store, &args.load)?;
    let read = Arc::new(AtomicU64::new(0));
    let (tx, mut rx) = mpsc::channel::<Entry>(READ_AHEAD);
    let strict = args.strict;
    let reader = {
        let read = read.clone();
        let name = args.file.display().to_string();
        tokio::task::spawn_blocking(move || read_lines(input, &tx, &read, strict, &name))
    };
    let bar = Bar::new(ctx.quiet, total);
    let follow = tokio::spawn(progress::follow(bar.clone(), writer.progress(), Some(read)));
    let entries = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let report = writer.write(entries).await;
    follow.abort();
    bar.finish();
    let reading = reader
        .await
        .map_err(|e| Failure::new(format!("the reader thread failed: {e}")))?;
    if let Some(error) = reading.io_error {
        return Err(Failure::io(
            &format!(
                "reading {} (after {} entries were written)",
                args.file.display(),
                show_count(report.keys_written)
            ),
            &error,
        ));
    }
    if let Some(why) = reading.fatal {
        return Err(Failure::new(format!(
            "{why}; --strict stopped the import there: the {} entries before it were written",
            show_count(report.keys_written)
        )));
    }
    ctx.summary(&format!(
        "imported {} entries from {} lines in {:.2}s ({:.0} keys/s){}",
        show_count(report.keys_written),
        show_count(reading.lines),
        report.elapsed.as_secs_f64(),
        report.keys_per_sec(),
        if reading.bad > 0 {
            format!("; skipped {} bad lines", show_count(reading.bad))
        } else {
            String::new()
        }
    ));
    load_result("import", &report, "")
}

/// Reads JSON Lines into `tx` (on a thread of its own: std I/O blocks).
fn read_lines(
    input: Box<dyn BufRead + Send>,
    tx: &mpsc::Sender<Entry>,
    read: &AtomicU64,
    strict: bool,
    name: &str,
) -> Reading {
    let mut reading = Reading::default();
    let mut input = input;
    let mut line = String::new();
    loop {
        line.clear();
        let n = match input.read_line(&mut line) {
            Ok(0) => return reading,
            Ok(n) => n,
            Err(error) => {
                reading.io_error = Some(error);
                return reading;
            }
        };
        reading.lines += 1;
        read.fetch_add(n as u64, Ordering::Relaxed);
        match jsonl::read_line(line.trim_end_matches(['\n', '\r'])) {
            Ok(Some(entry)) => {
                // The writer is gone only when the load ended early.
                if tx.blocking_send(entry).is_err() {
                    return reading;
                }
            }
            Ok(None) => {}
            Err(why) => {
                let why = bad_line(name, reading.lines, &why);
                if strict {
                    reading.fatal = Some(why);
                    return reading;
                }
                eprintln!("kv: skipped {why}");
                reading.bad += 1;
            }
        }
    }
}

/// `--strict` from a file: every line must parse before anything is written.
fn check_file(path: &Path) -> Outcome {
    let file =
        File::open(path).map_err(|e| Failure::io(&format!("opening {}", path.display()), &e))?;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Failure::io(&format!("reading {}", path.display()), &e))?;
        if let Err(why) = jsonl::read_line(&line) {
            let line = bad_line(&path.display().to_string(), n as u64 + 1, &why);
            return Err(Failure::new(format!(
                "{line}; --strict: nothing was written"
            )));
        }
    }
    Ok(())
}

/// `kv copy --url SRC --to DST [PREFIX]`.
pub(crate) async fn copy(ctx: &Ctx<'_>, args: CopyArgs) -> Outcome {
    let start_after = args.start_after.as_deref().map(key).transpose()?;
    let src = ctx.store().await?;
    let dst = ctx.open(&args.to).await?;
    let writer = writer(dst, &args.load)?;
    let bar = Bar::new(ctx.quiet, None);
    let follow = tokio::spawn(progress::follow(bar.clone(), writer.progress(), None));
    let options = CopyOptions {
        start_after,
        verify: args.verify,
        ..CopyOptions::default()
    };
    let report = writer.copy_from(&*src, &args.prefix, options).await;
    follow.abort();
    bar.finish();
    let resume = report
        .resume_after
        .as_ref()
        .map(|k| format!("; resume with --start-after {:?}", k.as_str()))
        .unwrap_or_default();
    if let Some(error) = &report.source_error {
        return Err(Failure::store(
            &format!(
                "reading the source after {} entries{resume}",
                show_count(report.keys_read)
            ),
            error,
        ));
    }
    load_result("copy", &report.load, &resume)?;
    ctx.summary(&format!(
        "copied {} entries in {:.2}s ({:.0} keys/s, {} retries)",
        show_count(report.load.keys_written),
        report.load.elapsed.as_secs_f64(),
        report.load.keys_per_sec(),
        report.load.retries
    ));
    if let Some(verify) = &report.verify {
        if let Some(error) = &verify.error {
            return Err(Failure::store("verifying the copy", error));
        }
        if verify.mismatched > 0 {
            let shown: Vec<&str> = verify.mismatched_keys.iter().map(|k| k.as_str()).collect();
            return Err(Failure::new(format!(
                "verify: {} of {} keys differ in the destination (first: {shown:?})",
                show_count(verify.mismatched),
                show_count(verify.checked)
            )));
        }
        ctx.summary(&format!(
            "verified {} entries: the destination matches{}",
            show_count(verify.checked),
            if verify.expired_in_transit > 0 {
                format!(" ({} expired on the way)", verify.expired_in_transit)
            } else {
                String::new()
            }
        ));
    }
    Ok(())
}

fn writer(store: Arc<dyn kv::KvStore>, load: &LoadArgs) -> Outcome<BulkWriter> {
    if load.concurrency == 0 {
        return Err(Failure::usage("--concurrency must be at least 1"));
    }
    if let Some(batch) = load.batch {
        super::check_batch(&*store, batch)?;
    }
    let mut writer = BulkWriter::new(store).concurrency(load.concurrency);
    if let Some(batch) = load.batch {
        writer = writer.chunk_size(batch);
    }
    Ok(writer)
}

/// A load's failed chunks as the command's error; `after` ends the message
/// (the copy's resume hint).
fn load_result(what: &str, report: &BulkReport, after: &str) -> Outcome {
    let Some(failed) = report.failed.first() else {
        return Ok(());
    };
    Err(Failure::store(
        &format!(
            "{what}: {} of {} chunks failed ({} keys, first {:?}){after}",
            report.chunks_failed,
            report.chunks_failed + report.chunks_written,
            show_count(report.keys_failed),
            failed.keys.first().map(Key::as_str).unwrap_or_default()
        ),
        &failed.error,
    ))
}

/// How a bad input line is named in every message.
fn bad_line(name: &str, number: u64, why: &str) -> String {
    format!("{name}: line {number}: {why}")
}

fn rate(keys: u64, started: Instant) -> f64 {
    keys as f64 / started.elapsed().as_secs_f64().max(1e-9)
}
