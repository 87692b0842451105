//! Bulk export: every live entry under a prefix, with its remaining TTL,
//! as a stream of list pages read with
//! [`batch_get_with_ttl`](crate::KvStore::batch_get_with_ttl).

use std::time::Instant;

use futures::stream::{self, BoxStream, StreamExt, TryStreamExt};

use crate::batch::Entry;
use crate::error::Result;
use crate::key::Key;
use crate::options::{DEFAULT_LIST_LIMIT, ListOptions};
use crate::store::KvStore;

/// Pages read ahead by default: page N+1 is listed while page N is read.
pub const DEFAULT_READ_AHEAD: usize = 2;

/// Options of [`KvStoreExt::export_with`](crate::KvStoreExt::export_with).
///
/// ```
/// use kv_core::{ExportOptions, Key};
///
/// let resume = ExportOptions::default().page_size(500).start_after(Key::new("users/0499")?);
/// assert_eq!(resume.page_size, Some(500));
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOptions {
    /// Keys per page (one `list` and one `batch_get_with_ttl` each); `None`
    /// is the store's `max_batch_ops`, at most [`DEFAULT_LIST_LIMIT`]. A
    /// larger size is cut to `max_batch_ops`.
    pub page_size: Option<usize>,
    /// Export only keys after this one (exclusive): resumes an export.
    pub start_after: Option<Key>,
    /// Pages in flight at once, at least 1: memory holds about
    /// `read_ahead x page_size` entries. Default [`DEFAULT_READ_AHEAD`].
    pub read_ahead: usize,
}

impl Default for ExportOptions {
    fn default() -> Self {
        Self {
            page_size: None,
            start_after: None,
            read_ahead: DEFAULT_READ_AHEAD,
        }
    }
}

impl ExportOptions {
    /// Sets the page size.
    pub fn page_size(mut self, size: usize) -> Self {
        self.page_size = Some(size);
        self
    }

    /// Sets the key to resume after.
    pub fn start_after(mut self, key: Key) -> Self {
        self.start_after = Some(key);
        self
    }

    /// Sets the number of pages in flight.
    pub fn read_ahead(mut self, pages: usize) -> Self {
        self.read_ahead = pages;
        self
    }

    /// The page size for `store`: the option, cut to `max_batch_ops` and
    /// to [`MAX_LIST_LIMIT`](crate::MAX_LIST_LIMIT).
    pub(crate) fn page_size_for(&self, store: &(impl KvStore + ?Sized)) -> usize {
        let max = store.capabilities().max_batch_ops;
        let wanted = self
            .page_size
            .unwrap_or_else(|| max.unwrap_or(DEFAULT_LIST_LIMIT).min(DEFAULT_LIST_LIMIT));
        max.map_or(wanted, |max| wanted.min(max))
            .clamp(1, crate::options::MAX_LIST_LIMIT)
    }
}

/// The stream behind `export_with`.
pub(crate) fn export<'a, S: KvStore + ?Sized>(
    store: &'a S,
    prefix: &'a str,
    options: ExportOptions,
) -> BoxStream<'a, Result<Entry>> {
    export_read(store, prefix, options)
        .map_ok(|(entry, _)| entry)
        .boxed()
}

/// [`export`], each entry with when its page was read: its TTL is what was
/// left at that moment (a copy takes the time since off before writing).
pub(crate) fn export_read<'a, S: KvStore + ?Sized>(
    store: &'a S,
    prefix: &'a str,
    options: ExportOptions,
) -> BoxStream<'a, Result<(Entry, Instant)>> {
    let limit = options.page_size_for(store);
    // `Some(cursor)` while pages remain; the first page starts at the option.
    let pages = stream::try_unfold(Some(options.start_after), move |cursor| async move {
        let Some(start_after) = cursor else {
            return Ok(None);
        };
        let page = store
            .list(
                prefix,
                ListOptions {
                    start_after,
                    limit: Some(limit),
                },
            )
            .await?;
        if page.keys.is_empty() {
            return Ok(None);
        }
        let next = page.next.map(Some);
        Ok(Some((page.keys, next)))
    });
    pages
        .map_ok(move |keys| async move {
            let found = store.batch_get_with_ttl(&keys).await?;
            Ok((found, Instant::now()))
        })
        .try_buffered(options.read_ahead.max(1))
        // A key listed but gone by the read was deleted or expired between.
        .map_ok(|(found, read_at)| {
            stream::iter(
                found
                    .into_iter()
                    .flatten()
                    .map(move |entry| Ok((entry, read_at))),
            )
        })
        .try_flatten()
        // The first error ends the stream: pages read ahead of it would
        // leave a gap before the cursor the caller resumes from.
        .scan(false, |failed, item| {
            if *failed {
                return futures::future::ready(None);
            }
            *failed = item.is_err();
            futures::future::ready(Some(item))
        })
        .boxed()
}
