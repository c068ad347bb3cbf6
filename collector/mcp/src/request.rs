//! Typed parse of JSON-RPC request bodies: only the members the decoder reads
//! are kept (see `docs/attributes.md` for where each one goes), without
//! building a `serde_json::Value` tree per message.
//!
//! The parse is exactly as strict as `serde_json::from_slice::<Value>`: every
//! skipped value is still visited through `Deserializer::deserialize_any`
//! (strings validated as UTF-8, numbers range-checked, the same recursion
//! limit), so a body is rejected if and only if the `Value` parse rejects it.
//! Duplicate object members behave as in a `Value` (a `BTreeMap`): the last
//! one wins. Object keys are borrowed from the input unless they contain
//! escapes. The same seeds also read an already built `&Value` (used when
//! bodies are captured and the `Value` is kept anyway); both paths give equal
//! results (tested below).
//!
//! Members read (JSON-RPC 2.0 §4; MCP `basic/index.mdx` for `params._meta`):
//! `method`, `id`, `jsonrpc`, presence of `result`/`error`, and in `params`:
//! `_meta` (protocol version, client info and capabilities, `traceparent`,
//! `tracestate`, `progressToken`), `name`, `uri`, `protocolVersion`,
//! `clientInfo`, `capabilities`, `task`, `taskId`, `arguments`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::config::HandleRule;
use crate::handles::{Found, WalkSeed};
use crate::json::{Body, BodySeed, IsObject, Key, Skip, StrSeed, cap, read_all};
use crate::protocol::{
    META_CLIENT_CAPS, META_CLIENT_INFO, META_PROGRESS_TOKEN, META_PROTOCOL_VERSION,
    META_TRACEPARENT, META_TRACESTATE, Method, known_version,
};
use crate::span::Text;

/// Most top-level capability keys kept, and most `extensions` ids kept.
const MAX_CAPABILITY_KEYS: usize = 32;

/// A request body: one message or a batch.
pub(crate) type ReqBody = Body<ReqMsg>;

/// The members of one JSON-RPC message object that the decoder reads.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ReqMsg {
    /// `method`, when a string (uncut): a known MCP method as its
    /// `'static` text (nothing allocated), else owned.
    pub method: Option<Text>,
    /// `method` as a known [`Method`], when it is one.
    pub kind: Option<Method>,
    /// `id`, whatever its type (`null` included), when present.
    pub id: Option<Value>,
    /// `jsonrpc`, when a string other than `2.0` (cut to [`MAX_NAME_BYTES`](crate::json::MAX_NAME_BYTES)).
    pub jsonrpc: Option<String>,
    /// A `result` or `error` member is present (any value).
    pub has_result_or_error: bool,
    /// `params`; all empty when absent or not an object. Boxed: built in
    /// place, so the message moves as a few words, not ~400 bytes.
    pub params: Box<Params>,
}

/// `params` members read by the decoder. String values are cut to
/// [`MAX_NAME_BYTES`](crate::json::MAX_NAME_BYTES) unless noted.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Params {
    /// `_meta`; all empty when absent or not an object.
    pub meta: Meta,
    /// `name`, when a string.
    pub name: Option<String>,
    /// `uri`, when a string.
    pub uri: Option<String>,
    /// `protocolVersion`, when a string.
    pub protocol_version: Option<String>,
    /// `clientInfo`, when an object.
    pub client_info: Option<ClientInfo>,
    /// `capabilities`.
    pub capabilities: Caps,
    /// `task` is an object (2025-11-25 task augmentation).
    pub task_is_object: bool,
    /// `taskId`, whatever its type.
    pub task_id: Option<Value>,
    /// Handle candidates of `arguments` (walked with the handle rule while
    /// parsing, see [`WalkSeed`]); empty when absent.
    pub arguments: Found,
}

/// `params._meta` members read by the decoder.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Meta {
    /// `io.modelcontextprotocol/protocolVersion`, when a string (cut): a
    /// known version as its `'static` text (nothing allocated), else owned.
    pub protocol_version: Option<Text>,
    /// `io.modelcontextprotocol/clientInfo`, when an object.
    pub client_info: Option<ClientInfo>,
    /// Keys of `io.modelcontextprotocol/clientCapabilities`, when an object
    /// (see [`Caps`]).
    pub client_caps: Option<Vec<String>>,
    /// `traceparent`, when a string (uncut).
    pub traceparent: Option<String>,
    /// `tracestate`, when a string (uncut).
    pub tracestate: Option<String>,
    /// `progressToken`, whatever its type.
    pub progress_token: Option<Value>,
}

