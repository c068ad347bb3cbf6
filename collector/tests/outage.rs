//! Outage: ClickHouse stops in the middle of a replay and comes back; a
//! collector is stopped while ClickHouse is down and restarted later with the
//! same spool. Every span must arrive exactly once (row count = spans queued =
//! distinct span ids). Needs a ClickHouse this test can stop: skipped when
//! `CLICKHOUSE_URL` is set.
#![allow(clippy::unwrap_used, missing_docs)]

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const COPIES: u8 = 30; // 30 × 67 = 2010 spans

fn count(front: &Front, db: &str) -> Option<(u64, u64)> {
    let (code, body) = http_query(
        &front.url,
        &format!("SELECT count(), uniq(SpanId) FROM {db}.otel_traces"),
        None,
    );
    if code != 200 {
        return None;
    }
    let mut it = body.trim().split('\t').map(|x| x.parse::<u64>().unwrap());
    Some((it.next()?, it.next()?))
}

fn count_ok(front: &Front, db: &str) -> u64 {
    std::panic::catch_unwind(|| count(front, db))
        .ok()
        .flatten()
        .map_or(0, |c| c.0)
}

fn collector_cmd(
    front: &Front,
    db: &str,
    pcap: &std::path::Path,
    spool: &std::path::Path,
) -> Command {
    let mut c = replay_into(&front.url, db, pcap, spool);
    c.args(["--batch-max-spans", "10", "--queue-max-batches", "2"])
        .args(["--retry-max-delay", "0.3", "--no-summary"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn clickhouse_stops_mid_replay_and_every_span_arrives_once() {
    if skip_if_external_clickhouse() {
        return;
    }
    let mut front = Front::start_own(&[]);
    let db = unique_db("outage");
    apply_schema(&front, &db);
    let tmp = TempDir::new("outage");
    let pcap = tmp.path().join("big.pcap");
    multiply_capture(&fixture("cutover.pcap"), &pcap, COPIES, 8000);

    let child = collector_cmd(&front, &db, &pcap, &tmp.path().join("spool"))
        .args(["--shutdown-grace", "90"])
        .spawn()
        .unwrap();
    // Let part of it arrive, then stop ClickHouse in the middle.
    assert!(
        wait_until(Duration::from_secs(60), || count_ok(&front, &db) >= 200),
        "no rows arrived"
    );
    front.stop();
    std::thread::sleep(Duration::from_secs(2));
    front.restart();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let queued = queued_spans(&err);
    assert_eq!(queued, 67 * u64::from(COPIES), "{err}");
    assert!(err.contains(&format!("{queued} sent")), "{err}");
    assert!(err.contains("export failed, retrying"), "{err}");
    assert!(
        !err.contains(" 0 spooled"),
        "the outage should have spilled to the spool: {err}"
    );
    assert!(err.contains(", 0 dropped"), "{err}");
    assert_eq!(count(&front, &db), Some((queued, queued)), "{err}");
}

#[test]
fn collector_stopped_during_outage_replays_its_spool_after_restart() {
    if skip_if_external_clickhouse() {
        return;
    }
    let mut front = Front::start_own(&[]);
    let db = unique_db("restart");
    apply_schema(&front, &db);
    let tmp = TempDir::new("restart");
    let pcap = tmp.path().join("big.pcap");
    multiply_capture(&fixture("cutover.pcap"), &pcap, COPIES, 8000);
    let spool = tmp.path().join("spool");

    let child = collector_cmd(&front, &db, &pcap, &spool)
        .args(["--shutdown-grace", "1"])
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(60), || count_ok(&front, &db) >= 100),
        "no rows arrived"
    );
    front.stop();
    std::thread::sleep(Duration::from_millis(1500));
    // SIGTERM while ClickHouse is down (if the replay has not already ended).
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    let err1 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(4), "{err1}");
    assert!(err1.contains("kept in the spool"), "{err1}");
    let queued1 = queued_spans(&err1);
    let files = spool_files(&spool.join("clickhouse"));
    assert!(files > 0);

    // ClickHouse back; a new collector with the same spool and no new input.
    front.restart();
    let before = count(&front, &db).unwrap().0;
    assert!(before < queued1, "some spans must be waiting in the spool");
    let empty = tmp.path().join("empty.pcap");
    empty_capture(&empty);
    let out = collector_cmd(&front, &db, &empty, &spool)
        .args(["--shutdown-grace", "120"])
        .output()
        .unwrap();
    let err2 = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{err2}");
    assert!(
        err2.contains("replaying batches spooled by a previous run"),
        "{err2}"
    );
    assert!(err2.contains("0 spans queued"), "{err2}");
    assert_eq!(
        count(&front, &db),
        Some((queued1, queued1)),
        "{err1}\n{err2}"
    );
    let left = spool_files(&spool.join("clickhouse"));
    assert_eq!(left, 0);
}
