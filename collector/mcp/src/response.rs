//! Typed parse of JSON-RPC messages from response bodies and SSE `data`
//! fields: only the members the decoder reads are kept, without building a
//! `serde_json::Value` tree per message.
//!
//! Strictness (which bodies are rejected) is that of the pruned parse this
//! replaces: per message, the members `error`, `id`, `method`, `params` and
//! `result` are checked as a `Value` parse would check them (strings
//! validated as UTF-8, numbers range-checked); inside an object `result`, the
//! members read (listed below) likewise; every other member is only
//! syntax-checked (`IgnoredAny`), so invalid UTF-8 inside such a member is not
//! an error. Duplicate members: the last one wins, as in a `Value`. With
//! captured bodies the whole `Value` is built (the redacted body needs it) and
//! the members are read from it, which gives equal results (tested below).
//!
//! Members read (JSON-RPC 2.0 §5; MCP `server/tools.mdx`, tasks extension):
//! `id`, `method`, `params` (notifications and server requests: `progressToken`,
//! `progress`, `total`, `level`, `logger`; the whole value only when bodies are
//! captured; `params` is read as strictly as a `Value`),
//! //! `Value`), `error` (`code`, `message`), and in `result`: `isError`,
//! `resultType`, `ttlMs`, `cacheScope`, `taskId`, `status`, `task` (`taskId`,
//! `status`), `structuredContent`, `content[*].text`, `protocolVersion`.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::config::HandleRule;
use crate::handles::{Found, MAX_TEXT_JSON_BYTES, WalkSeed};
use crate::json::{Body, BodySeed, Key, Skip, StrSeed, cap, read_all, read_str};
use crate::protocol::{CACHE_SCOPES, RESULT_TYPES};

/// Most `content` items looked at for JSON texts.
const MAX_CONTENT_ITEMS: usize = 64;

/// A response body or SSE `data` field: one message or a batch.
pub(crate) type RespBody = Body<RespMsg>;

/// The members of one JSON-RPC message (response, notification or server
/// request) that the decoder reads.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RespMsg {
    /// `id`, whatever its type (`null` included), when present.
    pub id: Option<Value>,
    /// `method`, when a string (uncut).
    pub method: Option<String>,
    /// `params` (of a notification or server request), when present,
    /// whatever its type (members empty unless an object). Boxed: rare, and
    /// the message moves as a few words.
    pub params: Option<Box<NoteParams>>,
    /// A `result` member is present (any value).
    pub has_result: bool,
    /// `result`, when an object. Boxed: built in place, so the message moves
    /// as a few words.
    pub result: Option<Box<ResultFields>>,
    /// `error`, when present (any value; members empty unless an object).
    /// Boxed, as `body`: rare, and the message moves as a few words.
    pub error: Option<Box<RpcError>>,
    /// The whole message, kept only when bodies are captured.
    pub body: Option<Box<Value>>,
}

/// The members of a notification's or server request's `params` that are
/// read (MCP `basic/utilities/progress.mdx`, `server/utilities/logging.mdx`).
#[derive(Debug, Default, PartialEq)]
pub(crate) struct NoteParams {
    /// `progressToken`, whatever its type.
    pub progress_token: Option<Value>,
    /// `progress`, when a number.
    pub progress: Option<serde_json::Number>,
    /// `total`, when a number.
    pub total: Option<serde_json::Number>,
    /// `level`, when a string (uncut).
    pub level: Option<String>,
    /// `logger`, when a string (uncut).
    pub logger: Option<String>,
    /// The whole `params` value, kept only when bodies are captured.
    pub body: Option<Value>,
}

/// The members of a JSON-RPC error that are read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct RpcError {
    /// `code`, whatever its type.
    pub code: Option<Value>,
    /// `message`, when a string (uncut).
    pub message: Option<String>,
}

