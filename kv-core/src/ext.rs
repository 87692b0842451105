//! [`KvStoreExt`]: helpers built on [`KvStore`], for every store.

use std::collections::VecDeque;

use async_trait::async_trait;
use futures::stream::{self, BoxStream, StreamExt};

use crate::batch::Entry;
use crate::error::Result;
use crate::export::{self, ExportOptions};
use crate::key::Key;
use crate::options::{DEFAULT_LIST_LIMIT, ListOptions};
use crate::store::KvStore;

/// Helpers built on the [`KvStore`] methods. Implemented for every store by a
/// blanket impl; you must not implement it yourself.
///
/// ```
/// use futures::TryStreamExt;
/// use kv_core::{Key, KvStore, KvStoreExt, MemoryStore, SetOptions};
///
/// # tokio_test_block_on(async {
/// let store = MemoryStore::new();
/// for k in ["logs/1", "logs/2", "users/1"] {
///     store.set(&Key::new(k)?, "x".into(), SetOptions::default()).await?;
/// }
/// let logs: Vec<Key> = store.list_stream("logs/").try_collect().await?;
/// assert_eq!(logs, ["logs/1", "logs/2"]);
/// assert_eq!(store.clear("logs/").await?, 2);
/// assert_eq!(store.batch_exists(&[Key::new("logs/1")?, Key::new("users/1")?]).await?, [false, true]);
/// # Ok::<(), kv_core::Error>(())
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
/// # }
/// ```
#[async_trait]
pub trait KvStoreExt: KvStore {
    /// Every live key with `prefix`, ascending, fetched page by page
    /// ([`DEFAULT_LIST_LIMIT`] keys a page) as the stream is polled.
    fn list_stream<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<Key>>;

    /// Every live entry with `prefix`, ascending, each with its remaining
    /// TTL: see [`export_with`](Self::export_with); default options.
    fn export<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<Entry>>;

    /// Every live entry with `prefix`, in key order, each with its
    /// remaining TTL (`Entry::ttl`), in bounded memory: each page of keys is
    /// one [`list`](KvStore::list) and one
    /// [`batch_get_with_ttl`](KvStore::batch_get_with_ttl), and
    /// `options.read_ahead` pages are in flight at once (page N+1 is listed
    /// while page N is read).
    ///
    /// - Each key live through the export is yielded exactly once; a key
    ///   deleted or expired between its page's list and read is skipped.
    /// - Not a snapshot of the whole prefix: each page is read at its own
    ///   moment (one snapshot per page where `snapshot_batch_get`).
    /// - On a store that cannot list ([`listing`](crate::Capabilities::listing)
    ///   off) the first item is an `Unsupported` error.
    /// - The first error ends the stream; resume with
    ///   [`ExportOptions::start_after`] set to the last key received.
    ///
    /// ```
    /// use std::time::Duration;
    /// use futures::TryStreamExt;
    /// use kv_core::{Entry, ExportOptions, Key, KvStore, KvStoreExt, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let store = MemoryStore::new();
    /// store.batch_set(vec![
    ///     Entry::new(Key::new("s/1")?, "a").with_ttl(Duration::from_secs(60)),
    ///     Entry::new(Key::new("s/2")?, "b"),
    /// ]).await?;
    /// let all: Vec<Entry> = store.export_with("s/", ExportOptions::default().page_size(1)).try_collect().await?;
    /// assert_eq!(all.len(), 2);
    /// assert!(all[0].ttl.is_some_and(|left| left <= Duration::from_secs(60)));
    /// assert_eq!((all[1].value.as_ref(), all[1].ttl), (&b"b"[..], None));
    /// # Ok::<(), kv_core::Error>(())
    /// # });
    /// ```
    fn export_with<'a>(
        &'a self,
        prefix: &'a str,
        options: ExportOptions,
    ) -> BoxStream<'a, Result<Entry>>;

    /// Whether each key exists, aligned with the input; one `batch_get`.
    async fn batch_exists(&self, keys: &[Key]) -> Result<Vec<bool>>;

    /// Deletes every live key with `prefix`, in batches no larger than the
    /// backend's `max_batch_ops` (and at most 1000); returns how many were
    /// removed. Not atomic as a whole: each batch is. It lists the keys, so
    /// on a store that cannot list ([`listing`](crate::Capabilities::listing)
    /// off) it is `Unsupported` and deletes nothing.
    async fn clear(&self, prefix: &str) -> Result<u64>;
}

#[async_trait]
impl<S: KvStore + ?Sized> KvStoreExt for S {
    fn list_stream<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<Key>> {
        struct State {
            buffered: VecDeque<Key>,
            cursor: Option<Key>,
            done: bool,
        }
        let start = State {
            buffered: VecDeque::new(),
            cursor: None,
            done: false,
        };
        stream::try_unfold(start, move |mut state| async move {
            loop {
                if let Some(key) = state.buffered.pop_front() {
                    return Ok(Some((key, state)));
                }
                if state.done {
                    return Ok(None);
                }
                let options = ListOptions {
                    start_after: state.cursor.take(),
                    limit: Some(DEFAULT_LIST_LIMIT),
                };
                let page = self.list(prefix, options).await?;
                state.done = page.next.is_none();
                state.cursor = page.next;
                state.buffered.extend(page.keys);
            }
        })
        .boxed()
    }

    fn export<'a>(&'a self, prefix: &'a str) -> BoxStream<'a, Result<Entry>> {
        export::export(self, prefix, ExportOptions::default())
    }

    fn export_with<'a>(
        &'a self,
        prefix: &'a str,
        options: ExportOptions,
    ) -> BoxStream<'a, Result<Entry>> {
        export::export(self, prefix, options)
    }

    async fn batch_exists(&self, keys: &[Key]) -> Result<Vec<bool>> {
        let values = self.batch_get(keys).await?;
        Ok(values.iter().map(Option::is_some).collect())
    }

    async fn clear(&self, prefix: &str) -> Result<u64> {
        let chunk = self
            .capabilities()
            .max_batch_ops
            .map_or(1000, |max| max.clamp(1, 1000));
        let mut removed = 0;
        loop {
            // Always list from the start: the previous page is gone.
            let page = self
                .list(prefix, ListOptions::default().limit(chunk))
                .await?;
            if page.keys.is_empty() {
                return Ok(removed);
            }
            removed += self.batch_delete(&page.keys).await?;
            if page.next.is_none() {
                return Ok(removed);
            }
        }
    }
}
