//! [`Version`], [`Versioned`] and [`Condition`]: conditional writes that do
//! not depend on how a value is encoded.

use std::fmt;

use bytes::Bytes;

/// An opaque version of one key's value, read with
/// [`KvStore::batch_get_versioned`](crate::KvStore::batch_get_versioned) or
/// [`Kv::get_versioned`](crate::Kv::get_versioned).
///
/// - Every write to the key gives it a new version, even one that writes
///   the same bytes, and a key deleted and written again never gets an
///   earlier version back.
/// - Equality is its only operation: versions of different keys, or of
///   different backends, mean nothing to each other; there is no order.
/// - It survives a restart wherever the data does.
///
/// What it is inside depends on the backend (etcd's `mod_revision`, a
/// version column or field written with the value elsewhere); see each
/// backend's README. Backends build it with [`Version::from_bytes`] or
/// [`Version::from_u64`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Version(Bytes);

impl Version {
    /// A version from a backend's own token. For backends.
    pub fn from_bytes(token: impl Into<Bytes>) -> Self {
        Self(token.into())
    }

    /// A version from a backend's numeric token (a revision, a counter),
    /// stored big-endian. For backends.
    pub fn from_u64(token: u64) -> Self {
        Self(Bytes::copy_from_slice(&token.to_be_bytes()))
    }

    /// The backend's token, as given to [`Version::from_bytes`] or
    /// [`Version::from_u64`]. For backends.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The numeric token given to [`Version::from_u64`]; `None` for any
    /// other token. For backends.
    pub fn as_u64(&self) -> Option<u64> {
        <[u8; 8]>::try_from(self.0.as_ref())
            .ok()
            .map(u64::from_be_bytes)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Version(")?;
        for byte in self.0.iter() {
            write!(f, "{byte:02x}")?;
        }
        f.write_str(")")
    }
}

/// A value with the [`Version`] it was read at.
///
/// The raw store returns `Versioned<Bytes>`; the typed client
/// [`Kv::get_versioned`](crate::Kv::get_versioned) returns the decoded
/// `Versioned<T>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned<T = Bytes> {
    /// The value.
    pub value: T,
    /// The version it was read at.
    pub version: Version,
}

/// What a conditional write or a transaction check requires of a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The key is absent (or expired).
    Absent,
    /// The key is present, at any version.
    Present,
    /// The key is present at exactly this version.
    Version(Version),
}

impl Condition {
    /// Whether a key currently at `current` (`None`: absent) meets the
    /// condition. For backends that evaluate it themselves.
    ///
    /// ```
    /// use kv_core::{Condition, Version};
    ///
    /// let v1 = Version::from_u64(1);
    /// assert!(Condition::Absent.holds(None));
    /// assert!(Condition::Present.holds(Some(&v1)));
    /// assert!(Condition::Version(v1.clone()).holds(Some(&v1)));
    /// assert!(!Condition::Version(v1).holds(Some(&Version::from_u64(2))));
    /// ```
    pub fn holds(&self, current: Option<&Version>) -> bool {
        match (self, current) {
            (Condition::Absent, current) => current.is_none(),
            (Condition::Present, current) => current.is_some(),
            (Condition::Version(expected), Some(current)) => expected == current,
            (Condition::Version(_), None) => false,
        }
    }
}
