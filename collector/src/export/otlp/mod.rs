//! OTLP export (gRPC and HTTP/protobuf) through `opentelemetry-otlp` 0.33.1.
//!
//! We do not use the SDK's tracer: it would mint its own span ids. Each
//! [`Span`] becomes an `opentelemetry_sdk::trace::SpanData` with our trace id,
//! span id, parent span id and nanosecond timestamps, and
//! [`opentelemetry_sdk::trace::SpanExporter::export`] is called from the
//! export queue's task, one batch at a time (the exporter must never be called
//! concurrently).
//!
//! Configuration follows the OpenTelemetry specification "OTLP Exporter
//! Configuration" (`OTEL_EXPORTER_OTLP_*`), see [`OtlpConfig::from_env_and_flags`].
//!
//! Resources: `service.instance.id` comes from each span (it differs per flow
//! when no instance id is configured), and the SDK exporter holds one resource
//! at a time. A batch is therefore split into groups of one instance each,
//! exported in order with `set_resource` before each group. If a group fails,
//! the groups already delivered are remembered so that a retry of the same
//! [`Batch::id`] resumes at the failed group instead of sending duplicates.
//!
//! The exporter's own retries are disabled ([`opentelemetry_otlp::RetryPolicy::disabled`]):
//! the queue retries, backs off, spools and counts, with the classification of
//! [`classify_sdk_error`].

mod config;

pub use config::{DEFAULT_TIMEOUT, HTTP_TRACES_PATH, OtlpConfig, OtlpFlags, OtlpProtocol};

use super::{Batch, ExportError, Exporter};
use crate::otlp_json::{ResourceInfo, SCOPE_NAME};
use anyhow::{Result, anyhow};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Uri};
use mcptap_mcp::{Attr, AttrValue, Span, SpanStatus, Text};
use opentelemetry::trace::{
    Event, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{Array, InstrumentationScope, Key, KeyValue, StringValue, Value};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::{RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Sends batches to an OTLP endpoint. Build with [`OtlpExporter::new`] inside a
/// tokio runtime; the queue calls [`Exporter::export`] one batch at a time.
pub struct OtlpExporter {
    inner: opentelemetry_otlp::SpanExporter,
    cfg: OtlpConfig,
    scope: InstrumentationScope,
    /// `service.instance.id` of the resource currently set on `inner`.
    current_instance: Option<String>,
    /// `(batch id, groups already delivered)` after a partial failure.
    resume: Option<(u64, usize)>,
}

impl std::fmt::Debug for OtlpExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpExporter")
            .field("endpoint", &self.cfg.endpoint)
            .field("protocol", &self.cfg.protocol)
            .finish_non_exhaustive()
    }
}

