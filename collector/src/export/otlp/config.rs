//! OTLP exporter configuration: the OpenTelemetry specification "OTLP Exporter
//! Configuration" (`OTEL_EXPORTER_OTLP_*`) merged with the collector's flags
//! ([`OtlpConfig::from_env_and_flags`]): protocol, endpoint, headers, timeout.

use crate::otlp_json::ResourceInfo;
use anyhow::{Result, anyhow, bail};
use axum::http::{HeaderName, HeaderValue, Uri};
use std::str::FromStr;
use std::time::Duration;

/// Default export timeout per request (OTLP spec default: 10 s).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Path appended to a base endpoint for OTLP/HTTP traces (OTLP spec).
pub const HTTP_TRACES_PATH: &str = "/v1/traces";

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`grpc`), HTTP/2 via tonic; usual port 4317.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`); usual port 4318.
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Parses an `OTEL_EXPORTER_OTLP_PROTOCOL` value: `grpc` or `http/protobuf`.
    /// Errors: `http/json` (not built) and anything else, with the accepted values.
    pub fn parse(s: &str) -> Result<OtlpProtocol> {
        match s.trim() {
            "grpc" => Ok(OtlpProtocol::Grpc),
            "http/protobuf" => Ok(OtlpProtocol::HttpProtobuf),
            "http/json" => bail!(
                "OTLP protocol http/json is not supported by mcptap-collector; use http/protobuf or grpc"
            ),
            other => bail!("unknown OTLP protocol {other:?}; expected grpc or http/protobuf"),
        }
    }

    /// The spec name: `grpc` or `http/protobuf`.
    pub fn as_str(self) -> &'static str {
        match self {
            OtlpProtocol::Grpc => "grpc",
            OtlpProtocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Everything the OTLP exporter needs, resolved from flags and environment.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// The URL requests go to, used verbatim: for HTTP it includes the path
    /// (`http://collector:4318/v1/traces`); for gRPC it has no path
    /// (`http://collector:4317`). Always `http://` (TLS is not built).
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Extra request headers (gRPC metadata), names lowercase, values
    /// URL-decoded, e.g. `("authorization", "Bearer x")`.
    pub headers: Vec<(String, String)>,
    /// Per-request timeout (connect + send + response).
    pub timeout: Duration,
    /// Resource attributes (`service.name`, Kubernetes attributes); the
    /// `service.instance.id` comes from each span.
    pub resource: ResourceInfo,
}

/// Flags that override the `OTEL_EXPORTER_OTLP_*` environment variables.
#[derive(Debug, Clone, Default)]
pub struct OtlpFlags<'a> {
    /// `--otlp-endpoint`: for HTTP, `http://host:port` gets `/v1/traces`
    /// appended; a URL with a path is used verbatim. For gRPC, `http://host:port`.
    pub endpoint: Option<&'a str>,
    /// `--otlp-protocol`: `grpc` or `http/protobuf`.
    pub protocol: Option<&'a str>,
    /// `--otlp-header` items, each `key=value` (value percent-decoded), or
    /// several comma-separated.
    pub headers: &'a [String],
    /// `--otlp-timeout`.
    pub timeout: Option<Duration>,
}

/// How an endpoint value is completed for OTLP/HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EndpointKind {
    /// The flag: `/v1/traces` appended only when the URL has no path.
    Flag,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: verbatim.
    Verbatim,
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: a base URL, `/v1/traces` always appended.
    Base,
}

impl OtlpConfig {
    /// Resolves the OTLP configuration from flags and the process environment.
    /// Returns `Ok(None)` when no endpoint is configured anywhere (OTLP export off).
    ///
    /// Precedence (flags win, then the trace-specific variable, then the generic one):
    /// - endpoint: `endpoint_flag`; `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used verbatim);
    ///   `OTEL_EXPORTER_OTLP_ENDPOINT` (a base URL: `/v1/traces` is appended for HTTP).
    /// - protocol: `protocol_flag`; `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`;
    ///   `OTEL_EXPORTER_OTLP_PROTOCOL`; default `http/protobuf` (the spec default).
    /// - headers: `OTEL_EXPORTER_OTLP_TRACES_HEADERS`, else `OTEL_EXPORTER_OTLP_HEADERS`
    ///   (`k=v,k2=v2`, values URL-decoded).
    /// - timeout: `timeout_flag`; `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`;
    ///   `OTEL_EXPORTER_OTLP_TIMEOUT` (integer milliseconds); default 10 s.
    ///
    /// Errors (clear messages naming the variable or flag): a URL that does not
    /// parse, a scheme other than `http`/`https`, `https` (TLS is not built), a
    /// gRPC endpoint with a path, an unknown protocol or `http/json`, a header
    /// entry without `=` or with an invalid name/value, a timeout that is not
    /// a number of milliseconds.
    pub fn from_env_and_flags(
        endpoint_flag: Option<&str>,
        protocol_flag: Option<&str>,
        timeout_flag: Option<Duration>,
        resource: ResourceInfo,
    ) -> Result<Option<OtlpConfig>> {
        let flags = OtlpFlags {
            endpoint: endpoint_flag,
            protocol: protocol_flag,
            headers: &[],
            timeout: timeout_flag,
        };
        Self::from_flags(&flags, resource)
    }