/// The members of a `result` object that are read. Strings are cut to
/// `MAX_NAME_BYTES` unless noted.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct ResultFields {
    /// `isError` is `true`.
    pub is_error: bool,
    /// `resultType`, when a string (borrowed for the values of
    /// [`RESULT_TYPES`], so the common ones allocate nothing).
    pub result_type: Option<Cow<'static, str>>,
    /// `ttlMs`, when an integer that fits `i64`.
    pub ttl_ms: Option<i64>,
    /// `cacheScope`, when a string (borrowed for the values of
    /// [`CACHE_SCOPES`]).
    pub cache_scope: Option<Cow<'static, str>>,
    /// `taskId`, whatever its type.
    pub task_id: Option<Value>,
    /// `status`, when a string.
    pub status: Option<String>,
    /// `task`, when an object.
    pub task: Option<TaskFields>,
    /// Handle candidates of `structuredContent` (walked with the handle rule
    /// while parsing, see [`WalkSeed`]); empty when absent.
    pub structured_content: Found,
    /// Handle candidates of the JSON objects in the `text` of the first 64
    /// `content` items (py servers serialise structured output there too):
    /// strings that start with `{` after leading whitespace, at most
    /// [`MAX_TEXT_JSON_BYTES`] long, that parse as a JSON object (as
    /// `serde_json::from_str::<Value>`); other texts are skipped.
    pub text_handles: Found,
    /// `protocolVersion`, when a string.
    pub protocol_version: Option<String>,
}

/// The members of a 2025-11-25 `result.task` object that are read.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct TaskFields {
    /// `taskId`, whatever its type.
    pub task_id: Option<Value>,
    /// `status`, when a string (cut).
    pub status: Option<String>,
}

/// Parses a response body or SSE `data` field. With `full` (bodies are
/// captured) the whole `Value` is built and returned too, and each message
/// keeps its own `Value` in [`RespMsg::body`].
///
/// # Errors
/// When the text is not JSON (see the module doc for what is checked).
pub(crate) fn parse(
    bytes: &[u8],
    full: bool,
    rule: &HandleRule,
) -> serde_json::Result<(RespBody, Option<Value>)> {
    if full {
        let v: Value = serde_json::from_slice(bytes)?;
        let body = match &v {
            Value::Array(items) => RespBody::Batch(
                items
                    .iter()
                    .map(|item| msg_from_value(item, rule))
                    .collect(),
            ),
            other => RespBody::Single(msg_from_value(other, rule)),
        };
        return Ok((body, Some(v)));
    }
    Ok((read_all(bytes, BodySeed(MsgSeed(rule)))?, None))
}

/// [`parse`] for text already known to be UTF-8 (an SSE `data` field): the
/// same result, without checking the text's UTF-8 again.
///
/// # Errors
/// As [`parse`].
pub(crate) fn parse_text(
    text: &str,
    full: bool,
    rule: &HandleRule,
) -> serde_json::Result<(RespBody, Option<Value>)> {
    if full {
        return parse(text.as_bytes(), full, rule);
    }
    Ok((read_str(text, BodySeed(MsgSeed(rule)))?, None))
}

/// Reads one message from a `Value` and keeps a copy of it (and of its
/// `params`) as its body.
fn msg_from_value(v: &Value, rule: &HandleRule) -> Option<RespMsg> {
    let mut m = MsgSeed(rule).deserialize(v).ok().flatten()?;
    if let Some(p) = &mut m.params {
        p.body = v.get("params").cloned();
    }
    m.body = Some(Box::new(v.clone()));
    Some(m)
}

// ---- seeds --------------------------------------------------------------------------

/// One message: an object, else `None` (arrays inside are parsed as bodies).
/// Handles are recorded with the rule.
#[derive(Clone, Copy)]
struct MsgSeed<'r>(&'r HandleRule);
/// An `error` value.
struct ErrorSeed;
/// A notification's `params`: its members when an object.
struct NoteParamsSeed;
/// A number (as `Value` would hold it), else `None`.
struct NumberSeed;
/// A `result` value: an object, else `None`.
struct ResultSeed<'r>(&'r HandleRule);
/// `true` for the JSON value `true`.
struct TrueSeed;
/// An integer that fits `i64` (`Value::as_i64`).
struct I64Seed;
/// `result.task`: an object, else `None`.
struct TaskSeed;
/// `result.content`: the handles in the JSON texts of its items.
struct ContentSeed<'r>(&'r HandleRule);
/// One content item: the handles in its `text` when a JSON object.
struct ItemTextSeed<'r>(&'r HandleRule);
/// A string that could hold a JSON object (see
/// [`ResultFields::text_handles`]): its handles, else `None`.
struct JsonTextSeed<'r>(&'r HandleRule);

/// `DeserializeSeed` for a seed type with a lifetime, through `deserialize_any`.
macro_rules! any_seed_r {
    ($t:ident, $v:ty) => {
        impl<'de> DeserializeSeed<'de> for $t<'_> {
            type Value = $v;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<$v, D::Error> {
                d.deserialize_any(self)
            }
        }
    };
}

