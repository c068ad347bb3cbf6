//! OTLP/JSON output: one `ExportTraceServiceRequest` per line, as the
//! OpenTelemetry Collector's file exporter writes it.
//!
//! Encoding follows the OTLP specification's "JSON Protobuf Encoding": field
//! names in lowerCamelCase, trace and span ids as lowercase hex (not base64),
//! 64-bit integers as decimal strings, enums as integers (`kind` 2 = SERVER,
//! `status.code` 2 = ERROR). Spans of one batch are grouped by resource
//! (`service.instance.id` differs per flow when no instance id is configured).

use crate::pipeline::SpanSink;
use anyhow::{Context, Result};
use mcptap_mcp::{AttrValue, Span, SpanStatus};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::Write;

/// Instrumentation scope name written on every span.
pub const SCOPE_NAME: &str = "mcptap-collector";

/// Resource attributes shared by every span, except `service.instance.id`,
/// which comes from each span.
#[derive(Debug, Clone, Default)]
pub struct ResourceInfo {
    /// `service.name`.
    pub service_name: String,
    /// Further attributes (e.g. `k8s.pod.name`), in order.
    pub extra: Vec<(String, String)>,
}

/// Writes spans as OTLP/JSON lines to any writer.
pub struct OtlpJsonSink<W: Write> {
    out: W,
    resource: ResourceInfo,
    pending: Vec<Span>,
    /// One encoded line, reused.
    buf: Vec<u8>,
}

/// Spans per written line (one `ExportTraceServiceRequest`).
pub const SPANS_PER_LINE: usize = 512;

