//! Fuzz target: the SSE parser fed in pieces.
//!
//! Input: one byte choosing the event cap (1..=256 bytes), then pieces whose
//! lengths come from a length byte in front of each; a length byte of 0xff is
//! a gap instead. Checks: no panic, buffered bytes stay under the cap,
//! every event is counted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_wire::sse::SseParser;
use mcptap_wire::stats::WireStats;

fuzz_target!(|data: &[u8]| {
    let Some((&cap_byte, mut rest)) = data.split_first() else {
        return;
    };
    let cap = usize::from(cap_byte) + 1;
    let mut parser = SseParser::new(cap);
    let mut stats = WireStats::default();
    let mut out = Vec::new();
    while let Some((&len, r)) = rest.split_first() {
        if len == 0xff {
            parser.on_gap(&mut stats);
            rest = r;
            continue;
        }
        let n = usize::from(len).min(r.len());
        let (piece, r) = r.split_at(n);
        rest = r;
        parser.feed(piece, &mut stats, &mut out);
        assert!(parser.buffered_bytes() <= cap);
    }
    parser.finish(&mut stats);
    assert_eq!(stats.sse_events, out.len() as u64);
});
