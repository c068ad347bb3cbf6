//! A JSON `Deserializer` over UTF-8 text that accepts and rejects exactly the
//! texts `serde_json`'s own deserializer does, for the calls the body seeds
//! make, with less work per token.
//!
//! Calls and their strictness (each as `serde_json::Deserializer::from_str`):
//! - `deserialize_any` (and everything forwarded to it) is the `Value`-strict
//!   parse: strings checked for control characters and escapes (surrogates
//!   included), numbers range-checked, at most 127 nested containers;
//! - `deserialize_str` is `deserialize_any` on a string, an error otherwise;
//! - `deserialize_ignored_any` only checks the syntax (escapes are four hex
//!   digits, numbers are not range-checked, no depth limit), as serde_json's
//!   `IgnoredAny` does.
//!
//! How it reads: strings without escapes are scanned in place and borrowed
//! (escapes are resolved as serde_json's `parse_str` does); integers of up to
//! 18 digits are read directly; skipped values go through one iterative
//! syntax check. Other numbers are handed to `serde_json` on just that token,
//! so their acceptance and values are serde_json's by construction. The input must be
//! valid UTF-8 (`&str`); [`super::read_all`] falls back to serde_json for
//! other bytes. Equality with serde_json is property-tested in `request.rs`
//! and `response.rs`, and fuzzed by the differential target
//! `fuzz/fuzz_targets/json_body.rs` (any disagreement is a bug here);
//! serde_json stays the reference it is checked against. Measurements:
//! BENCHMARKS.md.

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Error;

/// serde_json's recursion limit: nesting reaches it at the 128th container.
const RECURSION_LIMIT: u8 = 128;

/// Open containers of a skipped value, innermost last, one bit each (set for
/// an object) below a sentinel 1 bit: 63 levels in a word, deeper ones
/// spilled to the heap (a full word is spilled when a 64th level is pushed and
/// restored when its successor word empties, so the word is just the sentinel
/// only when nothing is open).
struct Nesting {
    bits: u64,
    spill: Vec<u64>,
}

impl Default for Nesting {
    fn default() -> Self {
        Nesting {
            bits: 1,
            spill: Vec::new(),
        }
    }
}

impl Nesting {
    #[inline]
    fn push(&mut self, object: bool) {
        if self.bits >> 63 != 0 {
            self.spill.push(self.bits);
            self.bits = 1;
        }
        self.bits = (self.bits << 1) | u64::from(object);
    }

    #[inline]
    fn pop(&mut self) {
        if self.bits == 1 {
            return;
        }
        self.bits >>= 1;
        if self.bits == 1
            && let Some(word) = self.spill.pop()
        {
            self.bits = word;
        }
    }

    /// The innermost container (`true`: an object), if any.
    #[inline]
    fn top(&self) -> Option<bool> {
        (self.bits != 1).then_some(self.bits & 1 != 0)
    }
}

/// The deserializer: input text and position.
pub(crate) struct Fast<'de> {
    text: &'de str,
    pos: usize,
    /// Containers that may still be opened plus one (serde_json's
    /// `remaining_depth`).
    remaining_depth: u8,
}

/// A syntax error (the message is not shown anywhere; callers count errors).
#[cold]
fn err(msg: &'static str) -> Error {
    <Error as de::Error>::custom(msg)
}

/// Bytes that end the plain part of a string: `"`, `\` and control
/// characters (the byte loop [`mcptap_wire::swar::json_special_end`] is
/// checked against).
#[cfg(test)]
fn is_string_special(b: u8) -> bool {
    b == b'"' || b == b'\\' || b < 0x20
}

/// Bytes that can continue a number token.
#[inline]
fn is_number_byte(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
}

impl<'de> Fast<'de> {
    /// A deserializer at the start of `text`.
    pub(crate) fn new(text: &'de str) -> Self {
        Fast {
            text,
            pos: 0,
            remaining_depth: RECURSION_LIMIT,
        }
    }

