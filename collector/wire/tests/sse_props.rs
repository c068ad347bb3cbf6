//! Property tests of `sse::SseParser`: splitting never changes the events;
//! generated events round-trip with any line ending; arbitrary input never
//! panics and keeps memory bounded.

use mcptap_wire::SseEvent;
use mcptap_wire::sse::SseParser;
use mcptap_wire::stats::WireStats;
use proptest::prelude::*;

fn parse(pieces: &[&[u8]], cap: usize) -> (Vec<SseEvent>, WireStats) {
    let mut p = SseParser::new(cap);
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    for piece in pieces {
        p.feed(piece, &mut stats, &mut out);
        assert!(p.buffered_bytes() <= cap);
    }
    p.finish(&mut stats);
    (out, stats)
}

/// A stream mixing everything: BOM, CRLF/LF/CR endings, comments, priming
/// event, multi-line data, retry, NUL in id, unknown fields, no-data events.
const STREAM: &[u8] = b"\xEF\xBB\xBF: hello\r\n\r\nid: p0\r\nretry: 2500\r\ndata:\r\n\r\n\
event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\n\
: ping\n\ndata: line1\rdata: line2\r\rfoo: bar\nid: a\0b\ndata\n\nid: only-id\n\n\
event: message\r\nid: 7\r\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\r\n\r\ndata: unterminated";

fn expected() -> Vec<SseEvent> {
    vec![
        SseEvent {
            event: None,
            data: String::new(),
            id: Some("p0".into()),
            retry_ms: Some(2500),
        },
        SseEvent {
            event: Some("message".into()),
            data: "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}".into(),
            id: None,
            retry_ms: None,
        },
        SseEvent {
            event: None,
            data: "line1\nline2".into(),
            id: None,
            retry_ms: None,
        },
        SseEvent {
            event: None,
            data: String::new(),
            id: None,
            retry_ms: None,
        },
        SseEvent {
            event: Some("message".into()),
            data: "{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}".into(),
            id: Some("7".into()),
            retry_ms: None,
        },
    ]
}

#[test]
fn stream_parses_as_expected() {
    let (out, stats) = parse(&[STREAM], 4096);
    assert_eq!(out, expected());
    assert_eq!(stats.sse_events, 5);
    assert_eq!(stats.sse_comments, 2);
    assert_eq!(stats.sse_events_dropped, 1, "the unterminated tail");
}

#[test]
fn every_two_way_split_gives_same_events() {
    let reference = parse(&[STREAM], 4096);
    for i in 0..=STREAM.len() {
        let (a, b) = STREAM.split_at(i);
        assert_eq!(parse(&[a, b], 4096), reference, "split at {i}");
    }
}

#[test]
fn every_three_way_split_gives_same_events() {
    let reference = parse(&[STREAM], 4096);
    for i in 0..=STREAM.len() {
        for j in i..=STREAM.len() {
            let pieces = [&STREAM[..i], &STREAM[i..j], &STREAM[j..]];
            assert_eq!(parse(&pieces, 4096), reference, "split at {i}, {j}");
        }
    }
}

/// Characters allowed in generated field values (no CR/LF).
fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 {}\":,._é-]{0,24}"
}

#[derive(Debug, Clone)]
struct GenEvent {
    event: Option<String>,
    data: Vec<String>,
    id: Option<String>,
    retry: Option<u64>,
    comment: bool,
}

fn gen_event() -> impl Strategy<Value = GenEvent> {
    (
        prop::option::of("[a-z]{1,10}"),
        prop::collection::vec(text(), 1..4),
        prop::option::of(text()),
        prop::option::of(0u64..100_000),
        any::<bool>(),
    )
        .prop_map(|(event, data, id, retry, comment)| GenEvent {
            event,
            data,
            id,
            retry,
            comment,
        })
}

fn serialize(events: &[GenEvent], eol: &str) -> Vec<u8> {
    let mut s = String::new();
    for e in events {
        if e.comment {
            s.push_str(": ping");
            s.push_str(eol);
        }
        if let Some(ev) = &e.event {
            s.push_str(&format!("event: {ev}{eol}"));
        }
        if let Some(id) = &e.id {
            s.push_str(&format!("id: {id}{eol}"));
        }
        if let Some(r) = e.retry {
            s.push_str(&format!("retry: {r}{eol}"));
        }
        for d in &e.data {
            s.push_str(&format!("data: {d}{eol}"));
        }
        s.push_str(eol);
    }
    s.into_bytes()
}

