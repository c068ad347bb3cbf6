//! Live capture on a veth pair in network namespaces gives the same spans as
//! replaying a pcap of the same packets.
//!
//! The fixture capture is replayed onto one end of a veth pair with tcpreplay;
//! on the other end, inside another namespace, `mcptap-collector --interface`
//! and `tcpdump -w` listen at the same time. The spans of the live run must equal,
//! field for field including nanosecond timestamps, the spans of
//! `mcptap-collector --pcap` over tcpdump's file; and apart from timestamps they
//! must equal the spans of the original fixture.
//!
//! Needs root, iproute2, tcpdump and tcpreplay; runs when `MCPTAP_LIVE_TESTS=1`
//! (set by scripts/test.sh as root), and then fails rather than skips when a
//! tool is missing.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::BIN;

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    assert!(st.success(), "{args:?} failed: {st}");
}

struct Netns {
    names: Vec<String>,
}

impl Drop for Netns {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

/// Spans of an OTLP/JSON lines file, each with its resource's service.instance.id, sorted by span id.
fn spans(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let req: Value = serde_json::from_str(line).expect("valid JSON line");
        for rs in req["resourceSpans"].as_array().expect("resourceSpans") {
            let inst = rs["resource"]["attributes"]
                .as_array()
                .and_then(|a| a.iter().find(|kv| kv["key"] == "service.instance.id"))
                .map(|kv| kv["value"]["stringValue"].clone())
                .unwrap_or(Value::Null);
            for ss in rs["scopeSpans"].as_array().expect("scopeSpans") {
                for s in ss["spans"].as_array().expect("spans") {
                    let mut s = s.clone();
                    s["instance"] = inst.clone();
                    out.push(s);
                }
            }
        }
    }
    out.sort_by(|a, b| a["spanId"].as_str().cmp(&b["spanId"].as_str()));
    out
}

fn without_times(mut v: Vec<Value>) -> Vec<Value> {
    for s in &mut v {
        let o = s.as_object_mut().expect("span object");
        o.remove("startTimeUnixNano");
        o.remove("endTimeUnixNano");
        if let Some(evs) = o.get_mut("events").and_then(Value::as_array_mut) {
            for e in evs {
                e.as_object_mut().map(|e| e.remove("timeUnixNano"));
            }
        }
    }
    v
}

/// Asserts two span lists are equal, naming the first difference instead of dumping both.
fn assert_same(a: &[Value], b: &[Value], what: &str) {
    assert_eq!(a.len(), b.len(), "{what}: span counts differ");
    for (x, y) in a.iter().zip(b) {
        if x != y {
            panic!("{what}: first difference:\n  left:  {x}\n  right: {y}");
        }
    }
}

fn wait_exit(child: &mut Child, what: &str) {
    let t0 = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            assert!(
                st.success() || st.code() == Some(0) || st.code().is_none(),
                "{what} exited with {st}"
            );
            return;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "{what} did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn live_capture_matches_pcap_replay() {
    if std::env::var("MCPTAP_LIVE_TESTS").ok().as_deref() != Some("1") {
        eprintln!("live_capture_matches_pcap_replay: skipped (set MCPTAP_LIVE_TESTS=1 as root)");
        return;
    }
    let fixture = support::fixtures_dir().join("cutover.pcap");
    let id = std::process::id() % 100_000;
    let (na, nb) = (format!("mtl{id}a"), format!("mtl{id}b"));
    let (va, vb) = (format!("mtl{id}va"), format!("mtl{id}vb"));
    let _guard = Netns {
        names: vec![na.clone(), nb.clone()],
    };
    sh(&["ip", "netns", "add", &na]);
    sh(&["ip", "netns", "add", &nb]);
    sh(&[
        "ip", "link", "add", &va, "netns", &na, "type", "veth", "peer", "name", &vb, "netns", &nb,
    ]);
    // The fixture holds segments larger than 1500 bytes (captured on virtual
    // interfaces with segmentation offload): a bigger MTU lets tcpreplay send them.
    sh(&["ip", "-n", &na, "link", "set", &va, "mtu", "9000", "up"]);
    sh(&["ip", "-n", &nb, "link", "set", &vb, "mtu", "9000", "up"]);
    // Keep the kernel quiet on the capture side (no IPv6 router solicitations etc. matter:
    // they are not TCP and are counted as not-tcp drops).
    let dir = std::env::temp_dir().join(format!("mcptap-live-{id}"));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let live_out = dir.join("live.jsonl");
    let live_pcap = dir.join("live.pcap");
    let replay_out = dir.join("replay.jsonl");
    let fixture_out = dir.join("fixture.jsonl");

    let mut collector = Command::new("ip")
        .args([
            "netns",
            "exec",
            &nb,
            BIN,
            "--interface",
            &vb,
            "--filter",
            "tcp",
            "--no-summary",
        ])
        .arg("--output")
        .arg(format!("otlp-json={}", live_out.display()))
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start collector");
    let mut tcpdump = Command::new("ip")
        .args([
            "netns",
            "exec",
            &nb,
            "tcpdump",
            "-i",
            &vb,
            "-s",
            "0",
            "-U",
            "--time-stamp-precision=nano",
            "-w",
        ])
        .arg(&live_pcap)
        .arg("tcp")
        .stderr(Stdio::null())
        .spawn()
        .expect("start tcpdump");
    std::thread::sleep(Duration::from_millis(2000));
    let st = Command::new("ip")
        .args([
            "netns",
            "exec",
            &na,
            "tcpreplay",
            "-q",
            "-i",
            &va,
            "--pps",
            "2000",
        ])
        .arg(&fixture)
        .stdout(Stdio::null())
        .status()
        .expect("tcpreplay");
    assert!(st.success(), "tcpreplay failed");
    std::thread::sleep(Duration::from_millis(1500));
    for (child, sig) in [(&collector, "TERM"), (&tcpdump, "INT")] {
        // `ip netns exec` execs the program, so the child pid is the program's pid.
        sh(&["kill", &format!("-{sig}"), &child.id().to_string()]);
    }
    wait_exit(&mut collector, "collector");
    wait_exit(&mut tcpdump, "tcpdump");

    for (input, out) in [(&live_pcap, &replay_out), (&fixture, &fixture_out)] {
        let st = Command::new(BIN)
            .arg("--pcap")
            .arg(input)
            .arg("--no-summary")
            .arg("--output")
            .arg(format!("otlp-json={}", out.display()))
            .status()
            .expect("replay");
        assert!(st.success(), "replay of {} failed", input.display());
    }
    let live = spans(&live_out);
    let replay = spans(&replay_out);
    let original = spans(&fixture_out);
    assert!(!original.is_empty(), "the fixture decodes to spans");
    assert_eq!(
        live.len(),
        original.len(),
        "live capture saw every exchange of the fixture"
    );
    assert_same(
        &live,
        &replay,
        "live spans vs a pcap of the same packets, timestamps included",
    );
    assert_same(
        &without_times(live),
        &without_times(original),
        "live spans vs the original fixture, but for times",
    );
    let _ = std::fs::remove_dir_all(&dir);
}
