//! A bulk import with a progress bar: 200,000 records (or the lines of a
//! `key<TAB>value` file) written through the BulkWriter in native batches,
//! several at once, in bounded memory.
//!
//! ```text
//! cargo run --release --example bulk_import                          # memory://, generated records
//! cargo run --release --example bulk_import -- redis://127.0.0.1:6379 data.tsv
//! ```

use std::io::BufRead;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().unwrap_or_else(|| "memory://".to_owned());
    let file = args.next();
    let kv = kv::connect(&url).await?.namespace("import")?;

    // The input is an iterator: the writer pulls from it only when a slot
    // is free, so a file of any size is never read into memory whole.
    let (records, total): (Box<dyn Iterator<Item = (String, String)> + Send>, u64) = match &file {
        Some(path) => {
            let lines = std::io::BufReader::new(std::fs::File::open(path)?).lines();
            let records = lines.map_while(Result::ok).filter_map(|line| {
                let (key, value) = line.split_once('\t')?;
                Some((key.to_owned(), value.to_owned()))
            });
            (Box::new(records), 0) // length unknown: a spinner
        }
        None => {
            let n = 200_000u64;
            let records =
                (0..n).map(|i| (format!("record:{i:07}"), format!("value of record {i}")));
            (Box::new(records), n)
        }
    };

    // 500 keys per native batch, or the store's limit if lower (etcd: 128).
    let writer = kv.bulk_writer().chunk_size(500).concurrency(4);
    println!("{} keys per batch, 4 batches in flight", writer.chunk_len());
    let progress = writer.progress(); // a watch channel, updated per chunk
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(ProgressStyle::with_template(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} keys {msg}",
    )?);
    let watch = {
        let (bar, mut progress) = (bar.clone(), progress.clone());
        tokio::spawn(async move {
            while progress.changed().await.is_ok() {
                let p = progress.borrow_and_update().clone();
                bar.set_position(p.keys_done);
                bar.set_message(format!(
                    "{:.0} keys/s, {} retries",
                    p.keys_per_sec(),
                    p.retries
                ));
            }
        })
    };

    let ttl = Some(Duration::from_secs(24 * 3600));
    let report = kv.bulk_set_with(&writer, records, ttl).await;
    watch.abort();
    bar.finish();

    println!(
        "{} keys in {} batches, {:.0} keys/s",
        report.keys_written,
        report.chunks_written,
        report.keys_per_sec()
    );
    // A failed chunk names its keys and its error; the rest were written.
    if !report.is_complete() {
        for failed in report.failed.iter().take(3) {
            let first = failed.keys.first().map(|k| k.as_str());
            eprintln!(
                "failed: {} keys from {first:?}: {}",
                failed.keys.len(),
                failed.error
            );
        }
        return Err(format!("{} chunks failed", report.chunks_failed).into());
    }
    kv.clear().await?;
    Ok(())
}
