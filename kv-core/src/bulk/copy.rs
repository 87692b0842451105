//! Copying a prefix from one store to another: export piped into a
//! [`BulkWriter`], TTLs kept, resumable, optionally verified.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::future::{BoxFuture, ready};
use futures::{StreamExt, TryStreamExt};

use super::{BulkItem, BulkReport, BulkWriter};
use crate::batch::Entry;
use crate::error::{Error, Result};
use crate::export::{ExportOptions, export, export_read};
use crate::key::Key;
use crate::store::KvStore;

/// How far a copied key's remaining TTL may differ from the source's when
/// verified, by default: the time between reading a page and writing it.
pub const DEFAULT_TTL_TOLERANCE: Duration = Duration::from_secs(10);

/// The most mismatched keys a [`VerifyReport`] names.
pub const MAX_REPORTED_MISMATCHES: usize = 100;

/// Options of [`copy`] and [`BulkWriter::copy_from`].
///
/// ```
/// use kv_core::{CopyOptions, Key};
///
/// let resume = CopyOptions::default().start_after(Key::new("users/0999")?).verify(true);
/// assert!(resume.verify);
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyOptions {
    /// Copy only keys after this one: pass a previous report's
    /// [`resume_after`](CopyReport::resume_after).
    pub start_after: Option<Key>,
    /// Keys per source page; `None` as in [`ExportOptions::page_size`].
    pub page_size: Option<usize>,
    /// After a complete copy, read both stores again and compare them.
    pub verify: bool,
    /// How far a copied TTL may be from the source's when verified.
    pub ttl_tolerance: Duration,
}

impl Default for CopyOptions {
    fn default() -> Self {
        Self {
            start_after: None,
            page_size: None,
            verify: false,
            ttl_tolerance: DEFAULT_TTL_TOLERANCE,
        }
    }
}

impl CopyOptions {
    /// Sets the key to resume after.
    pub fn start_after(mut self, key: Key) -> Self {
        self.start_after = Some(key);
        self
    }

    /// Sets the source page size.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Turns the verification pass on or off.
    pub fn verify(mut self, on: bool) -> Self {
        self.verify = on;
        self
    }
}

/// The outcome of a copy.
#[derive(Debug)]
#[must_use = "a copy reports failures here; check is_complete() or call into_result()"]
pub struct CopyReport {
    /// The load into the destination (chunks, keys, bytes, failures).
    pub load: BulkReport,
    /// Entries read from the source.
    pub keys_read: u64,
    /// The error that ended reading the source early, if one did.
    pub source_error: Option<Error>,
    /// When the copy is incomplete: every key up to and including this one
    /// has been copied (`None` here with an incomplete copy: nothing was);
    /// copy again with [`CopyOptions::start_after`] set to it. Keys after it
    /// may have been copied too: copying them again is harmless. `None`
    /// when the copy is complete.
    pub resume_after: Option<Key>,
    /// The verification pass, when asked for and the copy was complete.
    pub verify: Option<VerifyReport>,
}

impl CopyReport {
    /// Whether every key was read and written, and verified equal when
    /// verification ran.
    pub fn is_complete(&self) -> bool {
        self.source_error.is_none()
            && self.load.is_complete()
            && self.verify.as_ref().is_none_or(VerifyReport::is_ok)
    }

    /// `Ok(self)` when complete; else the first error: the source's, a
    /// failed chunk's, the verification's, or a `Backend` error counting
    /// the mismatches.
    ///
    /// # Errors
    ///
    /// As above.
    pub fn into_result(mut self) -> Result<Self> {
        if let Some(error) = self.source_error.take() {
            return Err(error);
        }
        self.load = std::mem::take(&mut self.load).into_result()?;
        if let Some(verify) = &mut self.verify {
            if let Some(error) = verify.error.take() {
                return Err(error);
            }
            if verify.mismatched > 0 {
                return Err(Error::new(
                    crate::ErrorKind::Backend,
                    "copy",
                    crate::Operation::BatchGetWithTtl,
                )
                .with_message(format!(
                    "verification found {} of {} keys different in the destination",
                    verify.mismatched, verify.checked
                )));
            }
        }
        Ok(self)
    }
}

/// What the verification pass of a copy found. It reads the source again
/// and compares each live key with the destination: same value, a TTL on
/// both or neither, the TTLs within the tolerance. It assumes nothing
/// writes to the source meanwhile.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Source keys compared.
    pub checked: u64,
    /// Keys missing or different in the destination.
    pub mismatched: u64,
    /// The first [`MAX_REPORTED_MISMATCHES`] of them.
    pub mismatched_keys: Vec<Key>,
    /// Keys missing in the destination that had also expired in the source
    /// by the time they were compared: not mismatches.
    pub expired_in_transit: u64,
    /// The error that stopped the pass early, if one did.
    pub error: Option<Error>,
}

