//! `mcptap-analyzer`: reads the spans `mcptap-collector` wrote to ClickHouse (`otel_traces`)
//! and finds what blocks the MCP 2026-07-28 stateless cutover.
//!
//! - [`clickhouse`]: connection, identifier validation, column choice, query helper;
//! - [`config`]: the time [`config::Range`] and the rule thresholds ([`config::Config`]), shared
//!   by the rules, the readiness verdict, the engine and the service;
//! - [`rules`]: one module per rule (SQL + rows → [`finding::Finding`]s);
//! - [`engine`]: runs rules over a [`config::Range`] into an [`engine::Analysis`];
//! - [`readiness`]: the cutover readiness verdict;
//! - [`report`]: JSON report (schema in `analyzer/REPORT_SCHEMA.md`) and terminal table;
//! - [`serve`]: the HTTP service (JSON API, /metrics, webhooks, web page);
//! - [`timeutil`]: RFC 3339 / duration parsing and formatting.
//!
//! Rule semantics and thresholds: `analyzer/RULES.md`. The module graph is acyclic:
//! `timeutil`, `clickhouse`, `finding`, `config` ← `rules` ← `readiness` ← `engine` ← `report`,
//! `serve` (`tests/modules.rs` fails on a cycle).

pub mod clickhouse;
pub mod config;
pub mod engine;
pub mod finding;
pub mod readiness;
pub mod report;
pub mod rules;
pub mod serve;
pub mod timeutil;
