//! [`Raw`]: bytes and strings stored as they are.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::ser::{self, Impossible, Serialize, Serializer};

use super::Codec;
use crate::error::BoxError;

/// Stores byte strings and UTF-8 strings as they are, with no framing:
/// `Vec<u8>`, `bytes::Bytes`, `&[u8]`, `[u8; N]`, `String` and `&str` (and
/// newtypes around them). Any other type is an encode error, never a silent
/// conversion. Decoding into `String` requires valid UTF-8.
///
/// ```
/// use kv_core::{Codec, Raw};
///
/// assert_eq!(Raw.encode("héllo")?, "héllo".as_bytes());
/// assert_eq!(Raw.encode(&vec![0u8, 255])?, [0, 255]);
/// let s: String = Raw.decode(b"plain")?;
/// assert_eq!(s, "plain");
/// assert!(Raw.encode(&42u32).is_err());
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Raw;

impl Codec for Raw {
    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(value.serialize(RawSerializer)?)
    }

    fn decode<T: serde::de::DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, BoxError> {
        Ok(T::deserialize(RawDeserializer(bytes))?)
    }
}

/// The error of the raw codec.
#[derive(Debug)]
struct RawError(String);

impl fmt::Display for RawError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RawError {}

impl ser::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RawError(msg.to_string())
    }
}

impl de::Error for RawError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        RawError(msg.to_string())
    }
}

fn not_bytes(what: &str) -> RawError {
    RawError(format!(
        "the raw codec stores only bytes and strings, not {what}; use the JSON or MessagePack codec"
    ))
}

struct RawSerializer;

macro_rules! reject {
    ($($method:ident($($ty:ty),*) -> $ok:ty, $what:literal;)*) => {
        $(fn $method(self, $(_: $ty),*) -> Result<$ok, RawError> { Err(not_bytes($what)) })*
    };
}

impl Serializer for RawSerializer {
    type Ok = Vec<u8>;
    type Error = RawError;
    type SerializeSeq = ByteSeq;
    type SerializeTuple = ByteSeq;
    type SerializeTupleStruct = Impossible<Vec<u8>, RawError>;
    type SerializeTupleVariant = Impossible<Vec<u8>, RawError>;
    type SerializeMap = Impossible<Vec<u8>, RawError>;
    type SerializeStruct = Impossible<Vec<u8>, RawError>;
    type SerializeStructVariant = Impossible<Vec<u8>, RawError>;

    fn serialize_bytes(self, v: &[u8]) -> Result<Vec<u8>, RawError> {
        Ok(v.to_vec())
    }

