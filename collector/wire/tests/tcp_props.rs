//! Property tests of the TCP reassembler: random streams cut into random
//! segments, reordered, duplicated, partly lost; and arbitrary segment soup.

mod common_tcp;

use common_tcp::{Ev, Rec, addr, seg};
use mcptap_wire::link::{TcpFlags, TcpPacket};
use mcptap_wire::stats::WireStats;
use mcptap_wire::tcp::{CloseReason, FlowTable, TcpConfig};
use mcptap_wire::{Dir, FlowId};
use proptest::prelude::*;
use std::collections::HashMap;
use std::net::SocketAddr;

/// Small deterministic PRNG (xorshift64*), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A data segment of direction `dir` (0 = client→server) covering `off..off+len`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    dir: usize,
    off: usize,
    len: usize,
}

#[derive(Debug, Clone)]
struct Scenario {
    streams: [Vec<u8>; 2],
    isn: [u32; 2],
    seed: u64,
    max_seg: usize,
    window: usize,
    dups: usize,
    loss_percent: u64,
}

fn isn_strategy() -> impl Strategy<Value = u32> {
    prop_oneof![any::<u32>(), (u32::MAX - 3000)..=u32::MAX, 0u32..3000]
}

fn scenario(loss: bool) -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(any::<u8>(), 0..1500),
        proptest::collection::vec(any::<u8>(), 0..1500),
        isn_strategy(),
        isn_strategy(),
        any::<u64>(),
        1usize..200,
        1usize..12,
        0usize..20,
        if loss { 1u64..40 } else { 0u64..1 },
    )
        .prop_map(
            |(c, s, ci, si, seed, max_seg, window, dups, loss_percent)| Scenario {
                streams: [c, s],
                isn: [ci, si],
                seed,
                max_seg,
                window,
                dups,
                loss_percent,
            },
        )
}

fn client() -> SocketAddr {
    addr("192.0.2.1:51000")
}
fn server() -> SocketAddr {
    addr("192.0.2.2:8000")
}

/// The data segments in capture order: cut, some lost, duplicated with
/// random overlapping ranges, shuffled within a window.
fn pieces(sc: &Scenario) -> Vec<Piece> {
    let mut rng = Rng::new(sc.seed);
    let mut per_dir: [Vec<Piece>; 2] = [Vec::new(), Vec::new()];
    for (dir, list) in per_dir.iter_mut().enumerate() {
        let n = sc.streams[dir].len();
        let mut off = 0;
        while off < n {
            let len = (1 + rng.below(sc.max_seg)).min(n - off);
            if !rng.chance(sc.loss_percent) {
                list.push(Piece { dir, off, len });
            }
            off += len;
        }
    }
    // Interleave the two directions randomly, each in order.
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < per_dir[0].len() || j < per_dir[1].len() {
        let take_c = j >= per_dir[1].len() || (i < per_dir[0].len() && rng.chance(50));
        if take_c {
            out.push(per_dir[0][i]);
            i += 1;
        } else {
            out.push(per_dir[1][j]);
            j += 1;
        }
    }
    // Retransmissions: exact copies of sent segments, or ranges overlapping
    // sent bytes (never re-covering lost bytes, which would not be "lost").
    for _ in 0..sc.dups {
        if out.is_empty() {
            break;
        }
        let orig = out[rng.below(out.len())];
        let dup = if rng.chance(50) {
            orig
        } else {
            let a = orig.off + rng.below(orig.len);
            let b = a + 1 + rng.below(orig.off + orig.len - a);
            Piece {
                dir: orig.dir,
                off: a,
                len: b - a,
            }
        };
        let at = rng.below(out.len() + 1);
        out.insert(at, dup);
    }
    // Local reordering.
    let n = out.len();
    for k in 0..n {
        let j = (k + rng.below(sc.window)).min(n - 1);
        out.swap(k, j);
    }
    out
}

/// How data segments acknowledge the other direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Acks {
    /// No ACK flag.
    None,
    /// ACK of a random position of the other stream (may run ahead of data
    /// the capture has not shown yet).
    Random,
    /// ACK of a random position that never passes a byte the capture will
    /// still show later (only lost bytes can be acknowledged unseen).
    Truthful,
}

