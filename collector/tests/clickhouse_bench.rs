//! Writer throughput (whole process), recorded in BENCHMARKS.md. Ignored by
//! default; run with
//! `cargo test --release -p mcptap-collector --test clickhouse_bench -- --ignored --nocapture`.
//!
//! Three timings on the same synthetic capture (the real fixture copied with new
//! client addresses, 150 × 67 = 10 050 spans), against the same ClickHouse:
//! 1. decode only (`mcptap-collector --pcap big`, no exporter): the ceiling;
//! 2. `mcptap-collector --pcap big --clickhouse-url U` (queue, dedup token,
//!    validation, LZ4; default batches of 1024 spans): the writer, end to end;
//! 3. the `clickhouse` crate's plain insert of the same rows (decoded in memory
//!    first, not timed), batches of 1024, no queue, no token: the reference.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::*;
use mcptap_collector::export::clickhouse::{ClickHouseConfig, TraceRow, client, row};
use mcptap_collector::otlp_json::ResourceInfo;
use std::time::{Duration, Instant};

const COPIES: u8 = 150;

#[test]
#[ignore]
fn writer_throughput() {
    let front = Front::start();
    let tmp = TempDir::new("bench");
    let pcap = tmp.path().join("big.pcap");
    multiply_capture(&fixture("cutover.pcap"), &pcap, COPIES, 8000);
    let spans = 67 * u64::from(COPIES);
    let db_w = unique_db("bench_w");
    let db_r = unique_db("bench_r");
    apply_schema(&front, &db_w);
    apply_schema(&front, &db_r);

    let t = Instant::now();
    let (code, _, err) = run(collector().arg("--pcap").arg(&pcap).arg("--no-summary"));
    assert_eq!(code, 0, "{err}");
    let decode = t.elapsed();

    let t = Instant::now();
    let (code, _, err) = run(collector()
        .arg("--pcap")
        .arg(&pcap)
        .args([
            "--clickhouse-url",
            &front.url,
            "--clickhouse-database",
            &db_w,
            "--no-summary",
        ])
        .arg("--spool-dir")
        .arg(tmp.path().join("spool")));
    assert_eq!(code, 0, "{err}");
    let writer = t.elapsed();
    assert_eq!(
        front.q(&format!("SELECT count() FROM {db_w}.otel_traces")),
        format!("{spans}\n")
    );

    let decoded = mcptap_collector::run::decode_file(&pcap, Default::default()).unwrap();
    assert_eq!(decoded.spans.len() as u64, spans);
    let res = ResourceInfo {
        service_name: "mcp-server".into(),
        extra: vec![],
    };
    let cfg = ClickHouseConfig {
        url: front.url.clone(),
        database: db_r.clone(),
        table: "otel_traces".into(),
        user: None,
        password: None,
        timeout: Duration::from_secs(60),
    };
    let cl = client(&cfg);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let t = Instant::now();
    rt.block_on(async {
        for chunk in decoded.spans.chunks(1024) {
            let mut ins = cl.insert::<TraceRow<'_>>("otel_traces").await.unwrap();
            for s in chunk {
                ins.write(&row(s, &res)).await.unwrap();
            }
            ins.end().await.unwrap();
        }
    });
    let raw = t.elapsed();
    assert_eq!(
        front.q(&format!("SELECT count() FROM {db_r}.otel_traces")),
        format!("{spans}\n")
    );

    let rate = |d: Duration| spans as f64 / d.as_secs_f64();
    println!("BENCH spans={spans}");
    println!(
        "BENCH decode_only      {:>8.3} s {:>10.0} spans/s",
        decode.as_secs_f64(),
        rate(decode)
    );
    println!(
        "BENCH collector+ch     {:>8.3} s {:>10.0} spans/s",
        writer.as_secs_f64(),
        rate(writer)
    );
    println!(
        "BENCH raw_crate_insert {:>8.3} s {:>10.0} spans/s",
        raw.as_secs_f64(),
        rate(raw)
    );
    println!(
        "BENCH writer/raw = {:.2}  (writer incl. decode; raw excludes decode)",
        rate(writer) / rate(raw)
    );
    if front.external {
        front.q(&format!("DROP DATABASE IF EXISTS {db_w}"));
        front.q(&format!("DROP DATABASE IF EXISTS {db_r}"));
    }
}
