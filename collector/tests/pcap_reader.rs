//! The collector reads capture files itself (`source.rs` over
//! `mcptap_wire::pcapfile`); libpcap is the model it is checked against. Both
//! must give the same packets with the same nanosecond timestamps, for the real
//! fixtures (pcap and pcapng) and for generated files in every byte order and
//! precision, and stop at the same record when a file is cut.

mod support;

use mcptap_collector::pipeline::PipelineConfig;
use mcptap_collector::run::decode_file;
use mcptap_collector::source::{End, Source};
use proptest::prelude::*;
use std::path::Path;

use support::fixture;

/// Packets (ts ns, bytes) and how the file ended: `None` at a clean end,
/// `Some(packets before the damage)` otherwise.
type Read = (Vec<(u64, Vec<u8>)>, Option<u64>);

/// Every packet through the collector's file source.
fn ours(path: &Path) -> Read {
    let mut source = Source::open_file(path).expect("open");
    let mut out = Vec::new();
    loop {
        match source.next_packet() {
            Ok(Some(p)) => out.push((p.ts, p.data.to_vec())),
            Ok(None) => panic!("a file source never says 'nothing ready'"),
            Err(End::Done) => return (out, None),
            Err(End::Truncated { packets, .. }) => return (out, Some(packets)),
        }
    }
}

/// Every packet through libpcap, at nanosecond precision (the model).
fn libpcap(path: &Path) -> Read {
    let mut cap = pcap::Capture::from_file_with_precision(path, pcap::Precision::Nano)
        .expect("libpcap opens it");
    let mut out = Vec::new();
    loop {
        match cap.next_packet() {
            Ok(p) => {
                let sec = u64::try_from(p.header.ts.tv_sec).expect("ts");
                let nsec = u64::try_from(p.header.ts.tv_usec).expect("ts");
                out.push((sec * 1_000_000_000 + nsec, p.data.to_vec()));
            }
            Err(pcap::Error::NoMorePackets) => return (out, None),
            Err(_) => {
                let n = out.len() as u64;
                return (out, Some(n));
            }
        }
    }
}

#[test]
fn fixtures_read_exactly_like_libpcap() {
    for name in ["cutover.pcap", "pod-a-any.pcap", "cutover.pcapng"] {
        let path = fixture(name);
        let (got, end) = ours(&path);
        assert_eq!(end, None, "{name}");
        assert!(got.len() > 300, "{name}: {} packets", got.len());
        assert!(
            got == libpcap(&path).0,
            "{name}: packets differ from libpcap's"
        );
    }
    // The pcapng conversion holds the same packets as the pcap.
    assert!(ours(&fixture("cutover.pcapng")).0 == ours(&fixture("cutover.pcap")).0);
}

#[test]
fn pcapng_fixture_decodes_to_the_same_spans_and_summary() {
    let a = decode_file(&fixture("cutover.pcap"), PipelineConfig::default()).expect("pcap");
    let b = decode_file(&fixture("cutover.pcapng"), PipelineConfig::default()).expect("pcapng");
    assert_eq!(a.spans.len(), 67);
    assert_eq!(a.spans, b.spans);
    assert_eq!(a.summary, b.summary);
    assert_eq!((a.truncated, b.truncated), (None, None));
}