/// Runs the scenario: handshake, data, FIN both ways, finish.
fn run(sc: &Scenario, cfg: TcpConfig, acks: Acks) -> (Rec, WireStats) {
    let mut table = FlowTable::new(cfg);
    let mut stats = WireStats::default();
    let mut rec = Rec::default();
    let ends = [client(), server()];
    let start = [sc.isn[0].wrapping_add(1), sc.isn[1].wrapping_add(1)];
    let mut rng = Rng::new(sc.seed ^ 0x9E37_79B9_7F4A_7C15);
    let mut ts = 1;
    table.ingest(
        ts,
        &seg(client(), server(), "S", sc.isn[0], 0, b""),
        &mut stats,
        &mut rec,
    );
    ts += 1;
    table.ingest(
        ts,
        &seg(server(), client(), "SA", sc.isn[1], start[0], b""),
        &mut stats,
        &mut rec,
    );
    let list = pieces(sc);
    // first_seen[d][pos]: index of the first segment showing that byte.
    let mut first_seen = [
        vec![usize::MAX; sc.streams[0].len()],
        vec![usize::MAX; sc.streams[1].len()],
    ];
    for (k, p) in list.iter().enumerate() {
        for x in &mut first_seen[p.dir][p.off..p.off + p.len] {
            *x = (*x).min(k);
        }
    }
    for (k, p) in list.iter().copied().enumerate() {
        ts += 1;
        let other = 1 - p.dir;
        let limit = match acks {
            Acks::Truthful => first_seen[other]
                .iter()
                .position(|&f| f >= k && f != usize::MAX)
                .unwrap_or(sc.streams[other].len()),
            _ => sc.streams[other].len(),
        };
        let acked = if rng.chance(50) {
            limit
        } else {
            rng.below(limit + 1)
        };
        let pkt = TcpPacket {
            src: ends[p.dir],
            dst: ends[other],
            seq: start[p.dir].wrapping_add(p.off as u32),
            ack: start[other].wrapping_add(acked as u32),
            flags: TcpFlags {
                ack: acks != Acks::None,
                ..TcpFlags::default()
            },
            payload: &sc.streams[p.dir][p.off..p.off + p.len],
        };
        table.ingest(ts, &pkt, &mut stats, &mut rec);
        assert!(table.buffered_bytes() <= cfg.max_buffered_bytes_total);
    }
    for d in 0..2 {
        ts += 1;
        let fin_seq = start[d].wrapping_add(sc.streams[d].len() as u32);
        table.ingest(
            ts,
            &seg(ends[d], ends[1 - d], "F", fin_seq, 0, b""),
            &mut stats,
            &mut rec,
        );
    }
    table.finish(ts + 1, &mut stats, &mut rec);
    assert!(table.is_empty());
    assert_eq!(table.buffered_bytes(), 0);
    (rec, stats)
}

/// Which positions of each stream some sent segment covers.
fn coverage(sc: &Scenario) -> [Vec<bool>; 2] {
    let mut cov = [
        vec![false; sc.streams[0].len()],
        vec![false; sc.streams[1].len()],
    ];
    for p in pieces(sc) {
        for x in &mut cov[p.dir][p.off..p.off + p.len] {
            *x = true;
        }
    }
    cov
}

