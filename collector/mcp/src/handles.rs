//! Handle extraction: `key=value` strings for arguments and results whose key
//! matches the [`HandleRule`].
//!
//! Walks objects and arrays recursively up to [`MAX_DEPTH`] levels; string and
//! integer values of matching keys are collected, in document order (serde_json
//! object members iterate in key order), de-duplicated, at most [`MAX_HANDLES`]
//! per list, each value cut to [`MAX_VALUE_BYTES`]. Values that look like
//! credentials become `[REDACTED]`.
//!
//! Two ways in: [`Handles::walk`] over a parsed `Value`, and [`WalkSeed`], which
//! records the same candidates while the JSON text is parsed (no `Value` is
//! built) into a [`Found`] list that [`Handles::extend`] replays later. Both
//! give the same list and the same drop count (tested below).

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::config::HandleRule;
use crate::json::{Key, Skip};
use crate::redact::{REDACTED, looks_like_credential};

/// Deepest level walked (the root object is level 1).
pub const MAX_DEPTH: usize = 8;
/// Most handles kept per list.
pub const MAX_HANDLES: usize = 32;
/// Longest value kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;
/// Longest `content[*].text` parsed as JSON in search of handles, in bytes.
pub const MAX_TEXT_JSON_BYTES: usize = 64 * 1024;

/// Collected handles plus how many were dropped by the caps.
#[derive(Debug, Default)]
pub struct Handles {
    /// `key=value` strings.
    pub list: Vec<String>,
    /// Dropped by the count cap or the depth limit.
    pub dropped: u64,
}

impl Handles {
    /// Adds one `key=value` unless present or full.
    pub fn push(&mut self, key: &str, value: &Value) {
        let entry = match value {
            Value::String(s) => str_entry(key, s),
            Value::Number(n) if n.is_i64() || n.is_u64() => format!("{key}={n}"),
            _ => return,
        };
        self.push_entry(&entry);
    }

    /// Adds one ready `key=value` string unless present or full.
    fn push_entry(&mut self, entry: &str) {
        if self.list.iter().any(|e| e == entry) {
            return;
        }
        if self.list.len() >= MAX_HANDLES {
            self.dropped += 1;
            return;
        }
        self.list.push(entry.to_owned());
    }

    /// Replays candidates recorded by [`WalkSeed`]: the same effect as
    /// [`Handles::walk`] over the value they were recorded from.
    pub fn extend(&mut self, found: &Found) {
        for item in &found.items {
            match item {
                Item::Handle(entry) => self.push_entry(entry),
                Item::TooDeep => self.dropped += 1,
            }
        }
    }

    /// Walks `v` and collects matching members.
    pub fn walk(&mut self, v: &Value, rule: &HandleRule) {
        self.walk_depth(v, rule, 1);
    }

