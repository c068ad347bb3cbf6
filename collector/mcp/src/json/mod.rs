//! The JSON toolkit of the decoder: a `serde` `Deserializer` over UTF-8 text
//! ([`fast`]) that accepts, rejects and reads exactly what serde_json does,
//! the entry points that run a seed over a whole body with
//! `serde_json::from_slice` strictness ([`read_all`], [`read_str`],
//! [`read_all_serde`]), and the generic seeds the typed request and response
//! parses are built from ([`Skip`], [`Key`], [`StrSeed`], [`IsObject`],
//! [`BodySeed`], and the visitor macros `scalars_give!`, `str_gives!`,
//! `seq_gives!`, `map_gives!`, `any_seed!`). Nothing here knows MCP.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

pub(crate) mod fast;

/// Visitor methods for JSON types other than the ones a seed handles: the
/// value is consumed (containers through [`Skip`]) and `$ret` returned.
macro_rules! scalars_give {
    ($ret:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($ret)
        }
        fn visit_none<E>(self) -> Result<Self::Value, E> {
            Ok($ret)
        }
    };
}
macro_rules! str_gives {
    ($ret:expr) => {
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($ret)
        }
    };
}
macro_rules! seq_gives {
    ($ret:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element_seed(Skip)?.is_some() {}
            Ok($ret)
        }
    };
}
macro_rules! map_gives {
    ($ret:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_key_seed(Skip)?.is_some() {
                map.next_value_seed(Skip)?;
            }
            Ok($ret)
        }
    };
}
macro_rules! any_seed {
    ($t:ty, $v:ty) => {
        impl<'de> DeserializeSeed<'de> for $t {
            type Value = $v;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<$v, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

/// Longest string kept for a value taken from the body, in bytes (the
/// decoder's `MAX_NAME_BYTES`).
pub(crate) const MAX_NAME_BYTES: usize = 512;

/// `s` cut to [`MAX_NAME_BYTES`] on a char boundary.
pub(crate) fn cap(s: &str) -> &str {
    cut(s, MAX_NAME_BYTES)
}

/// `s` cut to at most `max` bytes on a char boundary.
pub(crate) fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

/// A JSON-RPC body (request or response side): one message or a batch (JSON
/// array, JSON-RPC 2.0 §6), `M` being the decoder's view of one message
/// (`request::ReqMsg`, `response::RespMsg`). `None` items are elements that
/// are not JSON objects.
#[derive(Debug, PartialEq)]
#[allow(clippy::large_enum_variant)] // moved once, straight into the exchange
pub(crate) enum Body<M> {
    /// The body is not an array.
    Single(Option<M>),
    /// The body is an array; one item per element.
    Batch(Vec<Option<M>>),
}

/// Runs `seed` over all of `bytes` (one JSON value, then only whitespace),
/// with `serde_json::from_slice` strictness.
///
/// Valid UTF-8 (nearly every body) goes through [`fast::Fast`], which accepts
/// exactly what serde_json's deserializer accepts for the calls the seeds make
/// and skips the UTF-8 check of each string (the whole text is checked
/// once). Any other input takes serde_json's
/// slice reader ([`read_all_serde`]), as before. Both give the same result on
/// the same text (property-tested below and in `response.rs`).
///
/// # Errors
/// The deserializer's error when `bytes` is not one JSON value or `seed`
/// rejects it.
pub(crate) fn read_all<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> serde_json::Result<S::Value> {
    if let Ok(text) = std::str::from_utf8(bytes) {
        return read_str(text, seed);
    }
    read_all_serde(bytes, seed)
}

/// [`read_all`] on text already known to be UTF-8.
///
/// # Errors
/// As [`read_all`].
pub(crate) fn read_str<'de, S: DeserializeSeed<'de>>(
    text: &'de str,
    seed: S,
) -> serde_json::Result<S::Value> {
    let mut de = fast::Fast::new(text);
    let v = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

/// [`read_all`] through serde_json's slice reader only (the reference the
/// fast path is tested against, and the path for bytes that are not UTF-8).
///
/// # Errors
/// As [`read_all`].
pub(crate) fn read_all_serde<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    seed: S,
) -> serde_json::Result<S::Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(v)
}

// ---- seeds ------------------------------------------------------------------------

/// Visits any JSON value and builds nothing.
pub(crate) struct Skip;

/// An object key, borrowed from the input unless it contains escapes.
pub(crate) struct Key;

/// A string value (cut to [`MAX_NAME_BYTES`] when `.0`), else `None`.
pub(crate) struct StrSeed(pub(crate) bool);

/// A body of messages read with the message seed `.0`: [`Body::Single`] for
/// an object or a scalar, [`Body::Batch`] for an array.
pub(crate) struct BodySeed<S>(pub(crate) S);

/// `true` when the value is an object.
pub(crate) struct IsObject;

any_seed!(Skip, ());
impl<'de> Visitor<'de> for Skip {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(());
    str_gives!(());
    seq_gives!(());
    map_gives!(());
}

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;
    #[inline(always)]
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Cow<'de, str>, D::Error> {
        d.deserialize_str(self)
    }
}
impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Cow<'de, str>, E> {
        Ok(Cow::Owned(s))
    }
}

any_seed!(StrSeed, Option<String>);
impl<'de> Visitor<'de> for StrSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(None);
    seq_gives!(None);
    map_gives!(None);
    fn visit_str<E>(self, s: &str) -> Result<Option<String>, E> {
        Ok(Some(if self.0 { cap(s) } else { s }.to_owned()))
    }
    fn visit_string<E>(self, mut s: String) -> Result<Option<String>, E> {
        if self.0 && s.len() > MAX_NAME_BYTES {
            let n = cap(&s).len();
            s.truncate(n);
        }
        Ok(Some(s))
    }
}

impl<'de, M, S> DeserializeSeed<'de> for BodySeed<S>
where
    S: Copy + DeserializeSeed<'de, Value = Option<M>> + Visitor<'de, Value = Option<M>>,
{
    type Value = Body<M>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Body<M>, D::Error> {
        d.deserialize_any(self)
    }
}
impl<'de, M, S> Visitor<'de> for BodySeed<S>
where
    S: Copy + DeserializeSeed<'de, Value = Option<M>> + Visitor<'de, Value = Option<M>>,
{
    type Value = Body<M>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    scalars_give!(Body::Single(None));
    str_gives!(Body::Single(None));
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Body<M>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(m) = seq.next_element_seed(self.0)? {
            items.push(m);
        }
        Ok(Body::Batch(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Body<M>, A::Error> {
        self.0.visit_map(map).map(Body::Single)
    }
}

any_seed!(IsObject, bool);
impl<'de> Visitor<'de> for IsObject {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(false);
    str_gives!(false);
    seq_gives!(false);
    map_gives!(true);
}