const DIRS: [Dir; 2] = [Dir::ClientToServer, Dir::ServerToClient];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Reordered, duplicated, overlapping segments: every byte exactly once,
    /// in order, no gaps; one connection closed by FIN.
    #[test]
    fn reordered_duplicated_stream_is_reassembled_exactly(sc in scenario(false)) {
        let (rec, stats) = run(&sc, TcpConfig::default(), Acks::None);
        for (d, dir) in DIRS.iter().enumerate() {
            prop_assert_eq!(&rec.bytes(FlowId(0), *dir), &sc.streams[d]);
            prop_assert!(rec.gaps(FlowId(0), *dir).is_empty());
        }
        prop_assert_eq!(rec.closes(), vec![(FlowId(0), CloseReason::Fin)]);
        prop_assert_eq!(stats.tcp_gaps, 0);
        prop_assert_eq!(
            stats.tcp_bytes_delivered,
            (sc.streams[0].len() + sc.streams[1].len()) as u64
        );
    }

    /// Lost segments: delivered bytes are the original with exactly the lost
    /// ranges missing, and the gap lengths sum to the missing bytes. With
    /// truthful ACKs, holes are skipped as soon as the peer acknowledges
    /// them, with the same result.
    #[test]
    fn lost_segments_become_exact_gaps(sc in scenario(true), truthful in any::<bool>()) {
        let acks = if truthful { Acks::Truthful } else { Acks::None };
        let (rec, stats) = run(&sc, TcpConfig::default(), acks);
        let cov = coverage(&sc);
        let mut missing_total = 0u64;
        for (d, dir) in DIRS.iter().enumerate() {
            let expected: Vec<Option<u8>> = sc.streams[d]
                .iter()
                .zip(&cov[d])
                .map(|(b, c)| c.then_some(*b))
                .collect();
            let missing = cov[d].iter().filter(|c| !**c).count() as u64;
            missing_total += missing;
            prop_assert_eq!(rec.positions(FlowId(0), *dir), expected);
            prop_assert_eq!(rec.gaps(FlowId(0), *dir).iter().sum::<u64>(), missing);
        }
        prop_assert_eq!(stats.tcp_gap_bytes, missing_total);
    }

    /// With ACKs (which may run ahead of reordered data) and tiny buffer caps,
    /// holes get skipped early; what is delivered is still the original at
    /// its position and Data + Gap cover the stream exactly up to the FIN.
    #[test]
    fn early_gaps_keep_positions_consistent(
        sc in scenario(true),
        per_dir in 0usize..64,
        total in 0usize..96,
    ) {
        let cfg = TcpConfig {
            max_buffered_bytes_per_dir: per_dir,
            max_buffered_bytes_total: total,
            ..TcpConfig::default()
        };
        let (rec, _) = run(&sc, cfg, Acks::Random);
        for (d, dir) in DIRS.iter().enumerate() {
            let got = rec.positions(FlowId(0), *dir);
            prop_assert_eq!(got.len(), sc.streams[d].len());
            for (i, b) in got.iter().enumerate() {
                if let Some(b) = b {
                    prop_assert_eq!(*b, sc.streams[d][i], "position {}", i);
                }
            }
        }
    }

    /// Arbitrary segments never panic, respect the caps, and every flow's
    /// events are well formed: Opened first, one Closed last.
    #[test]
    fn arbitrary_segments_respect_caps(
        ops in proptest::collection::vec(
            (0usize..4, 0usize..4, any::<u32>(), any::<u32>(), any::<u8>(),
             proptest::collection::vec(any::<u8>(), 0..40), 0u64..200, any::<bool>()),
            0..200,
        ),
        max_flows in 0usize..4,
        per_dir in 0usize..64,
        total in 0usize..128,
        idle in 0u64..500,
        seq_spread in prop_oneof![Just(64u32), Just(u32::MAX)],
    ) {
        let cfg = TcpConfig {
            max_flows,
            max_buffered_bytes_per_dir: per_dir,
            max_buffered_bytes_total: total,
            idle_timeout_ns: idle,
        };
        let eps = [
            addr("10.1.0.1:80"),
            addr("10.1.0.2:40000"),
            addr("10.1.0.2:40001"),
            addr("[fd00::1]:8080"),
        ];
        let mut table = FlowTable::new(cfg);
        let mut stats = WireStats::default();
        let mut rec = Rec::default();
        let mut ts = 0u64;
        for (a, b, seq, ack, fl, payload, dt, expire) in &ops {
            ts += dt;
            let pkt = TcpPacket {
                src: eps[*a],
                dst: eps[*b],
                // Either near a per-pair base (lots of overlap) or anywhere.
                seq: if seq_spread == u32::MAX { *seq } else {
                    (*a as u32 * 1000).wrapping_add(seq % seq_spread).wrapping_sub(32)
                },
                ack: if seq_spread == u32::MAX { *ack } else {
                    (*b as u32 * 1000).wrapping_add(ack % seq_spread).wrapping_sub(32)
                },
                flags: TcpFlags {
                    syn: fl & 1 != 0,
                    ack: fl & 2 != 0,
                    fin: fl & 4 != 0,
                    rst: fl & 8 != 0 && fl & 16 != 0,
                },
                payload,
            };
            table.ingest(ts, &pkt, &mut stats, &mut rec);
            prop_assert!(table.buffered_bytes() <= total);
            prop_assert!(table.len() <= max_flows.max(1));
            if *expire {
                table.expire(ts, &mut stats, &mut rec);
                prop_assert!(table.buffered_bytes() <= total);
            }
        }
        table.finish(ts, &mut stats, &mut rec);
        prop_assert!(table.is_empty());
        prop_assert_eq!(table.buffered_bytes(), 0);

        // Per-flow well-formedness.
        let mut state: HashMap<FlowId, bool> = HashMap::new(); // flow -> closed?
        let mut last_opened: Option<FlowId> = None;
        for e in &rec.0 {
            match e {
                Ev::Opened { flow, .. } => {
                    prop_assert!(!state.contains_key(flow));
                    prop_assert!(last_opened.is_none_or(|l| l < *flow));
                    last_opened = Some(*flow);
                    state.insert(*flow, false);
                }
                Ev::Data { flow, data, .. } => {
                    prop_assert_eq!(state.get(flow), Some(&false));
                    prop_assert!(!data.is_empty());
                }
                Ev::Gap { flow, len, .. } => {
                    prop_assert_eq!(state.get(flow), Some(&false));
                    prop_assert!(*len > 0);
                }
                Ev::Closed { flow, .. } => {
                    prop_assert_eq!(state.get(flow), Some(&false));
                    state.insert(*flow, true);
                }
            }
        }
        prop_assert!(state.values().all(|c| *c));
        let closed = stats.flows_closed + stats.flows_idle_timeout + stats.flows_evicted
            + stats.flows_end_of_input;
        prop_assert_eq!(stats.flows_opened, closed);
        prop_assert_eq!(stats.flows_opened, state.len() as u64);
    }
}
