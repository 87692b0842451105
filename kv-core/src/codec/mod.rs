//! Codecs turn typed values into the bytes a [`KvStore`](crate::KvStore)
//! stores: [`Json`] (the default), [`MessagePack`] (feature `msgpack`) and
//! [`Raw`] (bytes and strings as they are).

mod raw;

use std::fmt::Debug;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::BoxError;

pub use raw::Raw;

/// Encodes and decodes typed values for the typed client [`Kv`](crate::Kv).
///
/// Compare-and-swap compares encoded bytes, so a codec should encode equal
/// values to equal bytes (JSON does for structs, vectors and `BTreeMap`, not
/// for `HashMap`, whose iteration order varies).
pub trait Codec: Clone + Debug + Send + Sync + 'static {
    /// The codec's name, for errors and logs.
    fn name(&self) -> &'static str;

    /// Encodes `value`.
    ///
    /// # Errors
    ///
    /// The serializer's error when the value cannot be encoded.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError>;

    /// Decodes a `T` from `bytes`.
    ///
    /// # Errors
    ///
    /// The deserializer's error when the bytes are not a `T`.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError>;
}

/// JSON through `serde_json`: readable, the default.
///
/// ```
/// use kv_core::{Codec, Json};
///
/// let bytes = Json.encode(&vec![1, 2])?;
/// assert_eq!(bytes, b"[1,2]");
/// let back: Vec<i32> = Json.decode(&bytes)?;
/// assert_eq!(back, [1, 2]);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl Codec for Json {
    fn name(&self) -> &'static str {
        "json"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// MessagePack through `rmp-serde`, structs as maps with field names (so
/// adding an optional field stays compatible). Feature `msgpack`.
///
/// ```
/// use kv_core::{Codec, MessagePack};
///
/// let bytes = MessagePack.encode(&("a", 1))?;
/// let back: (String, u8) = MessagePack.decode(&bytes)?;
/// assert_eq!(back, ("a".to_owned(), 1));
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[cfg(feature = "msgpack")]
#[cfg_attr(docsrs, doc(cfg(feature = "msgpack")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct MessagePack;

#[cfg(feature = "msgpack")]
impl Codec for MessagePack {
    fn name(&self) -> &'static str {
        "msgpack"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(rmp_serde::to_vec_named(value)?)
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(rmp_serde::from_slice(bytes)?)
    }
}