    /// Only whitespace remains (serde_json's `Deserializer::end`).
    ///
    /// # Errors
    /// When anything else follows.
    pub(crate) fn end(&mut self) -> Result<(), Error> {
        match self.peek_ws() {
            None => Ok(()),
            Some(_) => Err(err("trailing characters")),
        }
    }

    #[inline]
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    /// Skips JSON whitespace and returns the next byte.
    #[inline]
    fn peek_ws(&mut self) -> Option<u8> {
        let bytes = self.bytes();
        // Compact JSON: the next byte is rarely whitespace (all of which is
        // at most b' ').
        let b = *bytes.get(self.pos)?;
        if b > b' ' {
            return Some(b);
        }
        while let Some(&b) = bytes.get(self.pos) {
            if matches!(b, b' ' | b'\n' | b'\t' | b'\r') {
                self.pos += 1;
            } else {
                return Some(b);
            }
        }
        None
    }

    /// `text[from..to]` (never fails for the ASCII positions used here).
    #[inline]
    fn slice(&self, from: usize, to: usize) -> Result<&'de str, Error> {
        self.text.get(from..to).ok_or_else(|| err("bad slice"))
    }

    /// Consumes `lit` (`null`, `true`, `false`) at the position.
    #[inline]
    fn literal(&mut self, lit: &[u8]) -> Result<(), Error> {
        let end = self.pos + lit.len();
        if self.bytes().get(self.pos..end) == Some(lit) {
            self.pos = end;
            Ok(())
        } else {
            Err(err("expected ident"))
        }
    }

    /// Position of the first special byte at or after `from`, or the end.
    #[inline]
    fn scan_plain(&self, from: usize) -> usize {
        let bytes = self.bytes();
        let Some(rest) = bytes.get(from..) else {
            return from;
        };
        from + mcptap_wire::swar::json_special_end(rest)
    }

    /// A string value at the position (its opening quote), `Value`-strict.
    #[inline(always)]
    fn string<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let start = self.pos;
        let end = self.scan_plain(start + 1);
        if self.bytes().get(end) == Some(&b'"') {
            self.pos = end + 1;
            return visitor.visit_borrowed_str(self.slice(start + 1, end)?);
        }
        // Escapes (or an error).
        let (text, end) = self.unescape(start, end)?;
        self.pos = end;
        visitor.visit_string(text)
    }

    /// The string that starts at `start` (its opening quote) with its
    /// escapes resolved, and the position after its closing quote. As
    /// serde_json's `parse_str` with validation: `\u` escapes must be four
    /// hex digits, a leading surrogate must be followed by an escaped
    /// trailing one, a lone trailing surrogate is an error, and so are
    /// control characters, unknown escapes and the end of input. `first` is
    /// the position of the first special byte after `start` (already found
    /// by the caller).
    fn unescape(&self, start: usize, first: usize) -> Result<(String, usize), Error> {
        let bytes = self.bytes();
        // The unescaped text is never longer than the rest of the input: room
        // for up to 256 bytes of it at once saves the growth steps of short
        // strings (one allocation instead of four or five).
        let mut out = String::with_capacity(bytes.len().saturating_sub(start).min(256));
        let mut plain = start + 1;
        let mut found = Some(first);
        loop {
            let i = match found.take() {
                Some(i) => i,
                None => self.scan_plain(plain),
            };
            out.push_str(self.slice(plain, i)?);
            match bytes.get(i) {
                Some(b'"') => return Ok((out, i + 1)),
                Some(b'\\') => {}
                _ => return Err(err("bad string")),
            }
            plain = i + 2;
            match bytes.get(i + 1) {
                Some(b'"') => out.push('"'),
                Some(b'\\') => out.push('\\'),
                Some(b'/') => out.push('/'),
                Some(b'b') => out.push('\u{8}'),
                Some(b'f') => out.push('\u{c}'),
                Some(b'n') => out.push('\n'),
                Some(b'r') => out.push('\r'),
                Some(b't') => out.push('\t'),
                Some(b'u') => {
                    let n = self.hex4(i + 2)?;
                    plain = i + 6;
                    let c = match n {
                        0xDC00..=0xDFFF => return Err(err("lone surrogate")),
                        0xD800..=0xDBFF => {
                            if bytes.get(plain..plain + 2) != Some(b"\\u") {
                                return Err(err("lone surrogate"));
                            }
                            let n2 = self.hex4(plain + 2)?;
                            if !(0xDC00..=0xDFFF).contains(&n2) {
                                return Err(err("lone surrogate"));
                            }
                            plain += 6;
                            0x1_0000 + (((n - 0xD800) << 10) | (n2 - 0xDC00))
                        }
                        n => n,
                    };
                    out.push(char::from_u32(c).ok_or_else(|| err("bad escape"))?);
                }
                _ => return Err(err("bad escape")),
            }
        }
    }

    /// The four hex digits at `at` as a number.
    fn hex4(&self, at: usize) -> Result<u32, Error> {
        let digits = self
            .bytes()
            .get(at..at + 4)
            .ok_or_else(|| err("bad escape"))?;
        digits.iter().try_fold(0u32, |n, &d| {
            let v = char::from(d)
                .to_digit(16)
                .ok_or_else(|| err("bad escape"))?;
            Ok(n * 16 + v)
        })
    }

    /// Skips a string at the position (its opening quote), syntax only.
    #[inline(always)]
    fn skip_string(&mut self) -> Result<(), Error> {
        let bytes = self.bytes();
        let mut i = self.pos + 1;
        loop {
            i = self.scan_plain(i);
            match bytes.get(i) {
                Some(b'"') => {
                    self.pos = i + 1;
                    return Ok(());
                }
                Some(b'\\') => match bytes.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = bytes.get(i + 2..i + 6).ok_or_else(|| err("bad escape"))?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(err("bad escape"));
                        }
                        i += 6;
                    }
                    _ => return Err(err("bad escape")),
                },
                _ => return Err(err("bad string")),
            }
        }
    }

    /// The number token at the position: the longest run of number bytes.
    #[inline]
    fn number_token(&mut self) -> Result<&'de str, Error> {
        let start = self.pos;
        let bytes = self.bytes();
        let mut i = start;
        while bytes.get(i).is_some_and(|&b| is_number_byte(b)) {
            i += 1;
        }
        self.pos = i;
        self.slice(start, i)
    }

    /// A number value at the position, `Value`-strict.
    fn number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        // Integers written plainly (nearly every id, count and code): the
        // digits are read in the one walk that finds the token's end. The
        // token is exactly `-`? then the digits when no number byte follows
        // them; that is the `simple` case below, which gives the same values.
        let bytes = self.bytes();
        let start = self.pos;
        let neg = bytes.get(start) == Some(&b'-');
        let first = start + usize::from(neg);
        let mut i = first;
        let mut n = 0u64;
        while let Some(&d) = bytes.get(i) {
            if !d.is_ascii_digit() {
                break;
            }
            // Wraps past 19 digits; only runs of at most 18 are used.
            n = n.wrapping_mul(10).wrapping_add(u64::from(d - b'0'));
            i += 1;
        }
        let len = i - first;
        if (1..=18).contains(&len)
            && (len == 1 || bytes.get(first) != Some(&b'0'))
            && !bytes.get(i).is_some_and(|&b| is_number_byte(b))
            && (!neg || n != 0)
        {
            self.pos = i;
            return if neg {
                // n < 10^18 < 2^63.
                visitor.visit_i64(-(n as i64))
            } else {
                visitor.visit_u64(n)
            };
        }
        let token = self.number_token()?;
        let (neg, digits) = match token.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, token),
        };
        let b = digits.as_bytes();
        // `0`, or no leading zero; at most 18 digits fit i64 and u64.
        let simple = !b.is_empty()
            && b.len() <= 18
            && b.iter().all(u8::is_ascii_digit)
            && (b.len() == 1 || b.first() != Some(&b'0'));
        if simple {
            let n = b.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
            if !neg {
                return visitor.visit_u64(n);
            }
            if n != 0 {
                // n < 10^18 < 2^63.
                return visitor.visit_i64(-(n as i64));
            }
            // `-0` is a float in serde_json: it reads it below.
        }
        let mut de = serde_json::Deserializer::from_str(token);
        let v = de::Deserializer::deserialize_any(&mut de, visitor)?;
        de.end()?;
        Ok(v)
    }

    /// Skips a number at the position, syntax only (serde_json's
    /// `ignore_integer`, `ignore_decimal`, `ignore_exponent`).
    fn skip_number(&mut self) -> Result<(), Error> {
        let token = self.number_token()?.as_bytes();
        let mut i = usize::from(token.first() == Some(&b'-'));
        let digits = |i: &mut usize| {
            let from = *i;
            while token.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i - from
        };
        match token.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                digits(&mut i);
            }
            _ => return Err(err("invalid number")),
        }
        if token.get(i) == Some(&b'.') {
            i += 1;
            if digits(&mut i) == 0 {
                return Err(err("invalid number"));
            }
        }
        if matches!(token.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(token.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if digits(&mut i) == 0 {
                return Err(err("invalid number"));
            }
        }
        // Anything left (a second `-`, `.`, `e`…) cannot follow a value.
        if i == token.len() {
            Ok(())
        } else {
            Err(err("invalid number"))
        }
    }

    /// Skips one value, syntax only, iteratively (serde_json's
    /// `ignore_value`: no depth limit).
    fn skip_value(&mut self) -> Result<(), Error> {
        let mut stack = Nesting::default();
        loop {
            // A value is expected.
            match self.peek_ws() {
                Some(b'n') => self.literal(b"null")?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'-' | b'0'..=b'9') => self.skip_number()?,
                Some(b'"') => self.skip_string()?,
                Some(b'[') => {
                    self.pos += 1;
                    if self.peek_ws() == Some(b']') {
                        self.pos += 1;
                    } else {
                        stack.push(false);
                        continue;
                    }
                }
                Some(b'{') => {
                    self.pos += 1;
                    if self.peek_ws() == Some(b'}') {
                        self.pos += 1;
                    } else {
                        stack.push(true);
                        self.skip_key()?;
                        continue;
                    }
                }
                _ => return Err(err("expected value")),
            }
            // After a value: close containers until a comma.
            loop {
                let Some(object) = stack.top() else {
                    return Ok(());
                };
                match self.peek_ws() {
                    Some(b',') => {
                        self.pos += 1;
                        if object {
                            self.skip_key()?;
                        }
                        break;
                    }
                    Some(b']') if !object => {
                        self.pos += 1;
                        stack.pop();
                    }
                    Some(b'}') if object => {
                        self.pos += 1;
                        stack.pop();
                    }
                    _ => return Err(err("expected , or end")),
                }
            }
        }
    }

    /// Skips `"key" :` inside a skipped object.
    #[inline(always)]
    fn skip_key(&mut self) -> Result<(), Error> {
        if self.peek_ws() != Some(b'"') {
            return Err(err("key must be a string"));
        }
        self.skip_string()?;
        self.colon()
    }

    /// Consumes the `:` after a key.
    #[inline]
    fn colon(&mut self) -> Result<(), Error> {
        if self.peek_ws() == Some(b':') {
            self.pos += 1;
            Ok(())
        } else {
            Err(err("expected colon"))
        }
    }

    /// One fewer container may be opened (serde_json's `check_recursion!`).
    #[inline]
    fn enter(&mut self) -> Result<(), Error> {
        self.remaining_depth -= 1;
        if self.remaining_depth == 0 {
            return Err(err("recursion limit exceeded"));
        }
        Ok(())
    }
}

