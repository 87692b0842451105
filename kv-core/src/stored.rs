//! [`Stored`]: a decoded value with the exact bytes it was read from.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

/// A value read by [`Kv::get_stored`](crate::Kv::get_stored): the decoded
/// `T` and the bytes the store held, so that
/// [`Kv::compare_and_swap_stored`](crate::Kv::compare_and_swap_stored) can
/// compare against exactly what was read.
///
/// Comparing a re-encoded value instead fails for good whenever encoding
/// the decoded value does not give back the stored bytes: a field the type
/// skips or no longer has, a `#[serde(default)]` field added since the
/// value was written, a float or map printed differently, a value written
/// by another program. `Stored` keeps the loop `read, change, swap`
/// working in all those cases.
///
/// Derefs to `T`.
#[derive(Clone, PartialEq)]
pub struct Stored<T> {
    value: T,
    bytes: Bytes,
}

impl<T> Stored<T> {
    pub(crate) fn new(value: T, bytes: Bytes) -> Self {
        Self { value, bytes }
    }

    /// The decoded value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The decoded value, owned.
    pub fn into_value(self) -> T {
        self.value
    }

    /// The bytes the store held, as read.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

impl<T> Deref for Stored<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: fmt::Debug> fmt::Debug for Stored<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stored")
            .field("value", &self.value)
            .field("bytes", &self.bytes.len())
            .finish()
    }
}
