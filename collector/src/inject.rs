//! `mcptap-collector inject`: adds the mcptap-collector sidecar to Kubernetes
//! workload manifests (work in progress).

use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Options of `mcptap-collector inject`.
#[derive(Debug, Args, Clone)]
pub struct InjectArgs {
    /// Manifest file (YAML, one or more documents); `-` or absent: stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// Runs `mcptap-collector inject`.
pub fn run(_args: &InjectArgs) -> Result<ExitCode> {
    bail!("inject: not implemented yet")
}