impl OtlpExporter {
    /// Builds the exporter (no connection is made yet: gRPC connects lazily,
    /// HTTP per request). Must run inside a tokio runtime (tonic needs the reactor).
    /// Errors: the endpoint or a header is rejected by the transport.
    pub async fn new(cfg: OtlpConfig) -> Result<OtlpExporter> {
        let inner = match cfg.protocol {
            OtlpProtocol::HttpProtobuf => {
                // with_headers percent-decodes values again: re-encode '%'.
                let headers: HashMap<String, String> = cfg
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.replace('%', "%25")))
                    .collect();
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(cfg.endpoint.clone())
                    .with_timeout(cfg.timeout)
                    .with_headers(headers)
                    .with_retry_policy(RetryPolicy::disabled())
                    .build()
            }
            OtlpProtocol::Grpc => {
                let mut map = HeaderMap::new();
                for (k, v) in &cfg.headers {
                    let name = HeaderName::from_str(k)
                        .map_err(|_| anyhow!("OTLP header {k:?} is not a valid header name"))?;
                    let value = HeaderValue::from_str(v)
                        .map_err(|_| anyhow!("OTLP header {k:?}: invalid value"))?;
                    map.insert(name, value);
                }
                let mut metadata = MetadataMap::from_headers(map);
                // Keep the SDK's User-Agent next to ours.
                if let Ok(ua) = format!("mcptap-collector/{}", env!("CARGO_PKG_VERSION")).parse() {
                    metadata.insert("x-mcptap-collector", ua);
                }
                opentelemetry_otlp::SpanExporter::builder()
                    .with_tonic()
                    .with_endpoint(cfg.endpoint.clone())
                    .with_timeout(cfg.timeout)
                    .with_metadata(metadata)
                    .with_retry_policy(RetryPolicy::disabled())
                    .build()
            }
        }
        .map_err(|e| anyhow!("OTLP exporter ({}): {e}", cfg.endpoint))?;
        let scope = InstrumentationScope::builder(SCOPE_NAME)
            .with_version(env!("CARGO_PKG_VERSION"))
            .build();
        Ok(OtlpExporter {
            inner,
            cfg,
            scope,
            current_instance: None,
            resume: None,
        })
    }

    /// The configuration this exporter was built from.
    pub fn config(&self) -> &OtlpConfig {
        &self.cfg
    }

    fn set_instance(&mut self, instance: &str) {
        if self.current_instance.as_deref() == Some(instance) {
            return;
        }
        self.inner
            .set_resource(&resource_for(&self.cfg.resource, instance));
        self.current_instance = Some(instance.to_string());
    }

    async fn export_batch(&mut self, batch: &Batch) -> Result<(), ExportError> {
        let mut groups: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
        for s in &batch.spans {
            groups.entry(s.instance_id.as_str()).or_default().push(s);
        }
        let skip = match self.resume.take() {
            Some((id, done)) if id == batch.id => done,
            _ => 0,
        };
        for (i, (instance, spans)) in groups.into_iter().enumerate().skip(skip) {
            self.set_instance(instance);
            let data: Vec<SpanData> = spans.iter().map(|s| span_data(s, &self.scope)).collect();
            if let Err(e) = self.inner.export(data).await {
                let err = self.classify(e).await;
                if i > 0 && matches!(err, ExportError::Retryable(_)) {
                    self.resume = Some((batch.id, i));
                }
                return Err(err);
            }
        }
        Ok(())
    }

    /// Classifies an SDK error, adding the endpoint and, for an HTTP network
    /// error (whose cause the SDK does not report), a TCP connect probe result.
    async fn classify(&self, e: OTelSdkError) -> ExportError {
        let class = classify_sdk_error(&e);
        let mut msg = format!(
            "OTLP {} export to {} failed: {}",
            self.cfg.protocol.as_str(),
            self.cfg.endpoint,
            error_text(&e)
        );
        if self.cfg.protocol == OtlpProtocol::HttpProtobuf
            && error_text(&e).contains("network error")
            && let Some(why) = probe(&self.cfg.endpoint).await
        {
            msg.push_str(&format!(" ({why})"));
        }
        if let Some(hint) = status_hint(&msg) {
            msg.push_str(&format!("; {hint}"));
        }
        match class {
            Class::Retryable => ExportError::Retryable(msg),
            Class::Fatal => ExportError::Fatal(msg),
        }
    }
}