any_seed_r!(MsgSeed, Option<RespMsg>);
impl<'de> Visitor<'de> for MsgSeed<'_> {
    type Value = Option<RespMsg>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC message")
    }
    scalars_give!(None);
    str_gives!(None);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<RespMsg>, A::Error> {
        // Nested arrays are checked like messages, and are not messages.
        while seq.next_element_seed(self)?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<RespMsg>, A::Error> {
        let mut m = RespMsg::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "id" => m.id = Some(map.next_value::<Value>()?),
                "method" => m.method = map.next_value_seed(StrSeed(false))?,
                "params" => m.params = Some(Box::new(map.next_value_seed(NoteParamsSeed)?)),
                "result" => {
                    m.has_result = true;
                    m.result = map.next_value_seed(ResultSeed(self.0))?;
                }
                "error" => m.error = Some(Box::new(map.next_value_seed(ErrorSeed)?)),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(m))
    }
}

any_seed!(NoteParamsSeed, NoteParams);
impl<'de> Visitor<'de> for NoteParamsSeed {
    type Value = NoteParams;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("params")
    }
    scalars_give!(NoteParams::default());
    str_gives!(NoteParams::default());
    seq_gives!(NoteParams::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NoteParams, A::Error> {
        let mut p = NoteParams::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "progressToken" => p.progress_token = Some(map.next_value::<Value>()?),
                "progress" => p.progress = map.next_value_seed(NumberSeed)?,
                "total" => p.total = map.next_value_seed(NumberSeed)?,
                "level" => p.level = map.next_value_seed(StrSeed(false))?,
                "logger" => p.logger = map.next_value_seed(StrSeed(false))?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(p)
    }
}

any_seed!(NumberSeed, Option<serde_json::Number>);
impl<'de> Visitor<'de> for NumberSeed {
    type Value = Option<serde_json::Number>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Some(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Some(n.into()))
    }
    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // As `Value`: a float without a JSON form is `null`, not a number.
        Ok(serde_json::Number::from_f64(n))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    str_gives!(None);
    seq_gives!(None);
    map_gives!(None);
}

any_seed!(ErrorSeed, RpcError);
impl<'de> Visitor<'de> for ErrorSeed {
    type Value = RpcError;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC error")
    }
    scalars_give!(RpcError::default());
    str_gives!(RpcError::default());
    seq_gives!(RpcError::default());
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RpcError, A::Error> {
        let mut e = RpcError::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "code" => e.code = Some(map.next_value::<Value>()?),
                "message" => e.message = map.next_value_seed(StrSeed(false))?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(e)
    }
}

any_seed_r!(ResultSeed, Option<Box<ResultFields>>);
impl<'de> Visitor<'de> for ResultSeed<'_> {
    type Value = Option<Box<ResultFields>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-RPC result")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(
        self,
        mut map: A,
    ) -> Result<Option<Box<ResultFields>>, A::Error> {
        let mut r = Box::<ResultFields>::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "isError" => r.is_error = map.next_value_seed(TrueSeed)?,
                "resultType" => r.result_type = map.next_value_seed(KnownStrSeed(RESULT_TYPES))?,
                "ttlMs" => r.ttl_ms = map.next_value_seed(I64Seed)?,
                "cacheScope" => r.cache_scope = map.next_value_seed(KnownStrSeed(CACHE_SCOPES))?,
                "taskId" => r.task_id = Some(map.next_value::<Value>()?),
                "status" => r.status = map.next_value_seed(StrSeed(true))?,
                "task" => r.task = map.next_value_seed(TaskSeed)?,
                "structuredContent" => {
                    // Last member wins, as in a `Value`.
                    r.structured_content = Found::default();
                    map.next_value_seed(WalkSeed {
                        rule: self.0,
                        depth: 1,
                        out: &mut r.structured_content,
                    })?;
                }
                "content" => r.text_handles = map.next_value_seed(ContentSeed(self.0))?,
                "protocolVersion" => r.protocol_version = map.next_value_seed(StrSeed(true))?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(r))
    }
}

/// A string value cut to `MAX_NAME_BYTES` (as `StrSeed(true)`), borrowed
/// when it is one of the listed `'static` values, else `None`.
struct KnownStrSeed(&'static [&'static str]);

any_seed!(KnownStrSeed, Option<Cow<'static, str>>);
impl<'de> Visitor<'de> for KnownStrSeed {
    type Value = Option<Cow<'static, str>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(None);
    seq_gives!(None);
    map_gives!(None);
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Some(match self.0.iter().find(|k| **k == s) {
            Some(k) => Cow::Borrowed(*k),
            None => Cow::Owned(cap(s).to_owned()),
        }))
    }
}