impl VerifyReport {
    /// No mismatch and no error.
    pub fn is_ok(&self) -> bool {
        self.mismatched == 0 && self.error.is_none()
    }

    fn mismatch(&mut self, key: &Key) {
        self.mismatched += 1;
        if self.mismatched_keys.len() < MAX_REPORTED_MISMATCHES {
            self.mismatched_keys.push(key.clone());
        }
    }
}

/// Copies every live entry under `prefix` from `src` to `dst` with its
/// remaining TTL, through a [`BulkWriter`] with its defaults: see
/// [`BulkWriter::copy_from`].
///
/// ```
/// use std::time::Duration;
/// use kv_core::{CopyOptions, Entry, Key, KvStore, MemoryStore, copy};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> kv_core::Result<()> {
/// let (src, dst) = (MemoryStore::new(), MemoryStore::new().into_dyn());
/// src.batch_set(vec![
///     Entry::new(Key::new("sessions/a")?, "1").with_ttl(Duration::from_secs(60)),
///     Entry::new(Key::new("sessions/b")?, "2"),
/// ]).await?;
/// let report = copy(&src, dst.clone(), "sessions/", CopyOptions::default().verify(true))
///     .await
///     .into_result()?;
/// assert_eq!(report.load.keys_written, 2);
/// let copied = dst.batch_get_with_ttl(&[Key::new("sessions/a")?]).await?;
/// assert!(copied[0].as_ref().and_then(|e| e.ttl).is_some());
/// # Ok(())
/// # }
/// ```
pub async fn copy(
    src: &dyn KvStore,
    dst: Arc<dyn KvStore>,
    prefix: &str,
    options: CopyOptions,
) -> CopyReport {
    BulkWriter::new(dst).copy_from(src, prefix, options).await
}

/// What the copy saw of its input.
#[derive(Default)]
struct Seen {
    read: u64,
    /// The last key of each full chunk read.
    chunk_last: Vec<Key>,
    last: Option<Key>,
    error: Option<Error>,
}

/// An entry read from the source, with when it was read: its TTL is what
/// was left then. A chunk waits in the pipeline (filling up, for a permit,
/// between retries) for seconds on a slow source; it is written with what
/// is left at that moment, so a copy expires when the original does, not
/// later by the time it spent in transit.
#[derive(Clone)]
pub(crate) struct ReadEntry {
    entry: Entry,
    read_at: std::time::Instant,
}

impl ReadEntry {
    /// The entry as it is to be written now: its TTL less the time since it
    /// was read; `None` when that has run out (it expired in transit).
    fn now(&self) -> Option<Entry> {
        match self.entry.ttl {
            None => Some(self.entry.clone()),
            Some(ttl) => {
                let left = ttl.checked_sub(self.read_at.elapsed())?;
                (!left.is_zero()).then(|| Entry {
                    ttl: Some(left),
                    ..self.entry.clone()
                })
            }
        }
    }
}

impl BulkItem for ReadEntry {
    fn key(&self) -> &Key {
        &self.entry.key
    }

    fn bytes(&self) -> usize {
        self.entry.bytes()
    }

    fn apply<'a>(store: &'a dyn KvStore, chunk: &'a [Self]) -> BoxFuture<'a, Result<()>> {
        let entries: Vec<Entry> = chunk.iter().filter_map(ReadEntry::now).collect();
        Box::pin(async move {
            if entries.is_empty() {
                return Ok(());
            }
            store.batch_set(entries).await
        })
    }
}