    /// [`OtlpConfig::from_env_and_flags`] with every flag, header flags included
    /// (merged with the environment's headers; the same name with a different
    /// value in both is an error, because opentelemetry-otlp always sends the
    /// environment's).
    pub fn from_flags(flags: &OtlpFlags<'_>, resource: ResourceInfo) -> Result<Option<OtlpConfig>> {
        Self::from_lookup(flags, resource, |k| std::env::var(k).ok())
    }

    /// [`OtlpConfig::from_env_and_flags`] with the environment given as a lookup
    /// function (tests; `env(name)` returns `None` for unset or empty variables).
    pub fn from_lookup(
        flags: &OtlpFlags<'_>,
        resource: ResourceInfo,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OtlpConfig>> {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        // Protocol first: it decides how the endpoint is completed.
        let protocol = match (
            flags.protocol,
            env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"),
            env("OTEL_EXPORTER_OTLP_PROTOCOL"),
        ) {
            (Some(p), _, _) => {
                OtlpProtocol::parse(p).map_err(|e| anyhow!("--otlp-protocol: {e}"))?
            }
            (None, Some(p), _) => OtlpProtocol::parse(&p)
                .map_err(|e| anyhow!("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: {e}"))?,
            (None, None, Some(p)) => {
                OtlpProtocol::parse(&p).map_err(|e| anyhow!("OTEL_EXPORTER_OTLP_PROTOCOL: {e}"))?
            }
            (None, None, None) => OtlpProtocol::HttpProtobuf,
        };
        let endpoint = if let Some(e) = flags.endpoint.filter(|e| !e.trim().is_empty()) {
            resolve_endpoint("--otlp-endpoint", e, protocol, EndpointKind::Flag)?
        } else if let Some(e) = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            resolve_endpoint(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                &e,
                protocol,
                EndpointKind::Verbatim,
            )?
        } else if let Some(e) = env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            resolve_endpoint(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                &e,
                protocol,
                EndpointKind::Base,
            )?
        } else {
            return Ok(None);
        };
        let (env_var, env_headers) = if let Some(h) = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS") {
            let v = "OTEL_EXPORTER_OTLP_TRACES_HEADERS";
            (v, parse_headers(&h).map_err(|e| anyhow!("{v}: {e}"))?)
        } else if let Some(h) = env("OTEL_EXPORTER_OTLP_HEADERS") {
            let v = "OTEL_EXPORTER_OTLP_HEADERS";
            (v, parse_headers(&h).map_err(|e| anyhow!("{v}: {e}"))?)
        } else {
            ("", Vec::new())
        };
        // opentelemetry-otlp always adds the environment's headers last (they win
        // per name), so a flag cannot override one: a conflict is an error.
        let mut headers = env_headers;
        for item in flags.headers {
            for (k, v) in parse_headers(item).map_err(|e| anyhow!("--otlp-header: {e}"))? {
                match headers.iter().find(|(ek, _)| *ek == k) {
                    Some((_, ev)) if *ev != v => bail!(
                        "OTLP header {k:?} is set by both --otlp-header and {env_var} with different values; \
                         remove one (the exporter would send the environment's)"
                    ),
                    Some(_) => {}
                    None => headers.push((k, v)),
                }
            }
        }
        let timeout = if let Some(t) = flags.timeout {
            t
        } else if let Some(t) = env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") {
            parse_timeout_ms("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", &t)?
        } else if let Some(t) = env("OTEL_EXPORTER_OTLP_TIMEOUT") {
            parse_timeout_ms("OTEL_EXPORTER_OTLP_TIMEOUT", &t)?
        } else {
            DEFAULT_TIMEOUT
        };
        if timeout.is_zero() {
            bail!("OTLP timeout must be greater than zero");
        }
        if protocol == OtlpProtocol::HttpProtobuf && endpoint.contains(":4317/") {
            tracing::warn!(
                endpoint,
                "OTLP protocol is http/protobuf but the endpoint uses port 4317, the usual OTLP/gRPC port; \
                 set --otlp-protocol grpc (or OTEL_EXPORTER_OTLP_PROTOCOL=grpc) if the receiver speaks gRPC"
            );
        }
        Ok(Some(OtlpConfig {
            endpoint,
            protocol,
            headers,
            timeout,
            resource,
        }))
    }
}

