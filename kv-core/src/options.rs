//! Per-operation options and the listing page: [`SetOptions`],
//! [`ListOptions`], [`Page`].

use std::time::Duration;

use crate::key::Key;

/// The largest TTL accepted: ten years. Store without a TTL to keep a key
/// forever.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// The page size `list` uses when [`ListOptions::limit`] is `None`.
pub const DEFAULT_LIST_LIMIT: usize = 1000;

/// The largest page [`KvStore::list`](crate::KvStore::list) returns: a
/// larger [`ListOptions::limit`] is
/// [`ErrorKind::InvalidArgument`](crate::ErrorKind) on every backend. It
/// bounds the work of one call on the server (Redis walks its index in one
/// script on its single thread) and the memory of one page; read more with
/// more pages ([`Page::next`]) or
/// [`KvStoreExt::list_stream`](crate::KvStoreExt::list_stream).
pub const MAX_LIST_LIMIT: usize = 10_000;

/// Options of a single write.
///
/// ```
/// use std::time::Duration;
/// use kv_core::SetOptions;
///
/// let forever = SetOptions::default();
/// assert_eq!(forever.ttl, None);
/// let short = SetOptions::ttl(Duration::from_secs(30));
/// assert_eq!(short.ttl, Some(Duration::from_secs(30)));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SetOptions {
    /// Time to live, millisecond precision (rounded up to a whole
    /// millisecond). `None` keeps the key until it is deleted, and clears any
    /// TTL the key had. Zero or more than [`MAX_TTL`] is
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind).
    pub ttl: Option<Duration>,
}

impl SetOptions {
    /// Options with a TTL.
    pub fn ttl(ttl: Duration) -> Self {
        Self { ttl: Some(ttl) }
    }
}

/// Options of [`KvStore::list`](crate::KvStore::list).
///
/// ```
/// use kv_core::{Key, ListOptions};
///
/// let first = ListOptions::default().limit(100);
/// let next = ListOptions::default().limit(100).start_after(Key::new("users/0099")?);
/// assert_eq!(first.limit, Some(100));
/// assert!(next.start_after.is_some());
/// # Ok::<(), kv_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Resume after this key (exclusive): pass the previous page's
    /// [`Page::next`].
    pub start_after: Option<Key>,
    /// The most keys in one page; `None` is [`DEFAULT_LIST_LIMIT`]; zero or
    /// more than [`MAX_LIST_LIMIT`] is
    /// [`ErrorKind::InvalidArgument`](crate::ErrorKind).
    pub limit: Option<usize>,
}

impl ListOptions {
    /// Sets the page size.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the cursor.
    pub fn start_after(mut self, key: Key) -> Self {
        self.start_after = Some(key);
        self
    }
}

/// One page of [`KvStore::list`](crate::KvStore::list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Page {
    /// Live keys with the prefix, ascending in byte order.
    pub keys: Vec<Key>,
    /// `Some(cursor)` when more keys may follow: pass it as
    /// [`ListOptions::start_after`]. `None` when the listing is complete.
    /// A page shorter than its limit always has `next == None`.
    pub next: Option<Key>,
}

impl Page {
    /// Builds a page from up to `limit + 1` keys fetched in order: the extra
    /// key, if present, only tells that more follow.
    pub fn from_fetched(mut keys: Vec<Key>, limit: usize) -> Self {
        if keys.len() > limit {
            keys.truncate(limit);
            let next = keys.last().cloned();
            Self { keys, next }
        } else {
            Self { keys, next: None }
        }
    }
}
