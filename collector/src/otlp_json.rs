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

/// One `ExportTraceServiceRequest` holding `spans`, grouped by instance.
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

impl<W: Write> OtlpJsonSink<W> {
    fn write_pending(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let line = export_request(&self.pending, &self.resource);
        self.pending.clear();
        serde_json::to_writer(&mut self.out, &line).context("writing OTLP/JSON")?;
        self.out.write_all(b"\n").context("writing OTLP/JSON")?;
        Ok(())
    }
}

impl<W: Write> SpanSink for OtlpJsonSink<W> {
    fn export(&mut self, spans: Vec<Span>) -> Result<()> {
        self.pending.extend(spans);
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
    fn export(&mut self, _spans: Vec<Span>) -> Result<()> {
        Ok(())
    }
    fn finish(&mut self) -> Result<()> {
        Ok(())
    }
}