    fn walk_depth(&mut self, v: &Value, rule: &HandleRule, depth: usize) {
        if depth > MAX_DEPTH {
            if matches!(v, Value::Object(_) | Value::Array(_)) {
                self.dropped += 1;
            }
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if rule.matches(k) {
                        self.push(k, x);
                    }
                    if matches!(x, Value::Object(_) | Value::Array(_)) {
                        self.walk_depth(x, rule, depth + 1);
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.walk_depth(x, rule, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// Walks the JSON objects among `texts`: the `content[*].text` strings of a
    /// tool result that start with `{` (py servers serialise structured
    /// output there too), as collected by the response parser (at most 64
    /// items, each at most [`MAX_TEXT_JSON_BYTES`]). Texts that are not a JSON
    /// object are skipped.
    pub fn walk_json_texts(&mut self, texts: &[String], rule: &HandleRule) {
        for t in texts {
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(t) {
                self.walk(&v, rule);
            }
        }
    }
}

/// `key=value` for a string value: `[REDACTED]` when it looks like a
/// credential, else cut to [`MAX_VALUE_BYTES`].
fn str_entry(key: &str, s: &str) -> String {
    let text = if looks_like_credential(s) {
        REDACTED
    } else {
        crate::json::cut(s, MAX_VALUE_BYTES)
    };
    let mut entry = String::with_capacity(key.len() + 1 + text.len());
    entry.push_str(key);
    entry.push('=');
    entry.push_str(text);
    entry
}

/// Handle candidates recorded while parsing one JSON value, in the order
/// [`Handles::walk`] visits them in the equivalent `Value` (object members in
/// key order, the last of duplicate members only). Replayed by
/// [`Handles::extend`], which applies the de-duplication and the count cap.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Found {
    items: Vec<Item>,
}

impl Found {
    /// `true` when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Records one candidate; the first allocates the list at its usual
    /// first capacity directly (no growth step).
    #[inline]
    fn push(&mut self, item: Item) {
        if self.items.capacity() == 0 {
            self.items = Vec::with_capacity(4);
        }
        self.items.push(item);
    }

    /// Appends the candidates of `other` after these.
    pub fn append(&mut self, other: &mut Found) {
        self.items.append(&mut other.items);
    }
}

/// One recorded candidate.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    /// A `key=value` string (value already redacted or cut).
    Handle(String),
    /// A container below [`MAX_DEPTH`], not walked (counted as dropped).
    TooDeep,
}

/// Parses one JSON value (as strictly as a `Value` parse: everything goes
/// through `deserialize_any`) and records its handle candidates into `out`,
/// as [`Handles::walk`] would visit them (the value is at level `depth`; the
/// root is level 1).
pub(crate) struct WalkSeed<'a> {
    /// The handle rule.
    pub rule: &'a HandleRule,
    /// Level of the value (1 for the root).
    pub depth: usize,
    /// Where candidates go.
    pub out: &'a mut Found,
}

/// An object member's value: a handle when the key matches and the value is a
/// string or an integer; walked when a container.
struct MemberSeed<'a, 'k> {
    key: &'k str,
    matches: bool,
    walk: WalkSeed<'a>,
}

impl<'de> DeserializeSeed<'de> for WalkSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for WalkSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.depth > MAX_DEPTH {
            self.out.push(Item::TooDeep);
            while seq.next_element_seed(Skip)?.is_some() {}
            return Ok(());
        }
        let (rule, depth, out) = (self.rule, self.depth + 1, self.out);
        while seq
            .next_element_seed(WalkSeed {
                rule,
                depth,
                out: &mut *out,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        if self.depth > MAX_DEPTH {
            self.out.push(Item::TooDeep);
            while map.next_key_seed(Skip)?.is_some() {
                map.next_value_seed(Skip)?;
            }
            return Ok(());
        }
        let (rule, depth, out) = (self.rule, self.depth + 1, self.out);
        let base = out.items.len();
        // Members that recorded something: key, start and end in `out`
        // (`start == end` once a later duplicate replaced it). The first one
        // is kept apart: most objects have at most one.
        let mut first: Option<(Cow<'de, str>, usize, usize)> = None;
        let mut more: Vec<(Cow<'de, str>, usize, usize)> = Vec::new();
        let mut reorder = false;
        while let Some(key) = map.next_key_seed(Key)? {
            let start = out.items.len();
            map.next_value_seed(MemberSeed {
                key: &key,
                matches: rule.matches(&key),
                walk: WalkSeed {
                    rule,
                    depth,
                    out: &mut *out,
                },
            })?;
            let end = out.items.len();
            if first.is_some() || !more.is_empty() {
                // The last of duplicate members wins, as in a `Value`.
                for m in first.iter_mut().chain(more.iter_mut()) {
                    if m.0 == key {
                        m.2 = m.1;
                        reorder = true;
                    }
                }
                let last = more.last().or(first.as_ref());
                if end > start && last.is_some_and(|m| m.0.as_ref() > key.as_ref()) {
                    reorder = true;
                }
            }
            if end > start {
                if first.is_none() && more.is_empty() {
                    first = Some((key, start, end));
                } else {
                    more.extend(first.take());
                    more.push((key, start, end));
                }
            }
        }
        if reorder {
            // Rare: put the members in key order (a `Value` map's order).
            let mut members: Vec<_> = first.into_iter().chain(more).collect();
            let tail = out.items.split_off(base);
            members.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, start, end) in &members {
                if let Some(items) = tail.get(*start - base..*end - base) {
                    out.items.extend_from_slice(items);
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for MemberSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MemberSeed<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        if self.matches {
            self.walk
                .out
                .push(Item::Handle(format!("{}={n}", self.key)));
        }
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        if self.matches {
            self.walk
                .out
                .push(Item::Handle(format!("{}={n}", self.key)));
        }
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        if self.matches {
            self.walk.out.push(Item::Handle(str_entry(self.key, s)));
        }
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        self.walk.visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        self.walk.visit_map(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn nested_handles() {
        let rule = HandleRule::default();
        let mut h = Handles::default();
        h.walk(
            &json!({"basket_id":"b-1","items":[{"sku_id":7,"qty":2}],"deep":{"file_handle":"fh","fileHandle":"no"},"name":"x","taskId":"t1","price_id":1.5}),
            &rule,
        );
        assert_eq!(
            h.list,
            vec!["basket_id=b-1", "file_handle=fh", "sku_id=7", "taskId=t1"]
        );
    }

    /// Handles of `text` through [`WalkSeed`] (`None` when the text is not
    /// JSON), as the parsers run it: `str` reader, then only whitespace.
    fn seeded(text: &str, rule: &HandleRule) -> Option<Handles> {
        let mut found = Found::default();
        let mut de = serde_json::Deserializer::from_str(text);
        WalkSeed {
            rule,
            depth: 1,
            out: &mut found,
        }
        .deserialize(&mut de)
        .ok()?;
        de.end().ok()?;
        let mut h = Handles::default();
        h.extend(&found);
        Some(h)
    }

    /// Handles of `text` through a `Value` and [`Handles::walk`].
    fn walked(text: &str, rule: &HandleRule) -> Option<Handles> {
        let v: Value = serde_json::from_str(text).ok()?;
        let mut h = Handles::default();
        h.walk(&v, rule);
        Some(h)
    }

    /// Handles of an already parsed `Value` through [`WalkSeed`].
    fn seeded_value(v: &Value, rule: &HandleRule) -> Handles {
        let mut found = Found::default();
        let _ = WalkSeed {
            rule,
            depth: 1,
            out: &mut found,
        }
        .deserialize(v);
        let mut h = Handles::default();
        h.extend(&found);
        h
    }

    fn same(a: &Option<Handles>, b: &Option<Handles>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => a.list == b.list && a.dropped == b.dropped,
            (None, None) => true,
            _ => false,
        }
    }

    #[test]
    fn seed_matches_walk_on_duplicates_order_depth_and_caps() {
        let rule = HandleRule::default();
        let deep = format!(
            "{}{}{}",
            "{\"a\":[".repeat(6),
            "{\"x_id\":1,\"y\":{\"z_id\":2,\"w\":{}}}",
            "]}".repeat(6)
        );
        let many: Vec<String> = (0..40)
            .map(|i| format!("\"k{i:02}_id\":{}", i % 35))
            .collect();
        let many = format!("{{{},\"k00_id\":\"Bearer x\"}}", many.join(","));
        for text in [
            r#"{"b_id":"2","a_id":1,"b_id":3,"c":{"taskId":"t","taskId":[1]},"a_id":"sk-1"}"#,
            r#"{"z_id":"1","m":[{"a_id":1},{"a_id":1.5}],"a":{"q_id":"\u00e9"},"y_id":-4}"#,
            r#"[{"x_id":"1"},{"x_id":"1"}, 3, "s"]"#,
            r#"{"a_id":1,"a_id":{"b_id":2},"a_id":null}"#,
            r#"{"\u0061_id":"e","a_id":"f"}"#,
            &deep,
            &many,
            r#"{"a_id":1e400}"#,
            r#"{"a_id":"\ud800"}"#,
            "7",
        ] {
            let a = seeded(text, &rule);
            let b = walked(text, &rule);
            assert!(same(&a, &b), "{text}: {a:?} vs {b:?}");
        }
        let h = seeded(&many, &rule).expect("valid");
        assert_eq!(h.list.len(), MAX_HANDLES);
        assert!(h.dropped > 0);
        assert!(seeded(&deep, &rule).expect("valid").dropped > 0);
    }

    /// Nested JSON with handle-looking keys, duplicates and deep nesting.
    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            "1",
            "-2",
            "2.5",
            "\"v\"",
            "\"Bearer t\"",
            "null",
            "true",
            "{}",
            "[]",
            "18446744073709551615",
            "\"\\u00e9x\"",
        ])
        .prop_map(str::to_owned);
        crate::testutil::json_text(
            leaf,
            vec![
                "a_id",
                "b_id",
                "taskId",
                "xId",
                "fhandle",
                "a",
                "b",
                "_id",
                "a\\u005fid",
            ],
            12,
            256,
            5,
        )
    }

    proptest! {
        #[test]
        fn seed_and_value_walk_agree(text in json_text(), cut in 0usize..4) {
            let rule = HandleRule::default();
            // Also cut texts (invalid JSON) at a few places.
            let text = if cut == 0 { text.clone() } else {
                let n = text.len() * cut / 4;
                let n = (0..=n).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                text.get(..n).unwrap_or("").to_string()
            };
            let a = seeded(&text, &rule);
            let b = walked(&text, &rule);
            prop_assert!(same(&a, &b), "{}: {:?} vs {:?}", text, a, b);
            if let Ok(v) = serde_json::from_str::<Value>(&text) {
                let c = seeded_value(&v, &rule);
                prop_assert!(same(&Some(c), &b));
            }
        }
    }
}