impl<'de> de::Deserializer<'de> for &mut Fast<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek_ws() {
            Some(b'"') => self.string(visitor),
            Some(b'-' | b'0'..=b'9') => self.number(visitor),
            Some(b'n') => {
                self.literal(b"null")?;
                visitor.visit_unit()
            }
            Some(b't') => {
                self.literal(b"true")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.literal(b"false")?;
                visitor.visit_bool(false)
            }
            Some(b'[') => {
                self.enter()?;
                self.pos += 1;
                let v = visitor.visit_seq(Seq {
                    de: &mut *self,
                    first: true,
                })?;
                self.remaining_depth += 1;
                match self.peek_ws() {
                    Some(b']') => {
                        self.pos += 1;
                        Ok(v)
                    }
                    _ => Err(err("expected ]")),
                }
            }
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let v = visitor.visit_map(Map {
                    de: &mut *self,
                    first: true,
                })?;
                self.remaining_depth += 1;
                match self.peek_ws() {
                    Some(b'}') => {
                        self.pos += 1;
                        Ok(v)
                    }
                    _ => Err(err("expected }")),
                }
            }
            _ => Err(err("expected value")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.peek_ws() {
            Some(b'"') => self.string(visitor),
            _ => Err(err("expected a string")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // A lone string (`"jsonrpc":"2.0"` and the like) needs no nesting.
        if self.peek_ws() == Some(b'"') {
            self.skip_string()?;
        } else {
            self.skip_value()?;
        }
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier
    }
}

/// Elements of an array (serde_json's `SeqAccess`).
struct Seq<'a, 'de> {
    de: &'a mut Fast<'de>,
    first: bool,
}

impl<'de> SeqAccess<'de> for Seq<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.de.peek_ws() {
            Some(b']') => return Ok(None),
            Some(_) if self.first => self.first = false,
            Some(b',') => {
                self.de.pos += 1;
                match self.de.peek_ws() {
                    Some(b']') | None => return Err(err("trailing comma")),
                    Some(_) => {}
                }
            }
            _ => return Err(err("expected , or ]")),
        }
        seed.deserialize(&mut *self.de).map(Some)
    }
}

