//! The span model handed to exporters: one OpenTelemetry SERVER span per JSON-RPC
//! request or notification (or per HTTP exchange that carried none).

use std::borrow::Cow;
use std::sync::Arc;

/// A string attribute value or span text, held in whichever of three ways
/// fits where it came from. Reads as a `str` (`Deref`); equality,
/// ordering, hashing, `Debug` and `Display` are those of the text, whatever
/// the form. Serialised as a plain JSON string (read back as [`Text::Owned`]).
#[derive(Clone)]
pub enum Text {
    /// A fixed value the decoder emits (`"http"`, `"request"`, known methods,
    /// protocol versions, routing statuses, ...): nothing to free.
    Static(&'static str),
    /// A text of this span alone (ids, names taken from the message).
    /// (`Box<str>`, not `String`: the three forms are then all a pointer and
    /// a length, told apart by a plain tag.)
    Owned(Box<str>),
    /// A text many spans carry (addresses, `User-Agent`, instance id, a
    /// session's client name): one allocation, counted references.
    Shared(Arc<str>),
}

impl Text {
    /// The text.
    #[inline]
    pub fn as_str(&self) -> &str {
        match self {
            Text::Static(s) => s,
            Text::Owned(s) => s,
            Text::Shared(s) => s,
        }
    }