    fn serialize_str(self, v: &str) -> Result<Vec<u8>, RawError> {
        Ok(v.as_bytes().to_vec())
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<Vec<u8>, RawError> {
        value.serialize(self)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<ByteSeq, RawError> {
        Ok(ByteSeq(Vec::with_capacity(len.unwrap_or(0))))
    }

    fn serialize_tuple(self, len: usize) -> Result<ByteSeq, RawError> {
        Ok(ByteSeq(Vec::with_capacity(len)))
    }

    reject! {
        serialize_bool(bool) -> Vec<u8>, "a bool";
        serialize_i8(i8) -> Vec<u8>, "a number";
        serialize_i16(i16) -> Vec<u8>, "a number";
        serialize_i32(i32) -> Vec<u8>, "a number";
        serialize_i64(i64) -> Vec<u8>, "a number";
        serialize_u8(u8) -> Vec<u8>, "a number";
        serialize_u16(u16) -> Vec<u8>, "a number";
        serialize_u32(u32) -> Vec<u8>, "a number";
        serialize_u64(u64) -> Vec<u8>, "a number";
        serialize_f32(f32) -> Vec<u8>, "a number";
        serialize_f64(f64) -> Vec<u8>, "a number";
        serialize_char(char) -> Vec<u8>, "a char";
        serialize_none() -> Vec<u8>, "an Option";
        serialize_unit() -> Vec<u8>, "()";
        serialize_unit_struct(&'static str) -> Vec<u8>, "a unit struct";
        serialize_unit_variant(&'static str, u32, &'static str) -> Vec<u8>, "an enum";
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct, "a tuple struct";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant, "an enum";
        serialize_map(Option<usize>) -> Self::SerializeMap, "a map";
        serialize_struct(&'static str, usize) -> Self::SerializeStruct, "a struct";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant, "an enum";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<Vec<u8>, RawError> {
        Err(not_bytes("an Option"))
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<Vec<u8>, RawError> {
        Err(not_bytes("an enum"))
    }
}

/// Collects a sequence of `u8` (how serde serializes `Vec<u8>` and `[u8]`).
struct ByteSeq(Vec<u8>);

impl ByteSeq {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RawError> {
        self.0.push(value.serialize(ByteSerializer)?);
        Ok(())
    }
}

impl ser::SerializeSeq for ByteSeq {
    type Ok = Vec<u8>;
    type Error = RawError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RawError> {
        self.push(value)
    }

    fn end(self) -> Result<Vec<u8>, RawError> {
        Ok(self.0)
    }
}

impl ser::SerializeTuple for ByteSeq {
    type Ok = Vec<u8>;
    type Error = RawError;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), RawError> {
        self.push(value)
    }

    fn end(self) -> Result<Vec<u8>, RawError> {
        Ok(self.0)
    }
}

/// Accepts exactly one `u8`: an element of a byte sequence.
struct ByteSerializer;

impl Serializer for ByteSerializer {
    type Ok = u8;
    type Error = RawError;
    type SerializeSeq = Impossible<u8, RawError>;
    type SerializeTuple = Impossible<u8, RawError>;
    type SerializeTupleStruct = Impossible<u8, RawError>;
    type SerializeTupleVariant = Impossible<u8, RawError>;
    type SerializeMap = Impossible<u8, RawError>;
    type SerializeStruct = Impossible<u8, RawError>;
    type SerializeStructVariant = Impossible<u8, RawError>;

    fn serialize_u8(self, v: u8) -> Result<u8, RawError> {
        Ok(v)
    }

    reject! {
        serialize_bool(bool) -> u8, "a sequence of bools";
        serialize_i8(i8) -> u8, "a sequence of i8";
        serialize_i16(i16) -> u8, "a sequence of numbers";
        serialize_i32(i32) -> u8, "a sequence of numbers";
        serialize_i64(i64) -> u8, "a sequence of numbers";
        serialize_u16(u16) -> u8, "a sequence of numbers";
        serialize_u32(u32) -> u8, "a sequence of numbers";
        serialize_u64(u64) -> u8, "a sequence of numbers";
        serialize_f32(f32) -> u8, "a sequence of numbers";
        serialize_f64(f64) -> u8, "a sequence of numbers";
        serialize_char(char) -> u8, "a sequence of chars";
        serialize_str(&str) -> u8, "a sequence of strings";
        serialize_bytes(&[u8]) -> u8, "a sequence of byte strings";
        serialize_none() -> u8, "a sequence of Options";
        serialize_unit() -> u8, "a sequence of ()";
        serialize_unit_struct(&'static str) -> u8, "a sequence of unit structs";
        serialize_unit_variant(&'static str, u32, &'static str) -> u8, "a sequence of enums";
        serialize_seq(Option<usize>) -> Self::SerializeSeq, "nested sequences";
        serialize_tuple(usize) -> Self::SerializeTuple, "a sequence of tuples";
        serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct, "a sequence of tuple structs";
        serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant, "a sequence of enums";
        serialize_map(Option<usize>) -> Self::SerializeMap, "a sequence of maps";
        serialize_struct(&'static str, usize) -> Self::SerializeStruct, "a sequence of structs";
        serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant, "a sequence of enums";
    }

    fn serialize_some<T: Serialize + ?Sized>(self, _: &T) -> Result<u8, RawError> {
        Err(not_bytes("a sequence of Options"))
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &T,
    ) -> Result<u8, RawError> {
        value.serialize(self)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<u8, RawError> {
        Err(not_bytes("a sequence of enums"))
    }
}

/// Hands the stored bytes to the visitor as bytes, a string or a sequence
/// of `u8`, whichever the target type asks for.
struct RawDeserializer<'de>(&'de [u8]);

impl<'de> Deserializer<'de> for RawDeserializer<'de> {
    type Error = RawError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_borrowed_bytes(self.0)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        match std::str::from_utf8(self.0) {
            Ok(s) => visitor.visit_borrowed_str(s),
            Err(e) => Err(RawError(format!("the stored bytes are not UTF-8: {e}"))),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_byte_buf(self.0.to_vec())
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, RawError> {
        visitor.visit_seq(de::value::SeqDeserializer::<_, RawError>::new(
            self.0.iter().copied(),
        ))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, RawError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes
        option unit unit_struct tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_containers_round_trip() {
        let v: Vec<u8> = vec![0, 1, 255];
        assert_eq!(Raw.encode(&v).unwrap(), v);
        assert_eq!(Raw.encode(&[7u8, 8]).unwrap(), [7, 8]);
        assert_eq!(
            Raw.encode(&bytes::Bytes::from_static(b"xy")).unwrap(),
            b"xy"
        );
        let back: Vec<u8> = Raw.decode(&[0, 1, 255]).unwrap();
        assert_eq!(back, [0, 1, 255]);
        let b: bytes::Bytes = Raw.decode(b"xy").unwrap();
        assert_eq!(b, "xy");
    }

    #[test]
    fn non_bytes_are_errors_not_conversions() {
        assert!(Raw.encode(&vec![1u32, 2]).is_err());
        assert!(Raw.encode(&Some(vec![1u8])).is_err());
        assert!(Raw.decode::<u32>(b"1234").is_err());
        assert!(Raw.decode::<String>(&[0xff, 0xfe]).is_err());
    }
}