fn expect_of(e: &GenEvent) -> SseEvent {
    SseEvent {
        event: e.event.clone(),
        data: e.data.join("\n"),
        id: e.id.clone(),
        retry_ms: e.retry,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_multi_splits_give_same_events(cuts in prop::collection::vec(0usize..STREAM.len() + 1, 0..12)) {
        let reference = parse(&[STREAM], 4096);
        let mut cuts = cuts;
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut last = 0;
        for c in cuts {
            pieces.push(&STREAM[last..c]);
            last = c;
        }
        pieces.push(&STREAM[last..]);
        prop_assert_eq!(parse(&pieces, 4096), reference);
    }

    #[test]
    fn generated_events_round_trip(
        events in prop::collection::vec(gen_event(), 0..8),
        eol in prop::sample::select(vec!["\r\n", "\n", "\r"]),
        sizes in prop::collection::vec(1usize..30, 1..10),
    ) {
        let bytes = serialize(&events, eol);
        let mut pieces = Vec::new();
        let mut rest: &[u8] = &bytes;
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].min(rest.len());
            k += 1;
            let (p, r) = rest.split_at(n);
            pieces.push(p);
            rest = r;
        }
        let (out, stats) = parse(&pieces, 4096);
        let want: Vec<SseEvent> = events.iter().map(expect_of).collect();
        prop_assert_eq!(out, want);
        prop_assert_eq!(stats.sse_comments, events.iter().filter(|e| e.comment).count() as u64);
    }

    #[test]
    fn random_bytes_never_panic_and_stay_bounded(
        pieces in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
        gap_at in prop::option::of(0usize..20),
        cap in 1usize..128,
    ) {
        let mut p = SseParser::new(cap);
        let mut stats = WireStats::default();
        let mut out = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            if gap_at == Some(i) {
                p.on_gap(&mut stats);
            }
            p.feed(piece, &mut stats, &mut out);
            prop_assert!(p.buffered_bytes() <= cap, "{} > cap {}", p.buffered_bytes(), cap);
        }
        p.finish(&mut stats);
        prop_assert_eq!(stats.sse_events, out.len() as u64);
        for e in &out {
            prop_assert!(e.data.len() <= 3 * cap, "lossy decoding may grow bytes up to 3x");
        }
    }

    #[test]
    fn oversized_events_are_dropped_not_buffered(
        big in 100usize..2000,
        sizes in prop::collection::vec(1usize..64, 1..10),
    ) {
        let mut stream = b"data: ".to_vec();
        stream.extend(std::iter::repeat_n(b'x', big));
        stream.extend(b"\n\ndata: small\n\n");
        let mut pieces = Vec::new();
        let mut rest: &[u8] = &stream;
        let mut k = 0;
        while !rest.is_empty() {
            let n = sizes[k % sizes.len()].min(rest.len());
            k += 1;
            let (p, r) = rest.split_at(n);
            pieces.push(p);
            rest = r;
        }
        let (out, stats) = parse(&pieces, 64);
        prop_assert_eq!(out.len(), 1);
        prop_assert_eq!(out[0].data.as_str(), "small");
        prop_assert_eq!(stats.sse_events_dropped, 1);
    }
}

/// Fuzz regression: invalid UTF-8 in a field grows 3x when decoded; fields are
/// kept as raw bytes until dispatch so the buffer stays within the cap.
#[test]
fn invalid_utf8_fields_stay_within_cap() {
    let mut stream = b"id:a:".to_vec();
    stream.extend(std::iter::repeat_n(0x91u8, 150));
    stream.extend(b"\nevent:");
    stream.extend(std::iter::repeat_n(0xd5u8, 20));
    let mut p = SseParser::new(201);
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    p.feed(&stream, &mut stats, &mut out);
    assert!(p.buffered_bytes() <= 201, "{}", p.buffered_bytes());
    p.feed(b"\ndata: x\n\n", &mut stats, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id.as_deref().map(|s| s.chars().count()), Some(152));
    assert_eq!(out[0].data, "x");
}