impl BulkWriter {
    /// Copies every live entry under `prefix` from `src` into this writer's
    /// store, each with its remaining TTL (so a copied session expires when
    /// the original would have): the source's
    /// [`export`](crate::KvStoreExt::export_with) piped into
    /// [`write`](Self::write), in bounded memory, with this writer's chunks,
    /// concurrency, retries and progress.
    ///
    /// - Values are copied as they are, keys keep their names, and each TTL
    ///   is what is left when its chunk is written (the time a chunk spends
    ///   in transit is taken off; an entry whose TTL ran out meanwhile is not
    ///   written, as it would have expired).
    /// - An error reading the source ends the copy (the chunks read so far
    ///   are written); a failed chunk is reported as in any load. Either
    ///   way [`CopyReport::resume_after`] says where to start again.
    /// - With [`CopyOptions::verify`], a complete copy is followed by a
    ///   second pass comparing the stores ([`VerifyReport`]).
    /// - Not a snapshot: keys written to the source during the copy may or
    ///   may not be copied.
    pub async fn copy_from(
        &self,
        src: &dyn KvStore,
        prefix: &str,
        options: CopyOptions,
    ) -> CopyReport {
        let export_options = ExportOptions {
            page_size: options.page_size,
            start_after: options.start_after.clone(),
            ..ExportOptions::default()
        };
        let chunk = self.chunk_size as u64;
        let seen = Mutex::new(Seen::default());
        let items = export_read(src, prefix, export_options).scan((), |(), item| {
            let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
            ready(match item {
                Ok((entry, read_at)) => {
                    seen.read += 1;
                    if seen.read % chunk == 0 {
                        seen.chunk_last.push(entry.key.clone());
                    }
                    seen.last = Some(entry.key.clone());
                    Some(ReadEntry { entry, read_at })
                }
                Err(error) => {
                    seen.error = Some(error);
                    None
                }
            })
        });
        let load = self.write(items).await;
        let seen = seen.into_inner().unwrap_or_else(PoisonError::into_inner);
        let first_failed = load.first_failed_index;
        let resume_after = match first_failed {
            Some(0) => options.start_after.clone(),
            Some(failed) => usize::try_from(failed - 1)
                .ok()
                .and_then(|i| seen.chunk_last.get(i).cloned()),
            None if seen.error.is_some() => seen.last.or_else(|| options.start_after.clone()),
            None => None,
        };
        let complete = seen.error.is_none() && load.is_complete();
        let verify = if options.verify && complete {
            Some(self.verify_against(src, prefix, &options).await)
        } else {
            None
        };
        CopyReport {
            load,
            keys_read: seen.read,
            source_error: seen.error,
            resume_after,
            verify,
        }
    }

    /// The verification pass: every live source entry against this
    /// writer's store, a page at a time.
    async fn verify_against(
        &self,
        src: &dyn KvStore,
        prefix: &str,
        options: &CopyOptions,
    ) -> VerifyReport {
        // One page at a time: no source read is in flight while a page is
        // compared, so the source may be read again for missing keys even
        // when it has one connection (an in-memory SQLite store).
        let export_options = ExportOptions {
            page_size: options.page_size,
            start_after: options.start_after.clone(),
            read_ahead: 1,
        };
        let page = export_options
            .page_size_for(src)
            .min(export_options.page_size_for(&*self.store));
        let mut pages = export(src, prefix, export_options).try_chunks(page);
        let mut report = VerifyReport::default();
        while let Some(page) = pages.next().await {
            let page = match page {
                Ok(page) => page,
                Err(error) => {
                    report.error = Some(error.1);
                    break;
                }
            };
            if let Err(error) = self.verify_page(src, &page, options, &mut report).await {
                report.error = Some(error);
                break;
            }
        }
        report
    }

    /// Compares one page of source keys with the destination, and reads
    /// the source again for the keys missing there (expired in transit, or
    /// not copied).
    async fn verify_page(
        &self,
        src: &dyn KvStore,
        page: &[Entry],
        options: &CopyOptions,
        report: &mut VerifyReport,
    ) -> Result<()> {
        let keys: Vec<Key> = page.iter().map(|e| e.key.clone()).collect();
        let copied = self.store.batch_get_with_ttl(&keys).await?;
        let mut missing = Vec::new();
        for (original, copy) in page.iter().zip(copied) {
            report.checked += 1;
            match copy {
                None => missing.push(original.key.clone()),
                Some(copy) if !same(original, &copy, options.ttl_tolerance) => {
                    report.mismatch(&original.key);
                }
                Some(_) => {}
            }
        }
        if !missing.is_empty() {
            // Gone from the source too since it was read: it expired (or
            // was deleted) in transit.
            let still = src.batch_get(&missing).await?;
            for (key, value) in missing.iter().zip(still) {
                match value {
                    None => report.expired_in_transit += 1,
                    Some(_) => report.mismatch(key),
                }
            }
        }
        Ok(())
    }
}

/// Whether a copied entry matches its source: the same value, a TTL on
/// both or neither, within `tolerance` of each other.
fn same(original: &Entry, copy: &Entry, tolerance: Duration) -> bool {
    original.value == copy.value
        && match (original.ttl, copy.ttl) {
            (None, None) => true,
            (Some(a), Some(b)) => a.abs_diff(b) <= tolerance,
            _ => false,
        }
}