    /// The text as an owned `String` (moved out when it is [`Text::Owned`]).
    pub fn into_string(self) -> String {
        match self {
            Text::Owned(s) => s.into_string(),
            other => other.as_str().to_owned(),
        }
    }
}

impl Default for Text {
    /// The empty text (allocates nothing).
    fn default() -> Text {
        Text::Static("")
    }
}

impl std::ops::Deref for Text {
    type Target = str;
    #[inline]
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::borrow::Borrow<str> for Text {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Text) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialOrd for Text {
    fn partial_cmp(&self, other: &Text) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Text {
    fn cmp(&self, other: &Text) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl std::hash::Hash for Text {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl std::fmt::Display for Text {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Text {
        Text::Static(s)
    }
}

impl From<String> for Text {
    /// Moves `s` (no copy when it has no spare capacity, as the decoder's
    /// strings are made).
    fn from(s: String) -> Text {
        Text::Owned(s.into_boxed_str())
    }
}

impl From<Arc<str>> for Text {
    fn from(s: Arc<str>) -> Text {
        Text::Shared(s)
    }
}

impl From<Cow<'static, str>> for Text {
    fn from(s: Cow<'static, str>) -> Text {
        match s {
            Cow::Borrowed(s) => Text::Static(s),
            Cow::Owned(s) => Text::from(s),
        }
    }
}

impl From<Text> for String {
    fn from(t: Text) -> String {
        t.into_string()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Text {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Text, D::Error> {
        String::deserialize(d).map(Text::from)
    }
}

/// One attribute value. OTel `AnyValue` restricted to what this crate emits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum AttrValue {
    /// UTF-8 string (see [`Text`] for the three ways it is held).
    Str(Text),
    /// Signed 64-bit integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Array of strings.
    StrArray(Vec<String>),
}

/// An attribute: name (usually a constant from [`crate::attrs`]) and value.
/// A `'static` key: pushing and dropping an attribute never touches its name.
/// (Serialised as the plain string; see [`de_attrs`] for reading one back.)
pub type Attr = (&'static str, AttrValue);

/// Reads a serialised attribute list (the spool's files): each name becomes
/// its constant in [`crate::attrs`] (a renamed one its new constant,
/// [`crate::attrs::RENAMED`]); a name that is not one of them (a file
/// written by another version) is interned once per process, up to
/// [`MAX_UNKNOWN_KEYS`] names of at most [`MAX_UNKNOWN_KEY_BYTES`] bytes
/// (their text kept for the life of the process); past that the list is
/// rejected with an error, so memory stays bounded.
#[cfg(feature = "serde")]
fn de_attrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Attr>, D::Error> {
    use serde::Deserialize;
    let raw: Vec<(Cow<'de, str>, AttrValue)> = Vec::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match crate::attrs::read_back(&k) {
            Some(k) => Ok((k, v)),
            None => intern_unknown(&k)
                .map(|k| (k, v))
                .ok_or_else(|| serde::de::Error::custom("too many unknown attribute names")),
        })
        .collect()
}

/// At most this many attribute names outside [`crate::attrs`] are read back
/// from serialised spans per process.
#[cfg(feature = "serde")]
pub const MAX_UNKNOWN_KEYS: usize = 256;
/// Longest attribute name outside [`crate::attrs`] that is read back.
#[cfg(feature = "serde")]
pub const MAX_UNKNOWN_KEY_BYTES: usize = 128;

/// The `'static` text of an attribute name outside [`crate::attrs`]: the
/// same text always gives the same one; `None` past the bounds above.
#[cfg(feature = "serde")]
fn intern_unknown(k: &str) -> Option<&'static str> {
    static UNKNOWN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let mut known = UNKNOWN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = known.iter().copied().find(|s| *s == k) {
        return Some(s);
    }
    if known.len() >= MAX_UNKNOWN_KEYS || k.len() > MAX_UNKNOWN_KEY_BYTES {
        return None;
    }
    let s: &'static str = Box::leak(k.to_owned().into_boxed_str());
    known.push(s);
    Some(s)
}

/// Span status, following the OTel MCP and HTTP server conventions (see
/// `docs/attributes.md`, "Status rule").
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub enum SpanStatus {
    /// Not an error (the OTel default; "OK" is never set by instrumentation).
    Unset,
    /// An error, with its description (JSON-RPC error message, `tool_error`,
    /// `HTTP 503`, `no_response`).
    Error(String),
}

/// A timestamped event inside a span (an SSE notification that preceded the
/// response, or a server→client request seen on the stream).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SpanEvent {
    /// Nanoseconds since the Unix epoch (the SSE event's capture timestamp).
    pub time_ns: u64,
    /// Notification or request method, e.g. `notifications/progress`.
    pub name: String,
    /// Event attributes (never message text unless bodies are captured).
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_attrs"))]
    pub attributes: Vec<Attr>,
}

/// One finished span. Its kind is always SERVER (the collector observes the server
/// side of each exchange).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Span {
    /// W3C trace id: inherited from `traceparent`, else derived (see `ids`). Never all zero.
    pub trace_id: [u8; 16],
    /// Span id, derived deterministically from the connection and request position.
    /// Never all zero.
    pub span_id: [u8; 8],
    /// Parent span id from an inherited `traceparent`, else `None` (root span).
    pub parent_span_id: Option<[u8; 8]>,
    /// W3C `tracestate` that came with the inherited `traceparent`, else empty.
    pub trace_state: String,
    /// `{mcp.method.name} {target}` or the HTTP method for http-level spans.
    pub name: String,
    /// Start: first byte of the HTTP request (ns since the Unix epoch).
    pub start_ns: u64,
    /// End: the response (SSE event or end of body), or when the exchange was given
    /// up (ns since the Unix epoch). Never before `start_ns`.
    pub end_ns: u64,
    /// Span status.
    pub status: SpanStatus,
    /// `service.instance.id` for this span's resource (usually shared by
    /// every span of the server).
    pub instance_id: Text,
    /// Attributes, see [`crate::attrs`].
    #[cfg_attr(feature = "serde", serde(deserialize_with = "de_attrs"))]
    pub attributes: Vec<Attr>,
    /// Span events (capped at `DecoderConfig::max_span_events`).
    pub events: Vec<SpanEvent>,
}

impl Drop for Span {
    /// Drops the attributes one by one with each value's variant known where
    /// it is dropped (most values are fixed texts, integers or booleans with
    /// nothing to free); frees what the generic drop of [`AttrValue`] frees.
    fn drop(&mut self) {
        for (_, value) in self.attributes.drain(..) {
            match value {
                AttrValue::Str(Text::Owned(s)) => drop(s),
                AttrValue::Str(Text::Shared(s)) => drop(s),
                AttrValue::StrArray(a) => drop(a),
                // `Static`, `Int`, `Bool`: nothing on the heap.
                nothing => std::mem::forget(nothing),
            }
        }
    }
}

impl Span {
    /// First attribute called `name`, if any.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    }