/// Members of an object (serde_json's `MapAccess`).
struct Map<'a, 'de> {
    de: &'a mut Fast<'de>,
    first: bool,
}

impl<'de> MapAccess<'de> for Map<'_, 'de> {
    type Error = Error;

    #[inline(always)]
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.de.peek_ws() {
            Some(b'}') => return Ok(None),
            Some(b'"') if self.first => self.first = false,
            Some(b',') if !self.first => {
                self.de.pos += 1;
                if self.de.peek_ws() != Some(b'"') {
                    return Err(err("key must be a string"));
                }
            }
            _ => return Err(err("key must be a string")),
        }
        seed.deserialize(MapKey { de: &mut *self.de }).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        self.de.colon()?;
        seed.deserialize(&mut *self.de)
    }
}

/// An object key: always a string, read `Value`-strict whatever is asked
/// (serde_json's `MapKey` for the calls made here).
struct MapKey<'a, 'de> {
    de: &'a mut Fast<'de>,
}

impl<'de> de::Deserializer<'de> for MapKey<'_, 'de> {
    type Error = Error;

    #[inline(always)]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.de.string(visitor)
    }

    /// As `deserialize_any` (the call [`super::Key`] makes), inlined.
    #[inline(always)]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.de.string(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::de::{Deserialize, IgnoredAny};
    use serde_json::Value;

    /// One value through `Value` with [`Fast`].
    fn fast_value(text: &str) -> Option<Value> {
        let mut de = Fast::new(text);
        let v = Value::deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(v)
    }

    /// One value skipped through `IgnoredAny` with [`Fast`].
    fn fast_skip(text: &str) -> bool {
        let mut de = Fast::new(text);
        IgnoredAny::deserialize(&mut de).is_ok() && de.end().is_ok()
    }

    /// JSON-ish text from tokens that hit every branch: escapes (valid,
    /// invalid, surrogates), control characters, number forms, literals,
    /// whitespace, deep nesting, stray bytes.
    pub(crate) fn soup() -> impl Strategy<Value = String> {
        let tok = prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\n\t\r",
            "\"a\"",
            "\"k_id\"",
            "\"\"",
            "\"x\\\"y\"",
            "\"\\u00e9\"",
            "\"\\ud83d\\ude00\"",
            "\"\\ud800\"",
            "\"\\udc00x\"",
            "\"\\u12\"",
            "\"\\q\"",
            "\"\\ud83d\\u0041\"",
            "\"\\ud83dx\"",
            "\"\\ud83d\\n\"",
            "\"\\uD83D\\uDE00\"",
            "\"\\u00\"",
            "\"a\\tb\\\\c\"",
            "\"\\ud83d\\\"",
            "\"\\uDBFF\\uDFFF\"",
            "\"\\udfff\"",
            "\"\\/\\b\\f\"",
            "\"\u{1}\"",
            "\"\u{7f}é\"",
            "\"",
            "\\",
            "0",
            "-0",
            "01",
            "-",
            "1.",
            "1.5",
            ".5",
            "1e5",
            "1E+2",
            "1e-400",
            "1e400",
            "-12",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551616",
            "-9223372036854775809",
            "1+2",
            "2.5e",
            "null",
            "nul",
            "true",
            "tru",
            "false",
            "x",
            "[[[[[[[[",
            "]]]]]]]]",
            "{\"a\":{\"b\":[",
        ]);
        prop::collection::vec(tok, 0..30).prop_map(|v| v.concat())
    }

    /// Well-formed JSON values with every kind of token.
    pub(crate) fn values() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            "0",
            "-0",
            "-7",
            "12",
            "1.5",
            "-2e3",
            "1e-400",
            "18446744073709551615",
            "123456789012345678901",
            "null",
            "true",
            "false",
            "\"\"",
            "\"s\"",
            "\"\\\"q\\n\"",
            "\"\\u00e9\\ud83d\\ude00\"",
            "\"é€\"",
            "[]",
            "{}",
        ])
        .prop_map(str::to_owned);
        let key = prop::sample::select(vec!["a", "b_id", "", "\\u0061", "é", "a\\n"]);
        leaf.prop_recursive(6, 64, 5, move |inner| {
            prop_oneof![
                prop::collection::vec((key.clone(), inner.clone()), 0..5).prop_map(|kv| {
                    let members: Vec<String> =
                        kv.iter().map(|(k, v)| format!(" \"{k}\" : {v} ")).collect();
                    format!("{{{}}}", members.join(","))
                }),
                prop::collection::vec(inner, 0..4).prop_map(|v| format!("[ {} ]", v.join(" , "))),
            ]
        })
    }

    #[test]
    fn nesting_spills_and_restores() {
        let mut n = Nesting::default();
        let pattern = |i: usize| i.is_multiple_of(3) || i % 7 == 1;
        for i in 0..200 {
            n.push(pattern(i));
            assert_eq!(n.top(), Some(pattern(i)));
        }
        for i in (0..200).rev() {
            assert_eq!(n.top(), Some(pattern(i)), "{i}");
            n.pop();
        }
        assert_eq!(n.top(), None);
    }

    #[test]
    fn depth_limits_match_serde_json() {
        for n in [126, 127, 128, 129, 300] {
            let text = format!("{}{}", "[".repeat(n), "]".repeat(n));
            let mixed = format!("{}1{}", "{\"a\":[".repeat(n / 2), "]}".repeat(n / 2));
            let broken = format!("{}1{}", "{\"a\":[".repeat(n / 2), "}]".repeat(n / 2));
            for t in [&mixed, &broken] {
                assert_eq!(
                    fast_value(t).is_some(),
                    serde_json::from_str::<Value>(t).is_ok()
                );
                assert_eq!(fast_skip(t), serde_json::from_str::<IgnoredAny>(t).is_ok());
            }
            assert_eq!(
                fast_value(&text).is_some(),
                serde_json::from_str::<Value>(&text).is_ok(),
                "{n}"
            );
            assert_eq!(
                fast_skip(&text),
                serde_json::from_str::<IgnoredAny>(&text).is_ok(),
                "{n}"
            );
        }
    }

    #[test]
    fn reads_values_like_serde_json() {
        for text in [
            r#"{"a":[1,-2,1.5,"x\u00e9",null,true,false,{}],"b":{"c":"\ud83d\ude00"}}"#,
            "-0",
            " 18446744073709551615 ",
            "1e400",
            "\"\\ud800\"",
            "[1,]",
            "{\"a\":1,}",
            "\"a\u{1}\"",
            "[999999999999999999,-999999999999999999,1000000000000000000,-1000000000000000000]",
            "[0,-0,00,-00,0.5,-5e1,7-,--7,-,1E2,12345678901234567890123]",
            "[0, 1 ,-1]",
        ] {
            assert_eq!(
                fast_value(text),
                serde_json::from_str::<Value>(text).ok(),
                "{text}"
            );
            assert_eq!(
                fast_skip(text),
                serde_json::from_str::<IgnoredAny>(text).is_ok(),
                "{text}"
            );
        }
    }

    proptest! {
        #[test]
        fn nesting_matches_a_stack(
            runs in prop::collection::vec((any::<bool>(), 0usize..100, any::<u64>()), 0..12),
        ) {
            // Runs of pushes (kinds from the bits of a word) and of pops:
            // `Nesting` must answer `top` as a plain stack does, across its
            // 63-level spills and restores.
            let mut n = Nesting::default();
            let mut model: Vec<bool> = Vec::new();
            for (push, len, kinds) in runs {
                for i in 0..len {
                    if push {
                        let object = kinds >> (i % 64) & 1 != 0;
                        n.push(object);
                        model.push(object);
                    } else {
                        n.pop();
                        model.pop();
                    }
                    prop_assert_eq!(n.top(), model.last().copied());
                }
            }
        }

        #[test]
        fn scan_plain_finds_the_first_special_byte(
            chars in prop::collection::vec(
                prop::sample::select(vec!['a', '"', '\\', '\u{0}', '\u{1f}', ' ', '\u{7f}', 'é', '€', '!', '#', '\u{80}']),
                0..40,
            ),
            from in 0usize..40,
        ) {
            let text: String = chars.into_iter().collect();
            let from = (0..=from.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            let simple = text.as_bytes().iter().skip(from).position(|&b| is_string_special(b)).map_or(text.len(), |p| p + from);
            prop_assert_eq!(Fast::new(&text).scan_plain(from), simple);
        }

        #[test]
        fn value_and_skip_agree_on_soup(text in soup()) {
            prop_assert_eq!(fast_value(&text), serde_json::from_str::<Value>(&text).ok());
            prop_assert_eq!(fast_skip(&text), serde_json::from_str::<IgnoredAny>(&text).is_ok());
        }

        #[test]
        fn value_and_skip_agree_on_values(text in values(), cut in 0usize..8) {
            // Whole values, and prefixes of them (invalid).
            let text = if cut == 0 { text } else {
                let n = text.len() * cut / 8;
                let n = (0..=n).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                text.get(..n).unwrap_or("").to_string()
            };
            let v = fast_value(&text);
            prop_assert_eq!(&v, &serde_json::from_str::<Value>(&text).ok());
            prop_assert_eq!(fast_skip(&text), serde_json::from_str::<IgnoredAny>(&text).is_ok());
            // Negative zero: `Value` equality does not see the sign.
            if let Some(v) = v {
                prop_assert_eq!(v.to_string(), serde_json::from_str::<Value>(&text).map(|v| v.to_string()).unwrap_or_default());
            }
        }
    }
}