/// `name` and `version` of a client info object, when strings (cut).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ClientInfo {
    /// `name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
}

/// A capabilities member.
#[derive(Debug, Default, PartialEq)]
pub(crate) enum Caps {
    /// Absent.
    #[default]
    Absent,
    /// Present but not an object.
    NotObject,
    /// An object: its top-level keys in key order (at most 32), then the keys
    /// of its `extensions` object (at most 32), each cut.
    Keys(Vec<String>),
}

/// Parses a request body (`serde_json::from_slice` strictness, see the module
/// doc).
///
/// # Errors
/// Exactly when `serde_json::from_slice::<Value>(bytes)` fails.
pub(crate) fn parse(bytes: &[u8], rule: &HandleRule) -> serde_json::Result<ReqBody> {
    read_all(bytes, BodySeed(MsgSeed(rule)))
}

/// Reads one message from an already parsed `Value` (never fails in practice:
/// every seed accepts every JSON type; an error is reported as `None`, a
/// non-object).
pub(crate) fn msg_from_value(v: &Value, rule: &HandleRule) -> Option<ReqMsg> {
    MsgSeed(rule).deserialize(v).ok().flatten()
}

// ---- seeds --------------------------------------------------------------------------

/// `jsonrpc`: a string other than `2.0` (cut to [`MAX_NAME_BYTES`](crate::json::MAX_NAME_BYTES)), else
/// `None` (nothing is allocated for `2.0`).
struct VersionSeed;

/// `method`: a string (uncut), as the `'static` text and the [`Method`] of a
/// known MCP method when it is one, else `None`.
struct MethodSeed;

/// A protocol version: a string (cut to [`MAX_NAME_BYTES`](crate::json::MAX_NAME_BYTES)), as the
/// `'static` text of a known version when it is one, else `None`.
struct VersionTextSeed;

/// One message: an object, else `None`; `arguments` walked with the rule.
#[derive(Clone, Copy)]
struct MsgSeed<'r>(&'r HandleRule);

/// `params`: an object, else all empty; `arguments` walked with the rule.
struct ParamsSeed<'r>(&'r HandleRule);

/// `_meta`: an object's members are written into `.0` (which the caller
/// has reset), else nothing is.
struct MetaSeed<'a>(&'a mut Meta);

/// A client info object, else `None`.
struct ClientInfoSeed;

/// A capabilities object's keys, else `None`.
struct CapsSeed;

/// The sorted, de-duplicated keys of an object (at most 32, cut), else `None`.
struct KeysSeed;

any_seed!(VersionSeed, Option<String>);
impl<'de> Visitor<'de> for VersionSeed {
    type Value = Option<String>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(None);
    seq_gives!(None);
    map_gives!(None);
    fn visit_str<E>(self, s: &str) -> Result<Option<String>, E> {
        Ok((s != "2.0").then(|| cap(s).to_owned()))
    }
}

any_seed!(MethodSeed, Option<(Text, Option<Method>)>);
impl<'de> Visitor<'de> for MethodSeed {
    type Value = Option<(Text, Option<Method>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(None);
    seq_gives!(None);
    map_gives!(None);
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(match Method::parse(s) {
            Some(k) => (Text::Static(k.as_str()), Some(k)),
            None => (Text::from(s.to_owned()), None),
        }))
    }
    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Some(match Method::parse(&s) {
            Some(k) => (Text::Static(k.as_str()), Some(k)),
            None => (Text::from(s), None),
        }))
    }
}

any_seed!(VersionTextSeed, Option<Text>);
impl<'de> Visitor<'de> for VersionTextSeed {
    type Value = Option<Text>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(None);
    seq_gives!(None);
    map_gives!(None);
    fn visit_str<E>(self, s: &str) -> Result<Option<Text>, E> {
        Ok(Some(match known_version(s) {
            Some(k) => Text::Static(k),
            None => Text::from(cap(s).to_owned()),
        }))
    }
}

