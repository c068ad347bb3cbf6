//! PLACEHOLDER written by the ClickHouse-export helper so the crate compiles
//! until the OTLP helper lands the real exporter; that helper overwrites this
//! file. It only fixes the agreed API: `OtlpExporter::new` always fails with a
//! "not yet available" error.

use super::{Batch, ExportError, Exporter};
use crate::otlp_json::ResourceInfo;
use std::time::Duration;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP with protobuf bodies.
    HttpProtobuf,
}

/// OTLP exporter settings.
#[derive(Debug, Clone)]
pub struct OtlpConfig {
    /// Endpoint URL (for HTTP, the full `/v1/traces` URL).
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Extra request headers.
    pub headers: Vec<(String, String)>,
    /// Time limit of one export.
    pub timeout: Duration,
    /// Resource attributes.
    pub resource: ResourceInfo,
}

/// Placeholder OTLP exporter (never constructed).
pub struct OtlpExporter {
    _cfg: OtlpConfig,
}

impl OtlpExporter {
    /// Always fails: the OTLP exporter is not in this build yet.
    pub async fn new(cfg: OtlpConfig) -> anyhow::Result<OtlpExporter> {
        let _ = &cfg;
        anyhow::bail!("the OTLP exporter is not yet available in this build (--otlp-endpoint)")
    }
}

impl Exporter for OtlpExporter {
    fn name(&self) -> &'static str {
        "otlp"
    }
    async fn export(&mut self, _batch: &Batch) -> Result<(), ExportError> {
        Err(ExportError::Fatal("OTLP exporter not available".into()))
    }
}