fn error_text(e: &OTelSdkError) -> String {
    match e {
        OTelSdkError::InternalFailure(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Whether to retry, per the OTLP specification's failure rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Retry later (the queue backs off and spools).
    Retryable,
    /// Drop the batch and report.
    Fatal,
}

/// Classifies an error returned by the `opentelemetry-otlp` 0.33.1 span
/// exporter, from its variant and message text:
/// - HTTP (`HTTP export failed with status code: N`): 408, 429, 502, 503, 504
///   retryable; every other status fatal (400, 401, 403, 404, 413, 500...).
///   `HTTP export failed: network error` (refused, DNS, reset, timeout) retryable.
/// - gRPC (`... export failed with gRPC code: Code`): `Unavailable`,
///   `DeadlineExceeded`, `Cancelled`, `Aborted`, `OutOfRange`, `DataLoss` and
///   `ResourceExhausted` retryable; `Unauthenticated`, `PermissionDenied`,
///   `InvalidArgument`, `Unimplemented`, `NotFound`, `Internal`, `Unknown`... fatal.
/// - `Timeout` retryable; `AlreadyShutdown` fatal; anything unrecognised retryable
///   (the queue bounds retries, so an unknown transient error does not lose data).
pub fn classify_sdk_error(e: &OTelSdkError) -> Class {
    let text = match e {
        OTelSdkError::Timeout(_) => return Class::Retryable,
        OTelSdkError::AlreadyShutdown => return Class::Fatal,
        OTelSdkError::InternalFailure(m) => m.as_str(),
    };
    if let Some(code) = http_status(text) {
        return match code {
            0 | 408 | 429 | 502 | 503 | 504 => Class::Retryable,
            _ => Class::Fatal,
        };
    }
    if text.contains("network error") {
        return Class::Retryable;
    }
    if let Some(code) = grpc_code(text) {
        return match code {
            "Unavailable" | "DeadlineExceeded" | "Cancelled" | "Aborted" | "OutOfRange"
            | "DataLoss" | "ResourceExhausted" => Class::Retryable,
            _ => Class::Fatal,
        };
    }
    if text.contains("request body is") && text.contains("exceeding") {
        return Class::Fatal;
    }
    Class::Retryable
}

/// `N` from `... status code: N`.
fn http_status(text: &str) -> Option<u16> {
    let rest = text.split("status code: ").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// `Code` from `... gRPC code: Code...`.
fn grpc_code(text: &str) -> Option<&str> {
    let rest = text.split("gRPC code: ").nth(1)?;
    let end = rest
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(rest.len());
    rest.get(..end).filter(|c| !c.is_empty())
}

/// A human hint for the statuses that usually mean misconfiguration.
fn status_hint(msg: &str) -> Option<&'static str> {
    match http_status(msg) {
        Some(401) | Some(403) => {
            return Some(
                "the receiver rejected the credentials: check OTEL_EXPORTER_OTLP_HEADERS (e.g. authorization=Bearer%20TOKEN)",
            );
        }
        Some(404) => {
            return Some(
                "no OTLP/HTTP receiver at this path: the traces path is usually /v1/traces (check --otlp-endpoint / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)",
            );
        }
        Some(413) => return Some("the receiver rejected the request size: lower the batch size"),
        Some(415) | Some(400) => {
            return Some("the receiver did not accept OTLP/protobuf: check the protocol and path");
        }
        _ => {}
    }
    match grpc_code(msg) {
        Some("Unauthenticated") | Some("PermissionDenied") => {
            Some("the receiver rejected the credentials: check OTEL_EXPORTER_OTLP_HEADERS")
        }
        Some("Unimplemented") => Some(
            "the endpoint does not serve the OTLP trace service: is it an OTLP/gRPC receiver (usually port 4317)?",
        ),
        Some("Unknown") | Some("Internal") => Some(
            "check that the endpoint speaks OTLP/gRPC (an OTLP/HTTP port is usually 4318: use --otlp-protocol http/protobuf)",
        ),
        _ => None,
    }
}

/// Tries a TCP connect to the endpoint's host:port (1 s) to explain a network error.
async fn probe(endpoint: &str) -> Option<String> {
    let uri: Uri = endpoint.parse().ok()?;
    let host = uri
        .host()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = uri.port_u16().unwrap_or(80);
    let r = tokio::time::timeout(
        Duration::from_secs(1),
        tokio::net::TcpStream::connect((host.as_str(), port)),
    )
    .await;
    match r {
        Err(_) => Some(format!("connecting to {host}:{port} timed out")),
        Ok(Err(e)) => Some(format!("cannot connect to {host}:{port}: {e}")),
        Ok(Ok(_)) => None,
    }
}

/// The resource of spans of `instance`: `service.name`, `service.instance.id`,
/// then the extra attributes, in that order (as the OTLP/JSON output writes them).
pub fn resource_for(info: &ResourceInfo, instance: &str) -> Resource {
    let mut attrs = vec![
        KeyValue::new("service.name", info.service_name.clone()),
        KeyValue::new("service.instance.id", instance.to_string()),
    ];
    for (k, v) in &info.extra {
        attrs.push(KeyValue::new(k.clone(), v.clone()));
    }
    Resource::builder_empty().with_attributes(attrs).build()
}

fn system_time(ns: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(ns)
}

/// Attribute names are `'static`: the key is made without a copy.
fn key(k: &'static str) -> Key {
    Key::from_static_str(k)
}

/// OTel value of an attribute: `Str` → string, `Int` → int64, `Bool` → bool,
/// `StrArray` → array of strings.
pub fn otel_value(v: &AttrValue) -> Value {
    match v {
        AttrValue::Str(s) => Value::String(match s {
            Text::Static(s) => StringValue::from(*s),
            Text::Owned(s) => StringValue::from(String::from(&**s)),
            Text::Shared(s) => StringValue::from(Arc::clone(s)),
        }),
        AttrValue::Int(i) => Value::I64(*i),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::StrArray(a) => Value::Array(Array::String(
            a.iter().map(|s| StringValue::from(s.clone())).collect(),
        )),
    }
}

fn key_values(attrs: &[Attr]) -> Vec<KeyValue> {
    attrs
        .iter()
        .map(|(k, v)| KeyValue::new(key(k), otel_value(v)))
        .collect()
}

/// The `SpanData` of one span: our ids (sampled flag set), the parent span id
/// (remote) when the request carried one, kind SERVER, ns timestamps, typed
/// attributes, events, and status Error(message) or Unset. An invalid
/// `trace_state` is dropped (it was validated by the decoder already).
pub fn span_data(s: &Span, scope: &InstrumentationScope) -> SpanData {
    let trace_state = if s.trace_state.is_empty() {
        TraceState::default()
    } else {
        TraceState::from_str(&s.trace_state).unwrap_or_default()
    };
    let mut events = SpanEvents::default();
    events.events = s
        .events
        .iter()
        .map(|e| {
            Event::new(
                e.name.clone(),
                system_time(e.time_ns),
                key_values(&e.attributes),
                0,
            )
        })
        .collect();
    SpanData {
        span_context: SpanContext::new(
            TraceId::from_bytes(s.trace_id),
            SpanId::from_bytes(s.span_id),
            TraceFlags::SAMPLED,
            false,
            trace_state,
        ),
        parent_span_id: s.parent_span_id.map_or(SpanId::INVALID, SpanId::from_bytes),
        parent_span_is_remote: s.parent_span_id.is_some(),
        span_kind: SpanKind::Server,
        name: Cow::Owned(s.name.clone()),
        start_time: system_time(s.start_ns),
        end_time: system_time(s.end_ns),
        attributes: key_values(&s.attributes),
        dropped_attributes_count: 0,
        events,
        links: Default::default(),
        status: match &s.status {
            SpanStatus::Unset => Status::Unset,
            SpanStatus::Error(m) => Status::error(m.clone()),
        },
        instrumentation_scope: scope.clone(),
    }
}

impl Exporter for OtlpExporter {
    fn name(&self) -> &'static str {
        "otlp"
    }

    async fn export(&mut self, batch: &Batch) -> Result<(), ExportError> {
        if batch.spans.is_empty() {
            return Ok(());
        }
        self.export_batch(batch).await
    }

    async fn shutdown(&mut self) {
        if let Err(e) = self.inner.shutdown() {
            tracing::debug!(error = %e, "OTLP exporter shutdown");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn cfg(
        flags: OtlpFlags<'_>,
        vars: &'static [(&'static str, &'static str)],
    ) -> Result<Option<OtlpConfig>> {
        OtlpConfig::from_lookup(&flags, ResourceInfo::default(), lookup(vars))
    }

    #[test]
    fn nothing_configured_is_off() {
        assert!(cfg(OtlpFlags::default(), &[]).unwrap().is_none());
    }

    #[test]
    fn generic_endpoint_gets_traces_path_for_http() {
        let c = cfg(
            OtlpFlags::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://c:4318/v1/traces");
        assert_eq!(c.protocol, OtlpProtocol::HttpProtobuf);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        let c = cfg(
            OtlpFlags::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/prefix/")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://c:4318/prefix/v1/traces");
    }

    #[test]
    fn traces_endpoint_is_verbatim_and_wins() {
        let c = cfg(
            OtlpFlags::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://generic:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://t:9/custom");
    }

    #[test]
    fn flags_win_over_env() {
        let c = cfg(
            OtlpFlags {
                endpoint: Some("http://flag:4317"),
                protocol: Some("grpc"),
                timeout: Some(Duration::from_millis(1500)),
                ..Default::default()
            },
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "99"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://flag:4317");
        assert_eq!(c.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.timeout, Duration::from_millis(1500));
        // The flag's HTTP endpoint already ending with /v1/traces is kept.
        let c = cfg(
            OtlpFlags {
                endpoint: Some("http://flag:4318/v1/traces"),
                ..Default::default()
            },
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.endpoint, "http://flag:4318/v1/traces");
        // A flag URL with a path is used verbatim; without one the path is added.
        for (flag, want) in [
            ("http://gw/otlp/traces", "http://gw/otlp/traces"),
            ("http://flag:4318/", "http://flag:4318/v1/traces"),
            ("http://flag:4318", "http://flag:4318/v1/traces"),
        ] {
            let c = cfg(
                OtlpFlags {
                    endpoint: Some(flag),
                    ..Default::default()
                },
                &[],
            )
            .unwrap()
            .unwrap();
            assert_eq!(c.endpoint, want);
        }
    }

    #[test]
    fn header_flags_merge_with_env_and_conflicts_are_errors() {
        let flags = vec!["x-a=1,x-b=two%20words".to_string(), "X-C=3".to_string()];
        let c = cfg(
            OtlpFlags {
                endpoint: Some("http://c:4318"),
                headers: &flags,
                ..Default::default()
            },
            &[("OTEL_EXPORTER_OTLP_HEADERS", "x-env=e,x-a=1")],
        )
        .unwrap()
        .unwrap();
        let h: Vec<(&str, &str)> = c
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            h,
            vec![
                ("x-env", "e"),
                ("x-a", "1"),
                ("x-b", "two words"),
                ("x-c", "3")
            ]
        );
        let flags = vec!["authorization=Bearer%20flag".to_string()];
        let e = cfg(
            OtlpFlags {
                endpoint: Some("http://c:4318"),
                headers: &flags,
                ..Default::default()
            },
            &[(
                "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                "authorization=Bearer%20env",
            )],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("both --otlp-header and OTEL_EXPORTER_OTLP_TRACES_HEADERS"),
            "{e}"
        );
        let flags = vec!["novalue".to_string()];
        let e = cfg(
            OtlpFlags {
                endpoint: Some("http://c:4318"),
                headers: &flags,
                ..Default::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--otlp-header:"), "{e}");
    }

    #[test]
    fn protocol_precedence_and_errors() {
        let c = cfg(
            OtlpFlags::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.protocol, OtlpProtocol::Grpc);
        assert_eq!(c.endpoint, "http://c:4317");
        let e = cfg(
            OtlpFlags::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("OTEL_EXPORTER_OTLP_PROTOCOL") && e.contains("http/json is not supported"),
            "{e}"
        );
        let e = cfg(
            OtlpFlags {
                endpoint: Some("http://c"),
                protocol: Some("thrift"),
                ..Default::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("--otlp-protocol") && e.contains("unknown OTLP protocol \"thrift\""),
            "{e}"
        );
    }

    #[test]
    fn endpoint_errors_are_clear() {
        let err = |e: &'static str, p: Option<&'static str>| {
            cfg(
                OtlpFlags {
                    endpoint: Some(e),
                    protocol: p,
                    ..Default::default()
                },
                &[],
            )
            .unwrap_err()
            .to_string()
        };
        assert!(err("https://c:4318", None).contains("TLS not supported in this build"));
        assert!(err("ftp://c", None).contains("unsupported scheme \"ftp\""));
        assert!(err("c:4317", Some("grpc")).contains("no scheme"));
        assert!(err("http://exa mple", None).contains("not a valid URL"));
        assert!(
            err("http://c:4317/v1/traces", Some("grpc")).contains("gRPC endpoint takes no path")
        );
        assert!(err("http://u:p@c:4318", None).contains("credentials in the URL"));
    }

    #[test]
    fn headers_and_timeouts() {
        let c = cfg(
            OtlpFlags::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "Authorization=Bearer%20abc, x-team = a%2Cb ,,",
                ),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "2500"),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "100"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            c.headers,
            vec![
                ("authorization".to_string(), "Bearer abc".to_string()),
                ("x-team".to_string(), "a,b".to_string())
            ]
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        // Trace-specific headers replace the generic ones.
        let c = cfg(
            OtlpFlags::default(),
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1"),
                ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "b=2"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.headers, vec![("b".to_string(), "2".to_string())]);
        for (var, val, want) in [
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue", "has no '='"),
            (
                "OTEL_EXPORTER_OTLP_HEADERS",
                "bad name=1",
                "not a valid header name",
            ),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz", "percent-encoded"),
            (
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "10s",
                "not a number of milliseconds",
            ),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "0", "greater than zero"),
        ] {
            let vars: &'static [(&'static str, &'static str)] = Box::leak(
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), (var, val)]
                    .into_boxed_slice(),
            );
            let e = cfg(OtlpFlags::default(), vars).unwrap_err().to_string();
            assert!(e.contains(want), "{var}={val}: {e}");
        }
    }

    #[test]
    fn classification() {
        let f = |m: &str| classify_sdk_error(&OTelSdkError::InternalFailure(m.to_string()));
        for c in [429, 502, 503, 504, 408] {
            assert_eq!(
                f(&format!("HTTP export failed with status code: {c}")),
                Class::Retryable,
                "{c}"
            );
        }
        for c in [400, 401, 403, 404, 413, 500] {
            assert_eq!(
                f(&format!("HTTP export failed with status code: {c}")),
                Class::Fatal,
                "{c}"
            );
        }
        assert_eq!(f("HTTP export failed: network error"), Class::Retryable);
        assert_eq!(
            f("TonicTracesClient export failed with gRPC code: Unavailable: transport error"),
            Class::Retryable
        );
        for c in [
            "Unauthenticated",
            "PermissionDenied",
            "InvalidArgument",
            "Unimplemented",
        ] {
            assert_eq!(
                f(&format!(
                    "TonicTracesClient export failed with gRPC code: {c}"
                )),
                Class::Fatal
            );
        }
        assert_eq!(
            classify_sdk_error(&OTelSdkError::Timeout(Duration::from_secs(1))),
            Class::Retryable
        );
        assert_eq!(
            classify_sdk_error(&OTelSdkError::AlreadyShutdown),
            Class::Fatal
        );
    }

    #[test]
    fn span_data_keeps_ids_times_and_types() {
        let s = Span {
            trace_id: [1; 16],
            span_id: [2; 8],
            parent_span_id: Some([3; 8]),
            trace_state: "k=v".into(),
            name: "tools/call add".into(),
            start_ns: 1_700_000_000_123_456_789,
            end_ns: 1_700_000_000_223_456_789,
            status: SpanStatus::Error("boom".into()),
            instance_id: "pod-a".into(),
            attributes: vec![
                ("http.response.status_code", AttrValue::Int(200)),
                ("x", AttrValue::StrArray(vec!["a".into()])),
            ],
            events: vec![],
        };
        let scope = InstrumentationScope::builder(SCOPE_NAME).build();
        let d = span_data(&s, &scope);
        assert_eq!(d.span_context.trace_id().to_bytes(), [1; 16]);
        assert_eq!(d.span_context.span_id().to_bytes(), [2; 8]);
        assert_eq!(d.parent_span_id.to_bytes(), [3; 8]);
        assert!(d.parent_span_is_remote);
        assert_eq!(d.span_context.trace_state().header(), "k=v");
        assert_eq!(
            d.start_time.duration_since(UNIX_EPOCH).unwrap().as_nanos(),
            1_700_000_000_123_456_789
        );
        assert_eq!(d.attributes[0].value, Value::I64(200));
        assert_eq!(d.status, Status::error("boom"));
        assert_eq!(d.span_kind, SpanKind::Server);
    }
}