impl<'de> DeserializeSeed<'de> for MsgSeed<'_> {
    type Value = Option<ReqMsg>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<ReqMsg>, D::Error> {
        d.deserialize_any(self)
    }
}
impl<'de> Visitor<'de> for MsgSeed<'_> {
    type Value = Option<ReqMsg>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<ReqMsg>, A::Error> {
        let (mut method, mut id, mut jsonrpc, mut has_result_or_error) = (None, None, None, false);
        // Built once: `ReqMsg::default()` would allocate a `Params` too.
        let mut params = None;
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "method" => method = map.next_value_seed(MethodSeed)?,
                "id" => id = Some(map.next_value::<Value>()?),
                "jsonrpc" => jsonrpc = map.next_value_seed(VersionSeed)?,
                "params" => params = Some(map.next_value_seed(ParamsSeed(self.0))?),
                "result" | "error" => {
                    has_result_or_error = true;
                    map.next_value_seed(Skip)?;
                }
                _ => map.next_value_seed(Skip)?,
            }
        }
        let (method, kind) = match method {
            Some((text, kind)) => (Some(text), kind),
            None => (None, None),
        };
        Ok(Some(ReqMsg {
            method,
            kind,
            id,
            jsonrpc,
            has_result_or_error,
            params: params.unwrap_or_default(),
        }))
    }
}

impl<'de> DeserializeSeed<'de> for ParamsSeed<'_> {
    type Value = Box<Params>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Box<Params>, D::Error> {
        d.deserialize_any(self)
    }
}
impl<'de> Visitor<'de> for ParamsSeed<'_> {
    type Value = Box<Params>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }
    scalars_give!(Box::default());
    str_gives!(Box::default());
    seq_gives!(Box::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Box<Params>, A::Error> {
        let mut p = Box::<Params>::default();
        let mut meta_seen = false;
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "_meta" => {
                    // Last member wins, as in a `Value` (reset only for a
                    // duplicate).
                    if meta_seen {
                        p.meta = Meta::default();
                    }
                    meta_seen = true;
                    map.next_value_seed(MetaSeed(&mut p.meta))?;
                }
                "name" => p.name = map.next_value_seed(StrSeed(true))?,
                "uri" => p.uri = map.next_value_seed(StrSeed(true))?,
                "protocolVersion" => p.protocol_version = map.next_value_seed(StrSeed(true))?,
                "clientInfo" => p.client_info = map.next_value_seed(ClientInfoSeed)?,
                "capabilities" => {
                    p.capabilities = match map.next_value_seed(CapsSeed)? {
                        Some(keys) => Caps::Keys(keys),
                        None => Caps::NotObject,
                    }
                }
                "task" => p.task_is_object = map.next_value_seed(IsObject)?,
                "taskId" => p.task_id = Some(map.next_value::<Value>()?),
                "arguments" => {
                    // Last member wins, as in a `Value`.
                    p.arguments = Found::default();
                    map.next_value_seed(WalkSeed {
                        rule: self.0,
                        depth: 1,
                        out: &mut p.arguments,
                    })?;
                }
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(p)
    }
}

impl<'de> DeserializeSeed<'de> for MetaSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}
impl<'de> Visitor<'de> for MetaSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_meta")
    }
    scalars_give!(());
    str_gives!(());
    seq_gives!(());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let m = self.0;
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                META_PROTOCOL_VERSION => {
                    m.protocol_version = map.next_value_seed(VersionTextSeed)?
                }
                META_CLIENT_INFO => m.client_info = map.next_value_seed(ClientInfoSeed)?,
                META_CLIENT_CAPS => m.client_caps = map.next_value_seed(CapsSeed)?,
                META_TRACEPARENT => m.traceparent = map.next_value_seed(StrSeed(false))?,
                META_TRACESTATE => m.tracestate = map.next_value_seed(StrSeed(false))?,
                META_PROGRESS_TOKEN => m.progress_token = Some(map.next_value::<Value>()?),
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(())
    }
}

any_seed!(ClientInfoSeed, Option<ClientInfo>);
impl<'de> Visitor<'de> for ClientInfoSeed {
    type Value = Option<ClientInfo>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("client info")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<ClientInfo>, A::Error> {
        let mut c = ClientInfo::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "name" => c.name = map.next_value_seed(StrSeed(true))?,
                "version" => c.version = map.next_value_seed(StrSeed(true))?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(c))
    }
}

any_seed!(CapsSeed, Option<Vec<String>>);
impl<'de> Visitor<'de> for CapsSeed {
    type Value = Option<Vec<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("capabilities")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Vec<String>>, A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        let mut ext: Option<Vec<String>> = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == "extensions" {
                ext = map.next_value_seed(KeysSeed)?;
            } else {
                map.next_value_seed(Skip)?;
            }
            keys.push(key);
        }
        let mut out = sorted_keys(keys);
        out.extend(ext.unwrap_or_default());
        Ok(Some(out))
    }
}

