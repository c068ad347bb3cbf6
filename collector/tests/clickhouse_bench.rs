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
//!
//! Besides wall time, it prints CPU time (user + sys): of the collector process
//! for 1 and 2 (GNU `/usr/bin/time`), and of this test's thread for 3
//! (`/proc/thread-self/schedstat`). The writer's cost per core is the CPU of 2 minus 1
//! (encode, compress, send), so "spans/s per core" does not depend on how
//! busy the machine or the ClickHouse server is.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use mcptap_collector::export::clickhouse::{ClickHouseConfig, TraceRow, client, row};
use mcptap_collector::otlp_json::ResourceInfo;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const COPIES: u8 = 150;

/// CPU time (s) of the calling thread so far, from `/proc/thread-self/schedstat`
/// (first field: ns on a CPU). The raw insert runs on this thread (a
/// current-thread tokio runtime).
fn thread_cpu() -> f64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns: f64 = s.split_whitespace().next().unwrap().parse().unwrap();
    ns / 1e9
}

/// Runs `cmd` under GNU time; returns its wall time and CPU time (user + sys, s).
fn timed(cmd: &mut Command, out: &Path) -> (Duration, f64) {
    let mut w = Command::new("/usr/bin/time");
    w.args(["-f", "%U %S", "-o"])
        .arg(out)
        .arg(cmd.get_program());
    w.args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => w.env(k, v),
            None => w.env_remove(k),
        };
    }
    let t = Instant::now();
    let (code, _, err) = run(&mut w);
    let wall = t.elapsed();
    assert_eq!(code, 0, "{err}");
    let text = std::fs::read_to_string(out).unwrap();
    let cpu = text
        .split_whitespace()
        .filter_map(|x| x.parse::<f64>().ok())
        .sum();
    (wall, cpu)
}

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

    let (decode, decode_cpu) = timed(
        collector().arg("--pcap").arg(&pcap).arg("--no-summary"),
        &tmp.path().join("t1"),
    );

    let (writer, writer_cpu) = timed(
        collector()
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
            .arg(tmp.path().join("spool")),
        &tmp.path().join("t2"),
    );
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
    let c0 = thread_cpu();
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
    let raw_cpu = thread_cpu() - c0;
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
    let per_core = |cpu: f64| spans as f64 / cpu.max(1e-9);
    let writer_only = writer_cpu - decode_cpu;
    println!(
        "BENCH cpu decode_only {decode_cpu:.3} s, collector+ch {writer_cpu:.3} s, raw_crate_insert {raw_cpu:.3} s"
    );
    println!(
        "BENCH writer per core (encode + send = collector+ch - decode_only): {writer_only:.3} s CPU, {:.0} spans/s per core; raw crate insert {:.0} spans/s per core",
        per_core(writer_only),
        per_core(raw_cpu)
    );
    if front.external {
        front.q(&format!("DROP DATABASE IF EXISTS {db_w}"));
        front.q(&format!("DROP DATABASE IF EXISTS {db_r}"));
    }
}