/// Validates `value` (from `source`) and returns the URL to use verbatim,
/// completed for HTTP per `kind`.
fn resolve_endpoint(
    source: &str,
    value: &str,
    protocol: OtlpProtocol,
    kind: EndpointKind,
) -> Result<String> {
    let value = value.trim();
    let uri: Uri = value.parse().map_err(|e| {
        anyhow!(
            "{source}: {value:?} is not a valid URL ({e}); expected e.g. http://otel-collector:4318"
        )
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => bail!(
            "{source}: {value:?}: TLS not supported in this build (https:// endpoints need TLS); \
             use http:// to an in-cluster collector or a node-local agent"
        ),
        Some(other) => bail!("{source}: {value:?}: unsupported scheme {other:?}; expected http://"),
        None => bail!(
            "{source}: {value:?} has no scheme; expected a URL such as http://otel-collector:4317"
        ),
    }
    let Some(host) = uri.host().filter(|h| !h.is_empty()) else {
        bail!("{source}: {value:?} has no host");
    };
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        bail!(
            "{source}: {value:?}: credentials in the URL are not supported; use OTEL_EXPORTER_OTLP_HEADERS"
        );
    }
    let path = uri.path();
    match protocol {
        OtlpProtocol::Grpc => {
            if !(path.is_empty() || path == "/") || uri.query().is_some() {
                bail!(
                    "{source}: {value:?}: a gRPC endpoint takes no path (the path is the gRPC service); \
                     use http://{host}{}",
                    uri.port().map(|p| format!(":{p}")).unwrap_or_default()
                );
            }
            Ok(value.trim_end_matches('/').to_string())
        }
        OtlpProtocol::HttpProtobuf => {
            let append = match kind {
                EndpointKind::Verbatim => false,
                EndpointKind::Flag => (path.is_empty() || path == "/") && uri.query().is_none(),
                EndpointKind::Base => uri.query().is_none(),
            };
            if append {
                Ok(format!("{}{HTTP_TRACES_PATH}", value.trim_end_matches('/')))
            } else {
                Ok(value.to_string())
            }
        }
    }
}

/// Parses `k=v,k2=v2` (W3C Baggage-like, per the OTLP exporter spec): entries
/// trimmed, empty entries skipped, values percent-decoded. Names are lowercased.
fn parse_headers(s: &str) -> Result<Vec<(String, String)>> {
    let mut out: Vec<(String, String)> = Vec::new();
    for entry in s.split(',') {
        let entry = entry.trim();
        if entry.is_empty() {
            continue;
        }
        let Some((k, v)) = entry.split_once('=') else {
            bail!("header entry {entry:?} has no '=' (expected key=value,key2=value2)");
        };
        let k = k.trim().to_ascii_lowercase();
        let v = percent_decode(v.trim())
            .ok_or_else(|| anyhow!("header {k:?}: value is not valid percent-encoded UTF-8"))?;
        HeaderName::from_str(&k).map_err(|_| anyhow!("{k:?} is not a valid header name"))?;
        HeaderValue::from_str(&v)
            .map_err(|_| anyhow!("header {k:?}: value has invalid characters"))?;
        out.retain(|(ok, _)| *ok != k);
        out.push((k, v));
    }
    Ok(out)
}

/// Percent-decoding (`%41` → `A`); `None` on a bad escape or invalid UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn parse_timeout_ms(var: &str, v: &str) -> Result<Duration> {
    v.trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| anyhow!("{var}: {v:?} is not a number of milliseconds"))
}