impl<W: Write> OtlpJsonSink<W> {
    /// A sink writing to `out`.
    pub fn new(out: W, resource: ResourceInfo) -> Self {
        OtlpJsonSink {
            out,
            resource,
            pending: Vec::new(),
            buf: Vec::new(),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// OTLP `AnyValue` JSON for one attribute value.
pub fn any_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => json!({ "stringValue": s }),
        AttrValue::Int(i) => json!({ "intValue": i.to_string() }),
        AttrValue::Bool(b) => json!({ "boolValue": b }),
        AttrValue::StrArray(a) => {
            json!({ "arrayValue": { "values": a.iter().map(|s| json!({ "stringValue": s })).collect::<Vec<_>>() } })
        }
    }
}

fn kv(key: &str, v: Value) -> Value {
    json!({ "key": key, "value": v })
}

/// OTLP/JSON `Span` object for one span.
pub fn span_json(s: &Span) -> Value {
    let mut o = serde_json::Map::new();
    o.insert("traceId".into(), hex(&s.trace_id).into());
    o.insert("spanId".into(), hex(&s.span_id).into());
    if !s.trace_state.is_empty() {
        o.insert("traceState".into(), s.trace_state.clone().into());
    }
    if let Some(p) = &s.parent_span_id {
        o.insert("parentSpanId".into(), hex(p).into());
    }
    o.insert("name".into(), s.name.clone().into());
    o.insert("kind".into(), 2.into());
    o.insert("startTimeUnixNano".into(), s.start_ns.to_string().into());
    o.insert("endTimeUnixNano".into(), s.end_ns.to_string().into());
    o.insert(
        "attributes".into(),
        s.attributes
            .iter()
            .map(|(k, v)| kv(k, any_value(v)))
            .collect::<Vec<_>>()
            .into(),
    );
    if !s.events.is_empty() {
        let evs: Vec<Value> = s
            .events
            .iter()
            .map(|e| {
                json!({
                    "timeUnixNano": e.time_ns.to_string(),
                    "name": e.name,
                    "attributes": e.attributes.iter().map(|(k, v)| kv(k, any_value(v))).collect::<Vec<_>>(),
                })
            })
            .collect();
        o.insert("events".into(), evs.into());
    }
    if let SpanStatus::Error(msg) = &s.status {
        o.insert("status".into(), json!({ "code": 2, "message": msg }));
    }
    Value::Object(o)
}

/// One `ExportTraceServiceRequest` holding `spans`, grouped by instance, as a
/// `serde_json::Value` (tests; the sink writes the same bytes with
/// [`write_export_request`]).
pub fn export_request(spans: &[Span], resource: &ResourceInfo) -> Value {
    let mut by_instance: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for s in spans {
        by_instance
            .entry(s.instance_id.as_str())
            .or_default()
            .push(span_json(s));
    }
    let resource_spans: Vec<Value> = by_instance
        .into_iter()
        .map(|(instance, spans)| {
            let mut attrs = vec![
                kv(
                    "service.name",
                    json!({ "stringValue": resource.service_name }),
                ),
                kv("service.instance.id", json!({ "stringValue": instance })),
            ];
            for (k, v) in &resource.extra {
                attrs.push(kv(k, json!({ "stringValue": v })));
            }
            json!({
                "resource": { "attributes": attrs },
                "scopeSpans": [{
                    "scope": { "name": SCOPE_NAME, "version": env!("CARGO_PKG_VERSION") },
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// Appends `s` as a JSON string (serde_json's escaping, so the bytes equal
/// what serialising a `Value::String` writes).
fn put_str(out: &mut Vec<u8>, s: &str) {
    // Writing to a Vec cannot fail; serde_json only errors on I/O here.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Appends `n` as a JSON string of decimal digits (OTLP/JSON 64-bit integers).
fn put_int_str<T: std::fmt::Display>(out: &mut Vec<u8>, n: T) {
    let _ = write!(out, "\"{n}\"");
}

fn put_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for b in bytes {
        out.push(HEX[usize::from(b >> 4)]);
        out.push(HEX[usize::from(b & 15)]);
    }
    out.push(b'"');
}

fn put_any_value(out: &mut Vec<u8>, v: &AttrValue) {
    match v {
        AttrValue::Str(s) => {
            out.extend_from_slice(b"{\"stringValue\":");
            put_str(out, s);
        }
        AttrValue::Int(i) => {
            out.extend_from_slice(b"{\"intValue\":");
            put_int_str(out, i);
        }
        AttrValue::Bool(b) => {
            out.extend_from_slice(if *b {
                b"{\"boolValue\":true"
            } else {
                b"{\"boolValue\":false"
            });
        }
        AttrValue::StrArray(a) => {
            out.extend_from_slice(b"{\"arrayValue\":{\"values\":[");
            for (i, s) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"stringValue\":");
                put_str(out, s);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}");
        }
    }
    out.push(b'}');
}

fn put_kv(out: &mut Vec<u8>, key: &str, v: &AttrValue) {
    out.extend_from_slice(b"{\"key\":");
    put_str(out, key);
    out.extend_from_slice(b",\"value\":");
    put_any_value(out, v);
    out.push(b'}');
}

fn put_attrs<'a>(out: &mut Vec<u8>, attrs: impl Iterator<Item = (&'a str, &'a AttrValue)>) {
    out.push(b'[');
    for (i, (k, v)) in attrs.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_kv(out, k, v);
    }
    out.push(b']');
}

/// Appends the OTLP/JSON `Span` object of `s`: the same bytes as serialising
/// [`span_json`] (keys in the sorted order of `serde_json::Map`).
fn put_span(out: &mut Vec<u8>, s: &Span) {
    out.extend_from_slice(b"{\"attributes\":");
    put_attrs(out, s.attributes.iter().map(|(k, v)| (*k, v)));
    out.extend_from_slice(b",\"endTimeUnixNano\":");
    put_int_str(out, s.end_ns);
    if !s.events.is_empty() {
        out.extend_from_slice(b",\"events\":[");
        for (i, e) in s.events.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"attributes\":");
            put_attrs(out, e.attributes.iter().map(|(k, v)| (*k, v)));
            out.extend_from_slice(b",\"name\":");
            put_str(out, &e.name);
            out.extend_from_slice(b",\"timeUnixNano\":");
            put_int_str(out, e.time_ns);
            out.push(b'}');
        }
        out.push(b']');
    }
    out.extend_from_slice(b",\"kind\":2,\"name\":");
    put_str(out, &s.name);
    if let Some(p) = &s.parent_span_id {
        out.extend_from_slice(b",\"parentSpanId\":");
        put_hex(out, p);
    }
    out.extend_from_slice(b",\"spanId\":");
    put_hex(out, &s.span_id);
    out.extend_from_slice(b",\"startTimeUnixNano\":");
    put_int_str(out, s.start_ns);
    if let SpanStatus::Error(msg) = &s.status {
        out.extend_from_slice(b",\"status\":{\"code\":2,\"message\":");
        put_str(out, msg);
        out.push(b'}');
    }
    out.extend_from_slice(b",\"traceId\":");
    put_hex(out, &s.trace_id);
    if !s.trace_state.is_empty() {
        out.extend_from_slice(b",\"traceState\":");
        put_str(out, &s.trace_state);
    }
    out.push(b'}');
}

/// Appends one `ExportTraceServiceRequest` holding `spans` (no newline), written
/// directly without building a `serde_json::Value`: byte for byte what
/// `serde_json::to_writer(export_request(spans, resource))` writes.
pub fn write_export_request(out: &mut Vec<u8>, spans: &[Span], resource: &ResourceInfo) {
    let mut by_instance: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
    for s in spans {
        by_instance
            .entry(s.instance_id.as_str())
            .or_default()
            .push(s);
    }
    out.extend_from_slice(b"{\"resourceSpans\":[");
    for (i, (instance, spans)) in by_instance.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"resource\":{\"attributes\":[");
        put_kv(
            out,
            "service.name",
            &AttrValue::Str(resource.service_name.clone().into()),
        );
        out.push(b',');
        put_kv(
            out,
            "service.instance.id",
            &AttrValue::Str(instance.to_owned().into()),
        );
        for (k, v) in &resource.extra {
            out.push(b',');
            put_kv(out, k, &AttrValue::Str(v.clone().into()));
        }
        out.extend_from_slice(b"]},\"scopeSpans\":[{\"scope\":{\"name\":");
        put_str(out, SCOPE_NAME);
        out.extend_from_slice(b",\"version\":");
        put_str(out, env!("CARGO_PKG_VERSION"));
        out.extend_from_slice(b"},\"spans\":[");
        for (j, s) in spans.into_iter().enumerate() {
            if j > 0 {
                out.push(b',');
            }
            put_span(out, s);
        }
        out.extend_from_slice(b"]}]}");
    }
    out.extend_from_slice(b"]}");
}