/// A pcap file, link type Ethernet, in either byte order and precision.
fn pcap_file(be: bool, nanos: bool, recs: &[(u32, u32, Vec<u8>)]) -> Vec<u8> {
    let w = |v: u32| if be { v.to_be_bytes() } else { v.to_le_bytes() };
    let mut out = Vec::new();
    out.extend(w(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
    out.extend(if be { [0, 2, 0, 4] } else { [2, 0, 4, 0] });
    out.extend([0; 8]);
    out.extend(w(262_144));
    out.extend(w(1));
    for (sec, frac, data) in recs {
        out.extend(w(*sec));
        out.extend(w(*frac));
        out.extend(w(data.len() as u32));
        out.extend(w(data.len() as u32));
        out.extend(data);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Records of up to ~300 KiB cross the 256 KiB read blocks; `cut` ends the
    /// file anywhere after the header.
    #[test]
    fn generated_files_read_like_libpcap(
        be in any::<bool>(),
        nanos in any::<bool>(),
        recs in proptest::collection::vec(
            // libpcap reads the seconds as a signed 32-bit value; the pcap
            // format (draft-ietf-opsawg-pcap §5) says unsigned, as ours does.
            // They agree up to 2038.
            (0u32..=i32::MAX as u32, 0u32..1_000_000, prop_oneof![
                8 => proptest::collection::vec(any::<u8>(), 0..1600),
                1 => (100_000usize..262_144).prop_map(|n| vec![0x5a; n]),
            ]),
            0..12,
        ),
        cut in any::<prop::sample::Index>(),
    ) {
        let bytes = pcap_file(be, nanos, &recs);
        let dir = support::TempDir::new("pcap-reader");
        let path = dir.join(&format!("gen-{be}-{nanos}-{}.pcap", bytes.len()));
        std::fs::write(&path, &bytes).expect("write");
        let got = ours(&path);
        prop_assert_eq!(got.1, None);
        prop_assert_eq!(got.0.len(), recs.len());
        prop_assert!(got == libpcap(&path));

        let cut = 24 + cut.index(bytes.len() - 24 + 1);
        std::fs::write(&path, &bytes[..cut]).expect("write");
        let (got, end) = ours(&path);
        let (want, want_end) = libpcap(&path);
        prop_assert!(got == want);
        prop_assert_eq!(end.is_some(), want_end.is_some());
        std::fs::remove_file(&path).ok();
    }
}

#[test]
fn oversized_record_is_an_error_at_its_offset() {
    let recs = vec![(1, 0, vec![1; 10]), (2, 0, vec![2; 300_000 - 16])];
    // The second record claims more than libpcap's 262,144-byte maximum.
    let bytes = pcap_file(false, true, &recs);
    let dir = support::TempDir::new("pcap-reader");
    let path = dir.join("oversized.pcap");
    std::fs::write(&path, &bytes).expect("write");
    let mut source = Source::open_file(&path).expect("open");
    assert!(matches!(source.next_packet(), Ok(Some(_))));
    match source.next_packet() {
        Err(End::Truncated {
            packets,
            offset,
            message,
        }) => {
            assert_eq!((packets, offset), (1, 24 + 16 + 10));
            assert!(message.contains("bigger than the maximum"), "{message}");
        }
        other => panic!(
            "expected a truncation, got {:?}",
            other.map(|p| p.is_some())
        ),
    }
}

/// `--pcap` on a FIFO or pipe (`tcpdump -w - | mcptap-collector --pcap /dev/stdin`):
/// each record is decoded as soon as it is complete, not when a read block is full.
#[test]
fn fifo_records_are_decoded_as_they_arrive() {
    let dir = support::TempDir::new("pcap-reader");
    let fifo = dir.join("live.fifo");
    let _ = std::fs::remove_file(&fifo);
    let st = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo");
    assert!(st.success());
    let (got_tx, got_rx) = std::sync::mpsc::channel::<()>();
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut w = std::fs::OpenOptions::new()
                .write(true)
                .open(&fifo)
                .expect("open fifo");
            let bytes = pcap_file(false, true, &[(7, 8, vec![0xab; 60])]);
            w.write_all(&bytes).expect("write");
            w.flush().expect("flush");
            // Keep the FIFO open until the reader has the packet (or 20 s passed):
            // a reader waiting for a full block would only see it at the close.
            let before_close = got_rx
                .recv_timeout(std::time::Duration::from_secs(20))
                .is_ok();
            drop(w);
            before_close
        })
    };
    let mut source = Source::open_file(&fifo).expect("open fifo");
    match source.next_packet() {
        Ok(Some(p)) => assert_eq!((p.ts, p.data.len()), (7_000_000_008, 60)),
        _ => panic!("no packet"),
    }
    got_tx.send(()).expect("signal");
    assert!(
        writer.join().expect("writer"),
        "the packet was only decoded after the writer closed the FIFO"
    );
    assert!(matches!(source.next_packet(), Err(End::Done)));
}

/// `--pcap -` reads the capture from standard input and gives the same spans.
#[test]
fn pcap_dash_reads_standard_input() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let bin = env!("CARGO_BIN_EXE_mcptap-collector");
    let capture = fixture("cutover.pcap");
    let from_file = Command::new(bin)
        .args(["--no-summary", "--output", "otlp-json", "--pcap"])
        .arg(&capture)
        .output()
        .expect("run on file");
    let mut child = Command::new(bin)
        .args(["--no-summary", "--output", "otlp-json", "--pcap", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run on stdin");
    let bytes = std::fs::read(&capture).expect("fixture");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&bytes)
        .expect("feed stdin");
    let from_stdin = child.wait_with_output().expect("wait");
    assert!(from_file.status.success() && from_stdin.status.success());
    let spans = String::from_utf8_lossy(&from_file.stdout);
    assert_eq!(spans.matches("\"spanId\"").count(), 67, "{spans}");
    assert_eq!(from_file.stdout, from_stdin.stdout);
}
