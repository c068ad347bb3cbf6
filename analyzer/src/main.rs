//! `mcptap-analyzer`: placeholder until the analyzer issue lands.
//!
//! The analyzer will read spans written by `mcptap-collector` from ClickHouse
//! (`otel_traces`) and report clients and instances that still depend on MCP
//! sessions. For now it only prints where it stands.

fn main() {
    eprintln!("mcptap-analyzer: not implemented yet (see ARCHITECTURE.md)");
    std::process::exit(2);
}