impl<W: Write> OtlpJsonSink<W> {
    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // Encoded straight to bytes: building a `serde_json::Value` tree per span
        // cost ~410k instructions per span (callgrind), most of it allocating and
        // dropping the tree.
        self.buf.clear();
        write_export_request(&mut self.buf, &self.pending, &self.resource);
        self.buf.push(b'\n');
        self.pending.clear();
        self.out.write_all(&self.buf).context("writing OTLP/JSON")?;
        Ok(())
    }
}

impl<W: Write> SpanSink for OtlpJsonSink<W> {
    fn export(&mut self, spans: &mut Vec<Span>) -> Result<()> {
        self.pending.append(spans);
        if self.pending.len() >= SPANS_PER_LINE {
            self.write_pending()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        self.write_pending()?;
        self.out.flush().context("flushing OTLP/JSON output")
    }
}

/// Discards spans (summary-only runs).
pub struct NullSink;

impl SpanSink for NullSink {
    fn export(&mut self, spans: &mut Vec<Span>) -> Result<()> {
        spans.clear();
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcptap_mcp::SpanEvent;

    fn resource() -> ResourceInfo {
        ResourceInfo {
            service_name: "svc \"q\"".into(),
            extra: vec![("k8s.pod.name".into(), "pod-\u{e9}\n".into())],
        }
    }

    /// The direct encoder writes exactly the bytes of the `Value` encoder, on
    /// every span of the real fixture and on a span using every field.
    #[test]
    fn direct_encoder_equals_value_encoder() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/cutover.pcap");
        let mut spans = crate::run::decode_file(&path, Default::default())
            .expect("fixture decodes")
            .spans;
        assert!(spans.len() > 60);
        spans.push(Span {
            trace_id: [0xab; 16],
            span_id: [1, 2, 3, 4, 5, 6, 7, 0xff],
            parent_span_id: Some([9; 8]),
            trace_state: "a=b,c=\"d\"".into(),
            name: "tools/call \u{1f600}\t\u{1}".into(),
            start_ns: 1,
            end_ns: u64::MAX,
            status: SpanStatus::Error("tool_error \\ x".into()),
            instance_id: "[::1]:8000".into(),
            attributes: vec![
                ("s", AttrValue::Str("\u{7f}\u{1f}</script>".into())),
                ("i", AttrValue::Int(i64::MIN)),
                ("b", AttrValue::Bool(false)),
                ("t", AttrValue::Bool(true)),
                ("a", AttrValue::StrArray(vec!["x".into(), "".into()])),
                ("e", AttrValue::StrArray(vec![])),
            ],
            events: vec![SpanEvent {
                name: "notifications/progress".into(),
                time_ns: 42,
                attributes: vec![("p", AttrValue::Int(3))],
            }],
        });
        for chunk in [&spans[..], &spans[..1], &spans[spans.len() - 1..]] {
            let want = serde_json::to_vec(&export_request(chunk, &resource())).expect("encodes");
            let mut got = Vec::new();
            write_export_request(&mut got, chunk, &resource());
            assert_eq!(
                String::from_utf8_lossy(&got),
                String::from_utf8_lossy(&want)
            );
        }
    }
}