any_seed!(TrueSeed, bool);
impl<'de> Visitor<'de> for TrueSeed {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, b: bool) -> Result<bool, E> {
        Ok(b)
    }
    fn visit_i64<E>(self, _: i64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_u64<E>(self, _: u64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_f64<E>(self, _: f64) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    str_gives!(false);
    seq_gives!(false);
    map_gives!(false);
}

any_seed!(I64Seed, Option<i64>);
impl<'de> Visitor<'de> for I64Seed {
    type Value = Option<i64>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, n: i64) -> Result<Option<i64>, E> {
        Ok(Some(n))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Option<i64>, E> {
        Ok(i64::try_from(n).ok())
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }
    fn visit_none<E>(self) -> Result<Option<i64>, E> {
        Ok(None)
    }
    str_gives!(None);
    seq_gives!(None);
    map_gives!(None);
}

any_seed!(TaskSeed, Option<TaskFields>);
impl<'de> Visitor<'de> for TaskSeed {
    type Value = Option<TaskFields>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a task")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<TaskFields>, A::Error> {
        let mut t = TaskFields::default();
        while let Some(key) = map.next_key_seed(Key)? {
            match &*key {
                "taskId" => t.task_id = Some(map.next_value::<Value>()?),
                "status" => t.status = map.next_value_seed(StrSeed(true))?,
                _ => map.next_value_seed(Skip)?,
            }
        }
        Ok(Some(t))
    }
}

any_seed_r!(ContentSeed, Found);
impl<'de> Visitor<'de> for ContentSeed<'_> {
    type Value = Found;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("content")
    }
    scalars_give!(Found::default());
    str_gives!(Found::default());
    map_gives!(Found::default());
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Found, A::Error> {
        let mut texts = Found::default();
        let mut n = 0usize;
        loop {
            if n < MAX_CONTENT_ITEMS {
                match seq.next_element_seed(ItemTextSeed(self.0))? {
                    Some(Some(mut t)) => texts.append(&mut t),
                    Some(None) => {}
                    None => break,
                }
            } else if seq.next_element_seed(Skip)?.is_none() {
                break;
            }
            n += 1;
        }
        Ok(texts)
    }
}

any_seed_r!(ItemTextSeed, Option<Found>);
impl<'de> Visitor<'de> for ItemTextSeed<'_> {
    type Value = Option<Found>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a content item")
    }
    scalars_give!(None);
    str_gives!(None);
    seq_gives!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Found>, A::Error> {
        let mut text = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if key == "text" {
                text = map.next_value_seed(JsonTextSeed(self.0))?;
            } else {
                map.next_value_seed(Skip)?;
            }
        }
        Ok(text)
    }
}

any_seed_r!(JsonTextSeed, Option<Found>);
impl<'de> Visitor<'de> for JsonTextSeed<'_> {
    type Value = Option<Found>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    scalars_give!(None);
    seq_gives!(None);
    map_gives!(None);
    fn visit_str<E>(self, s: &str) -> Result<Option<Found>, E> {
        let t = s.trim_start();
        if !t.starts_with('{') || t.len() > MAX_TEXT_JSON_BYTES {
            return Ok(None);
        }
        // As `serde_json::from_str::<Value>(t)`: one value, then whitespace.
        let mut found = Found::default();
        let walked = read_str(
            t,
            WalkSeed {
                rule: self.0,
                depth: 1,
                out: &mut found,
            },
        );
        Ok(walked.ok().map(|()| found))
    }
}