    /// String value of attribute `name` (`None` if absent or not a string).
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        match self.attr(name) {
            Some(AttrValue::Str(s)) => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span_with(attributes: Vec<Attr>) -> Span {
        Span {
            trace_id: [1; 16],
            span_id: [1; 8],
            parent_span_id: None,
            trace_state: String::new(),
            name: "n".into(),
            start_ns: 0,
            end_ns: 0,
            status: SpanStatus::Unset,
            instance_id: Text::default(),
            attributes,
            events: Vec::new(),
        }
    }

    /// Dropping a span releases each shared text exactly once, whatever the
    /// other attributes around it are.
    #[test]
    fn drop_releases_each_shared_text_once() {
        let shared: Arc<str> = Arc::from("10.0.0.1");
        let span = span_with(vec![
            ("a", AttrValue::Str(Text::Shared(shared.clone()))),
            ("b", AttrValue::Str(Text::from("x".to_string()))),
            ("c", AttrValue::Int(1)),
            ("d", AttrValue::Str(Text::Static("s"))),
            ("e", AttrValue::StrArray(vec!["k=v".into()])),
            ("f", AttrValue::Bool(true)),
            ("g", AttrValue::Str(Text::Shared(shared.clone()))),
        ]);
        let copy = span.clone();
        assert_eq!(Arc::strong_count(&shared), 5);
        drop(span);
        assert_eq!(Arc::strong_count(&shared), 3);
        drop(copy);
        assert_eq!(Arc::strong_count(&shared), 1);
    }

    proptest! {
        /// Differential check of `Span`'s own `Drop` against the derived
        /// drop it replaces (the attribute vector dropped as a plain
        /// `Vec<Attr>`): on any mix of attribute kinds, both release the
        /// shared texts the same number of times (the only heap effect a
        /// test can observe without an allocator of its own).
        #[test]
        fn own_drop_releases_what_the_derived_drop_releases(
            kinds in prop::collection::vec(0u8..6, 0..24),
        ) {
            let shared: Arc<str> = Arc::from("10.0.0.1");
            let attrs: Vec<Attr> = kinds
                .iter()
                .map(|k| {
                    let v = match k {
                        0 => AttrValue::Str(Text::Shared(shared.clone())),
                        1 => AttrValue::Str(Text::from("owned".to_string())),
                        2 => AttrValue::Str(Text::Static("s")),
                        3 => AttrValue::Int(7),
                        4 => AttrValue::Bool(true),
                        _ => AttrValue::StrArray(vec!["k=v".into(), "x".into()]),
                    };
                    ("a", v)
                })
                .collect();
            let derived = attrs.clone();
            let before = Arc::strong_count(&shared);
            drop(derived);
            let after_derived = Arc::strong_count(&shared);
            drop(span_with(attrs));
            prop_assert_eq!(before - after_derived, after_derived - Arc::strong_count(&shared));
            prop_assert_eq!(Arc::strong_count(&shared), 1);
        }
    }

    /// A serialised span (the spool's format: keys as plain strings) reads
    /// back equal, its known names as the `attrs` constants themselves and
    /// other names interned once.
    #[cfg(feature = "serde")]
    #[test]
    fn attributes_read_back_as_static_names() {
        let span = span_with(vec![
            (crate::attrs::URL_PATH, AttrValue::Str(Text::Static("/mcp"))),
            ("x.not.a.constant", AttrValue::Int(7)),
        ]);
        let json = serde_json::to_string(&span).expect("serialise");
        assert!(json.contains(r#"["url.path",{"Str":"/mcp"}]"#), "{json}");
        let back: Span = serde_json::from_str(&json).expect("read back");
        assert_eq!(back, span);
        let again: Span = serde_json::from_str(&json).expect("read back");
        let (k0, k1) = (back.attributes[0].0, back.attributes[1].0);
        assert!(std::ptr::eq(k0, crate::attrs::URL_PATH));
        assert!(std::ptr::eq(k1, again.attributes[1].0));
        let long = format!(
            r#"{{"x":[["{}",{{"Int":1}}]]}}"#,
            "k".repeat(MAX_UNKNOWN_KEY_BYTES + 1)
        );
        #[derive(serde::Deserialize)]
        struct Attrs {
            #[serde(deserialize_with = "super::de_attrs")]
            #[allow(dead_code)]
            x: Vec<Attr>,
        }
        assert!(serde_json::from_str::<Attrs>(&long).is_err());
    }

    proptest! {
        /// The three forms of a text read, compare, hash and print alike.
        #[test]
        fn text_forms_agree(s in ".{0,12}") {
            let forms = [
                Text::from(s.clone()),
                Text::Shared(Arc::from(s.as_str())),
                Text::from(Cow::Owned(s.clone())),
            ];
            for t in &forms {
                prop_assert_eq!(t.as_str(), s.as_str());
                prop_assert_eq!(t, &forms[0]);
                prop_assert_eq!(format!("{t:?}"), format!("{s:?}"));
                prop_assert_eq!(t.to_string(), s.clone());
                prop_assert_eq!(t.clone().into_string(), s.clone());
            }
            prop_assert_eq!(Text::Static("k"), Text::from("k".to_string()));
        }
    }
}