any_seed!(KeysSeed, Option<Vec<String>>);
impl<'de> Visitor<'de> for KeysSeed {
    type Value = Option<Vec<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Vec<String>>, A::Error> {
        let mut keys: Vec<Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key_seed(Key)? {
            map.next_value_seed(Skip)?;
            keys.push(key);
        }
        Ok(Some(sorted_keys(keys)))
    }
}

/// The first [`MAX_CAPABILITY_KEYS`] distinct keys in key order (as a
/// `serde_json::Map` iterates them), each cut to [`MAX_NAME_BYTES`](crate::json::MAX_NAME_BYTES).
fn sorted_keys(mut keys: Vec<Cow<'_, str>>) -> Vec<String> {
    keys.sort_unstable();
    keys.dedup();
    keys.iter()
        .take(MAX_CAPABILITY_KEYS)
        .map(|k| cap(k).to_owned())
        .collect()
}

/// Fuzzing only (`cargo fuzz` builds with `--cfg fuzzing`): panics when the
/// fast deserializer ([`read_all`] on UTF-8 text) and serde_json's reader
/// ([`read_all_serde`](crate::json::read_all_serde)) disagree on `bytes` as a request body (accepted or
/// rejected, and the typed result).
#[cfg(fuzzing)]
pub(crate) fn fuzz_agree(bytes: &[u8]) {
    let rule = HandleRule::default();
    let fast = read_all(bytes, BodySeed(MsgSeed(&rule)));
    let serde = crate::json::read_all_serde(bytes, BodySeed(MsgSeed(&rule)));
    assert_eq!(
        fast.is_ok(),
        serde.is_ok(),
        "request body accepted by one reader only"
    );
    assert_eq!(fast.ok(), serde.ok(), "request body read differently");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::Handles;
    use crate::json::read_all_serde;
    use proptest::prelude::*;

    fn parse(bytes: &[u8]) -> serde_json::Result<ReqBody> {
        super::parse(bytes, &HandleRule::default())
    }

    fn msg_from_value(v: &Value) -> Option<ReqMsg> {
        super::msg_from_value(v, &HandleRule::default())
    }

    fn via_value(bytes: &[u8]) -> Option<ReqBody> {
        let v: Value = serde_json::from_slice(bytes).ok()?;
        Some(match &v {
            Value::Array(items) => Body::Batch(items.iter().map(msg_from_value).collect()),
            other => Body::Single(msg_from_value(other)),
        })
    }

    #[test]
    fn reads_the_members_the_decoder_uses() {
        let body = br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","result":null,
            "params":{"name":"add","uri":5,"arguments":{"basket_id":"b"},"taskId":"t",
              "task":{},"capabilities":{"z":1,"a":{},"extensions":{"y":1,"x":2},"a":3},
              "clientInfo":{"name":"c","version":1},"protocolVersion":"2025-11-25",
              "_meta":{"progressToken":"p","traceparent":"tp","tracestate":"ts",
                "io.modelcontextprotocol/clientCapabilities":[],
                "io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}"#;
        let Body::Single(Some(m)) = parse(body).expect("valid") else {
            panic!("one message expected");
        };
        assert_eq!(m.method.as_deref(), Some("tools/call"));
        assert_eq!(m.id, Some(serde_json::json!(7)));
        assert_eq!(m.jsonrpc, None);
        assert!(m.has_result_or_error);
        let p = &m.params;
        assert_eq!(p.name.as_deref(), Some("add"));
        assert_eq!(p.uri, None);
        let mut h = Handles::default();
        h.extend(&p.arguments);
        assert_eq!(h.list, vec!["basket_id=b"]);
        assert!(p.task_is_object);
        assert_eq!(
            p.capabilities,
            Caps::Keys(vec![
                "a".into(),
                "extensions".into(),
                "z".into(),
                "x".into(),
                "y".into()
            ])
        );
        assert_eq!(
            p.client_info,
            Some(ClientInfo {
                name: Some("c".into()),
                version: None
            })
        );
        assert_eq!(p.meta.client_caps, None);
        assert_eq!(p.meta.protocol_version.as_deref(), Some("2026-07-28"));
        assert_eq!(p.meta.progress_token, Some(serde_json::json!("p")));
        assert_eq!(Some(Body::Single(Some(m))), via_value(body));
    }

    #[test]
    fn duplicates_last_wins_and_non_objects() {
        let body = br#"[1, {"method":"a","method":7,"params":{"_meta":{"traceparent":"x"},"_meta":1,"capabilities":{}}},
            {"method":"b","params":[],"jsonrpc":"1.0"}, {"error":1}]"#;
        let parsed = parse(body).expect("valid");
        assert_eq!(Some(&parsed), via_value(body).as_ref());
        let Body::Batch(items) = parsed else {
            panic!("batch expected");
        };
        assert_eq!(items.len(), 4);
        assert!(items[0].is_none());
        let m = items[1].as_ref().expect("object");
        assert_eq!(m.method, None);
        assert_eq!(m.params.meta, Meta::default());
        assert_eq!(m.params.capabilities, Caps::Keys(Vec::new()));
        let m = items[2].as_ref().expect("object");
        assert_eq!(m.jsonrpc.as_deref(), Some("1.0"));
        assert!(items[3].as_ref().is_some_and(|m| m.has_result_or_error));
    }

    #[test]
    fn same_errors_as_value() {
        for bad in [
            &br#"{"method":"a","x":1e400}"#[..],
            br#"{"method":"a","x":"\ud800"}"#,
            b"{\"method\":\"a\",\"x\":\"\xff\"}",
            br#"{"method":"a"} x"#,
            br#"{"method":"a","x":[1,]}"#,
            br#"{"a":1,}"#,
        ] {
            assert_eq!(
                parse(bad).is_err(),
                serde_json::from_slice::<Value>(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(parse(deep.as_bytes()).is_err());
        assert!(serde_json::from_slice::<Value>(deep.as_bytes()).is_err());
    }

    /// JSON-ish text from a small alphabet of tokens that hits the read members
    /// (with duplicates) and malformed input alike.
    fn token_text() -> impl Strategy<Value = String> {
        let tok = prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            "\"method\"",
            "\"id\"",
            "\"params\"",
            "\"_meta\"",
            "\"name\"",
            "\"uri\"",
            "\"taskId\"",
            "\"task\"",
            "\"arguments\"",
            "\"capabilities\"",
            "\"extensions\"",
            "\"clientInfo\"",
            "\"version\"",
            "\"jsonrpc\"",
            "\"2.0\"",
            "\"result\"",
            "\"progressToken\"",
            "\"traceparent\"",
            "\"io.modelcontextprotocol/clientCapabilities\"",
            "\"io.modelcontextprotocol/clientInfo\"",
            "\"a\\u0062\"",
            "\"\\ud800\"",
            "1",
            "-2",
            "1.5",
            "1e400",
            "null",
            "true",
            "\"x\"",
        ]);
        prop::collection::vec(tok, 0..40).prop_map(|v| v.concat())
    }

    /// Well-formed messages with duplicate and nested members.
    fn message_text() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            "1",
            "\"s\"",
            "null",
            "{}",
            "[]",
            "2.5",
            "true",
            "{\"name\":\"n\",\"z\":1}",
        ])
        .prop_map(str::to_owned);
        crate::testutil::json_text(
            leaf,
            vec![
                "method",
                "id",
                "params",
                "_meta",
                "name",
                "uri",
                "taskId",
                "task",
                "arguments",
                "capabilities",
                "extensions",
                "clientInfo",
                "version",
                "jsonrpc",
                "error",
                "progressToken",
                "tracestate",
                "io.modelcontextprotocol/protocolVersion",
                "io.modelcontextprotocol/clientInfo",
                "io.modelcontextprotocol/clientCapabilities",
            ],
            4,
            64,
            6,
        )
    }

    proptest! {
        #[test]
        fn bytes_and_value_agree_on_tokens(text in token_text()) {
            let bytes = text.as_bytes();
            prop_assert_eq!(parse(bytes).is_err(), serde_json::from_slice::<Value>(bytes).is_err());
            if let Ok(b) = parse(bytes) {
                prop_assert_eq!(Some(b), via_value(bytes));
            }
        }

        #[test]
        fn fast_and_serde_agree(text in prop_oneof![token_text(), crate::json::fast::tests::soup()]) {
            let rule = HandleRule::default();
            let bytes = text.as_bytes();
            let fast = read_all(bytes, BodySeed(MsgSeed(&rule)));
            let serde = read_all_serde(bytes, BodySeed(MsgSeed(&rule)));
            prop_assert_eq!(fast.is_err(), serde.is_err(), "{}", text);
            prop_assert_eq!(fast.ok(), serde.ok());
        }

        #[test]
        fn bytes_and_value_agree_on_messages(text in message_text()) {
            let bytes = text.as_bytes();
            let b = parse(bytes);
            prop_assert!(b.is_ok(), "{}", text);
            prop_assert_eq!(b.ok(), via_value(bytes));
        }
    }
}