/// Fuzzing only (`cargo fuzz` builds with `--cfg fuzzing`): panics when the
/// fast deserializer and serde_json's reader disagree on `bytes` as a
/// response body, or when [`parse_text`] and [`parse`] disagree on UTF-8 text.
#[cfg(fuzzing)]
pub(crate) fn fuzz_agree(bytes: &[u8]) {
    use crate::json::read_all_serde;
    let rule = HandleRule::default();
    let fast = read_all(bytes, BodySeed(MsgSeed(&rule)));
    let serde = read_all_serde(bytes, BodySeed(MsgSeed(&rule)));
    assert_eq!(
        fast.is_ok(),
        serde.is_ok(),
        "response body accepted by one reader only"
    );
    assert_eq!(fast.ok(), serde.ok(), "response body read differently");
    if let Ok(text) = std::str::from_utf8(bytes) {
        let (a, b) = (parse(bytes, false, &rule), parse_text(text, false, &rule));
        assert_eq!(
            a.ok().map(|(m, _)| m),
            b.ok().map(|(m, _)| m),
            "parse_text differs"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handles::Handles;
    use proptest::prelude::*;
    use serde_json::json;

    fn parse(bytes: &[u8], full: bool) -> serde_json::Result<(RespBody, Option<Value>)> {
        super::parse(bytes, full, &HandleRule::default())
    }

    fn handles(found: &Found) -> Vec<String> {
        let mut h = Handles::default();
        h.extend(found);
        h.list
    }

    /// The typed fields of every message, without the captured bodies.
    fn strip(b: RespBody) -> RespBody {
        let strip_one = |m: Option<RespMsg>| {
            m.map(|mut m| {
                m.body = None;
                if let Some(p) = &mut m.params {
                    p.body = None;
                }
                m
            })
        };
        match b {
            RespBody::Single(m) => RespBody::Single(strip_one(m)),
            RespBody::Batch(v) => RespBody::Batch(v.into_iter().map(strip_one).collect()),
        }
    }

    #[test]
    fn reads_the_members_the_decoder_uses() {
        let body = br#"[{"jsonrpc":"2.0","id":1,"x\u0041":{"a":[1,"\u00e9"]},"result":{"isError":true,"t\u006fols":[{}],"ttlMs":5,
              "content":[{"type":"text","text":"  {\"a_id\":1}"},{"text":"plain"},{"text":7},3],
              "task":{"taskId":"t","status":"working","x":1},"structuredContent":{"k_id":"v"},"status":"s"}},
            {"jsonrpc":"2.0","method":"notifications/progress","params":{"progress":1,"progressToken":"p"}},
            {"id":"e","error":{"code":-32600,"message":"bad"}}, 5, [{"id":1}]]"#;
        let (b, whole) = parse(body, false).expect("valid");
        assert!(whole.is_none());
        let RespBody::Batch(items) = &b else {
            panic!("batch expected");
        };
        assert_eq!(items.len(), 5);
        let r = items[0]
            .as_ref()
            .and_then(|m| m.result.as_ref())
            .expect("result");
        assert!(r.is_error);
        assert_eq!(r.ttl_ms, Some(5));
        assert_eq!(handles(&r.text_handles), vec!["a_id=1"]);
        assert_eq!(
            r.task,
            Some(TaskFields {
                task_id: Some(json!("t")),
                status: Some("working".into())
            })
        );
        assert_eq!(handles(&r.structured_content), vec!["k_id=v"]);
        assert_eq!(r.status.as_deref(), Some("s"));
        let n = items[1].as_ref().expect("object");
        assert_eq!(n.method.as_deref(), Some("notifications/progress"));
        let p = n.params.as_ref().expect("params");
        assert_eq!(p.progress_token, Some(json!("p")));
        assert_eq!(p.progress, Some(1.into()));
        assert_eq!(
            (p.total.as_ref(), p.level.as_ref(), p.body.as_ref()),
            (None, None, None)
        );
        assert_eq!(n.id, None);
        let e = items[2]
            .as_ref()
            .and_then(|m| m.error.as_ref())
            .expect("error");
        assert_eq!(e.code, Some(json!(-32600)));
        assert_eq!(e.message.as_deref(), Some("bad"));
        assert!(items[3].is_none() && items[4].is_none());
        // The same from text known to be UTF-8.
        let text = std::str::from_utf8(body).expect("UTF-8");
        let (t, _) = super::parse_text(text, false, &HandleRule::default()).expect("valid");
        assert_eq!(t, b);
        // The same members from the full parse.
        let (full, whole) = parse(body, true).expect("valid");
        assert!(whole.is_some());
        assert_eq!(strip(full), b);
        // Escaped keys are still recognised.
        let (v, _) =
            parse(br#"{"\u0069d":2,"res\u0075lt":{"t\u0074lMs":3}}"#, false).expect("valid");
        let RespBody::Single(Some(m)) = v else {
            panic!("message expected");
        };
        assert_eq!(m.id, Some(json!(2)));
        assert_eq!(m.result.and_then(|r| r.ttl_ms), Some(3));
        // Syntax errors inside skipped members are still errors.
        assert!(parse(br#"{"jsonrpc":[1,,],"id":1,"result":{}}"#, false).is_err());
    }

    fn message_text() -> impl Strategy<Value = String> {
        let leaf = prop::sample::select(vec![
            "1",
            "\"s\"",
            "null",
            "{}",
            "[]",
            "2.5",
            "true",
            "-3",
            "18446744073709551615",
            "\" {\\\"a_id\\\":1}\"",
            "{\"text\":\"{}\"}",
        ])
        .prop_map(str::to_owned);
        crate::testutil::json_text(
            leaf,
            vec![
                "id",
                "method",
                "params",
                "result",
                "error",
                "code",
                "message",
                "isError",
                "resultType",
                "ttlMs",
                "cacheScope",
                "taskId",
                "status",
                "task",
                "structuredContent",
                "content",
                "text",
                "protocolVersion",
                "other",
                "progressToken",
                "progress",
                "total",
                "level",
                "logger",
            ],
            4,
            64,
            6,
        )
    }

    /// Token soup with the members the response seeds read.
    fn response_soup() -> impl Strategy<Value = String> {
        let tok = prop::sample::select(vec![
            "{",
            "}",
            "[",
            "]",
            ",",
            ":",
            " ",
            "\"id\"",
            "\"result\"",
            "\"error\"",
            "\"params\"",
            "\"method\"",
            "\"content\"",
            "\"text\"",
            "\"structuredContent\"",
            "\"taskId\"",
            "\"task\"",
            "\"ttlMs\"",
            "\"isError\"",
            "\"code\"",
            "\"a_id\"",
            "\"jsonrpc\"",
            "\"x\"",
            "\"\\ud800\"",
            "\"\\u00e9\"",
            "\"\\q\"",
            "\"{\\\"a_id\\\":1}\"",
            "1",
            "-0",
            "1e400",
            "2.5",
            "01",
            "null",
            "true",
        ]);
        prop::collection::vec(tok, 0..40).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn known_strings_read_as_plain_strings(
            text in prop_oneof![
                Just("\"complete\"".to_string()),
                Just("\"private\"".to_string()),
                Just("\"comp\\u006cete\"".to_string()),
                "\"[a-z_]{0,16}\"",
                message_text(),
            ]
        ) {
            // Borrowed or not, the text is `StrSeed(true)`'s.
            for list in [RESULT_TYPES, CACHE_SCOPES] {
                let known = read_str(&text, KnownStrSeed(list)).ok().map(|o| o.map(Cow::into_owned));
                let plain = read_str(&text, StrSeed(true)).ok();
                prop_assert_eq!(known, plain);
            }
        }

        #[test]
        fn fast_and_serde_agree(
            text in prop_oneof![response_soup(), crate::json::fast::tests::soup()]
        ) {
            let rule = HandleRule::default();
            let bytes = text.as_bytes();
            let fast = read_all(bytes, BodySeed(MsgSeed(&rule)));
            let serde = crate::json::read_all_serde(bytes, BodySeed(MsgSeed(&rule)));
            prop_assert_eq!(fast.is_err(), serde.is_err(), "{}", text);
            prop_assert_eq!(fast.ok(), serde.ok());
        }

        #[test]
        fn note_params_match_the_value_accessors(text in message_text()) {
            // As the decoder read `params` when it was kept as a `Value`.
            let body = format!("{{\"method\":\"m\",\"params\":{text}}}");
            let v: Value = serde_json::from_str(&body).expect("valid");
            let p = &v["params"];
            let (RespBody::Single(Some(m)), _) = parse(body.as_bytes(), false).expect("valid") else {
                panic!("one message expected");
            };
            let n = m.params.expect("params");
            let num = |k: &str| p.get(k).filter(|x| x.is_number()).map(Value::to_string);
            let s = |k: &str| p.get(k).and_then(Value::as_str).map(str::to_owned);
            prop_assert_eq!(n.progress_token.as_ref(), p.get("progressToken"));
            prop_assert_eq!(n.progress.map(|x| x.to_string()), num("progress"));
            prop_assert_eq!(n.total.map(|x| x.to_string()), num("total"));
            prop_assert_eq!(n.level, s("level"));
            prop_assert_eq!(n.logger, s("logger"));
        }

        #[test]
        fn pruned_and_full_parse_agree(text in message_text()) {
            let bytes = text.as_bytes();
            let pruned = parse(bytes, false);
            let full = parse(bytes, true);
            prop_assert!(pruned.is_ok() && full.is_ok(), "{}", text);
            if let (Ok((p, _)), Ok((f, _))) = (pruned, full) {
                prop_assert_eq!(p, strip(f));
            }
        }
    }
}
