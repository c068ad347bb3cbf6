//! The flow table ([`FlowTable`]): connections by endpoint pair, their
//! opening and closing, eviction and idle timeout through the indexed LRU,
//! and the total cap on out-of-order bytes.

use super::flow::{Flow, FlowKey, client_guess, dir_of, process};
use super::half::{Half, Out};
use super::lru::Lru;
use super::{CloseReason, FlowOpened, FlowSink, LRU_GRANULARITY_NS, TcpConfig, TcpEvent};
use crate::link::TcpPacket;
use crate::stats::WireStats;
use crate::{FlowId, TimestampNs};
use std::collections::BTreeSet;
use std::hash::{BuildHasher, Hasher};

/// All tracked connections, each with the caller's state `T` (`()` for a
/// plain [`TcpSink`](super::TcpSink); see [`FlowSink`]).
#[derive(Debug)]
pub struct FlowTable<T = ()> {
    cfg: TcpConfig,
    /// Flow storage; `None` slots are in `free`. Boxed: a `Vec` of inline flows
    /// keeps up to twice the live flows' size in spare capacity.
    slots: Vec<Option<Box<Flow<T>>>>,
    free: Vec<usize>,
    /// Slot index of every flow, by the hash of its [`FlowKey`] (compared
    /// against the key stored in the flow): 4 bytes plus a control byte per
    /// entry instead of a copy of the 40-byte key.
    by_key: hashbrown::HashTable<u32>,
    /// Seed of the `by_key` hashes, random per table (from the std's
    /// randomly keyed `RandomState`, i.e. the OS's random source).
    hasher: foldhash::fast::FixedState,
    /// Flows by last activity, for eviction and idle timeout (see [`Lru`]).
    lru: Lru,
    /// `(buffered bytes, flow id, slot, half)` for every half with bytes buffered.
    by_buffer: BTreeSet<(usize, u64, usize, usize)>,
    buffered_total: usize,
    next_id: u64,
    /// Scratch for `Half::insert`.
    pieces: Vec<(u64, u64)>,
    /// Tests only: every segment takes the general path (the differential
    /// test of the pure-ACK fast path).
    #[cfg(test)]
    general_only: bool,
    /// Slot of the flow of the previous segment, tried before the hash
    /// table (segments come in runs per connection); its key is always
    /// compared, so a stale or freed slot is harmless.
    last: usize,
}

impl FlowTable {
    /// An empty table with limits `cfg`, for a plain [`TcpSink`](super::TcpSink).
    pub fn new(cfg: TcpConfig) -> Self {
        FlowTable::with_conn_state(cfg)
    }
}

impl<T> FlowTable<T> {
    /// An empty table with limits `cfg` that keeps a `T` per connection,
    /// created by [`FlowSink::on_open`] and handed to every later event.
    pub fn with_conn_state(cfg: TcpConfig) -> Self {
        FlowTable {
            cfg,
            slots: Vec::new(),
            free: Vec::new(),
            by_key: hashbrown::HashTable::new(),
            hasher: foldhash::fast::FixedState::with_seed(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            ),
            lru: Lru::default(),
            by_buffer: BTreeSet::new(),
            buffered_total: 0,
            next_id: 0,
            pieces: Vec::new(),
            last: usize::MAX,
            #[cfg(test)]
            general_only: false,
        }
    }

    /// Whether the fast paths are off (tests only; always `false` otherwise).
    #[cfg(test)]
    fn general_only(&self) -> bool {
        self.general_only
    }

    /// Whether the fast paths are off (tests only; always `false` otherwise).
    #[cfg(not(test))]
    #[inline(always)]
    fn general_only(&self) -> bool {
        false
    }

    /// Feeds one segment captured at `ts`.
    ///
    /// Emits, for this and possibly other connections (eviction, the total
    /// buffer cap), the events the segment causes. Never panics.
    #[inline(always)]
    pub fn ingest(
        &mut self,
        ts: TimestampNs,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        // The key is built at the call site (inlined), where the caller may
        // know the address family (the pipeline's IPv4 fast path does).
        let (key, src_first) = FlowKey::new(pkt.src, pkt.dst);
        self.ingest_keyed(ts, &key, src_first, pkt, stats, sink);
    }

    /// [`FlowTable::ingest`] with the segment's key and whether its source
    /// is the key's first endpoint. A pure ACK (no payload, SYN, FIN or
    /// RST) on the flow of the previous segment with nothing buffered is
    /// handled here, inline at the caller: it only refreshes the activity
    /// time, as [`FlowTable::ingest_general`] would (same tests, in the same
    /// order); every other segment goes there (one call, out of line).
    #[inline(always)]
    fn ingest_keyed(
        &mut self,
        ts: TimestampNs,
        key: &FlowKey,
        src_first: bool,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        let flags = pkt.flags;
        if pkt.payload.is_empty()
            && !(flags.syn || flags.fin || flags.rst)
            && !self.general_only()
            && let Some(flow) = self.slots.get_mut(self.last).and_then(Option::as_deref_mut)
            && flow.key == *key
            && !flow.halves.iter().any(|h| h.ooo.is_some())
        {
            flow.last_ts = flow.last_ts.max(ts);
            if flow.last_ts.saturating_sub(flow.lru_ts) >= LRU_GRANULARITY_NS {
                flow.lru_ts = flow.last_ts;
                let pos = flow.heap_pos as usize;
                self.lru.sift_down(&mut self.slots, pos);
            }
            self.enforce_total(ts, stats, sink);
            return;
        }
        self.ingest_general(ts, key, src_first, pkt, stats, sink);
    }

    /// [`FlowTable::ingest_keyed`] for any segment.
    // (The pure-ACK test reads in the order of the checks, not in clippy's
    // "simplified" form.)
    #[allow(clippy::nonminimal_bool)]
    fn ingest_general(
        &mut self,
        ts: TimestampNs,
        key: &FlowKey,
        src_first: bool,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        let flags = pkt.flags;
        let Some(slot) = self.flow_of_segment(ts, key, src_first, pkt, stats, sink) else {
            return;
        };
        self.last = slot;
        let general_only = self.general_only();
        // One look-up of the flow for the activity time, the segment and the
        // buffer accounting (most segments leave both halves without
        // out-of-order bytes: then there is nothing to account).
        let (close, resift, before) = match self.slots.get_mut(slot).and_then(Option::as_deref_mut)
        {
            Some(flow) => {
                flow.last_ts = flow.last_ts.max(ts);
                // The LRU key only grows: the flow can only move down the heap
                // (re-keyed after the segment; nothing here reads the heap).
                let resift = if flow.last_ts.saturating_sub(flow.lru_ts) >= LRU_GRANULARITY_NS {
                    flow.lru_ts = flow.last_ts;
                    Some(flow.heap_pos as usize)
                } else {
                    None
                };
                let had_ooo = flow.halves.iter().any(|h| h.ooo.is_some());
                // A pure ACK (no payload, SYN, FIN or RST) while nothing is
                // buffered changes nothing but the activity time: `process`
                // would start no stream, deliver nothing and skip `on_ack`
                // (which acts on buffered bytes only).
                if !had_ooo
                    && pkt.payload.is_empty()
                    && !(flags.syn || flags.fin || flags.rst)
                    && !general_only
                {
                    if let Some(pos) = resift {
                        self.lru.sift_down(&mut self.slots, pos);
                    }
                    self.enforce_total(ts, stats, sink);
                    return;
                }
                let before = if had_ooo {
                    [flow.halves[0].buffered(), flow.halves[1].buffered()]
                } else {
                    [0, 0]
                };
                let close = process(
                    flow,
                    ts,
                    pkt,
                    src_first,
                    &self.cfg,
                    &mut self.pieces,
                    stats,
                    sink,
                );
                let changed = (had_ooo || flow.halves.iter().any(|h| h.ooo.is_some()))
                    && [flow.halves[0].buffered(), flow.halves[1].buffered()] != before;
                (close, resift, changed.then_some(before))
            }
            None => (None, None, None),
        };
        if let Some(pos) = resift {
            self.lru.sift_down(&mut self.slots, pos);
        }
        if let Some(before) = before {
            self.rebuffer(slot, before);
        }
        if let Some(reason) = close {
            self.close(slot, ts, reason, stats, sink);
        }
        self.enforce_total(ts, stats, sink);
    }

    /// The slot of the segment's flow: the one with `key`, unless a new SYN
    /// (not a retransmission of the opening one) replaces it; else a new flow
    /// when the segment may open one (payload or SYN, no RST); else `None`
    /// (counted in `tcp_segments_without_flow`).
    fn flow_of_segment(
        &mut self,
        ts: TimestampNs,
        key: &FlowKey,
        src_first: bool,
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) -> Option<usize> {
        let flags = pkt.flags;
        let mut slot = self.find(key);
        if let Some(s) = slot
            && flags.syn
            && !flags.ack
            && !flags.rst
            && let Some(f) = self.flow(s)
        {
            let h = &f.halves[f.dir_index(src_first)];
            let retransmitted_syn = h.syn_seq() == Some(pkt.seq) && !f.any_fin();
            if !retransmitted_syn {
                let reason = if f.any_fin() {
                    CloseReason::Fin
                } else {
                    CloseReason::Rst
                };
                self.close(s, ts, reason, stats, sink);
                slot = None;
            }
        }
        match slot {
            Some(s) => Some(s),
            None => {
                if flags.rst || (pkt.payload.is_empty() && !flags.syn) {
                    stats.tcp_segments_without_flow =
                        stats.tcp_segments_without_flow.saturating_add(1);
                    return None;
                }
                Some(self.open(ts, (*key, src_first), pkt, stats, sink))
            }
        }
    }

    /// Closes connections idle since before `now - idle_timeout_ns` (no
    /// segment for strictly longer than `idle_timeout_ns`), delivering what
    /// they buffered (gaps declared), with [`CloseReason::IdleTimeout`] at
    /// `now`. Cost: O(log n) per connection examined; cheap to call once per
    /// capture second.
    pub fn expire(&mut self, now: TimestampNs, stats: &mut WireStats, sink: &mut impl FlowSink<T>) {
        while let Some(top) = self.lru.first() {
            let (slot, (kts, _)) = (top as usize, Lru::key(&self.slots, top));
            if now.saturating_sub(kts) <= self.cfg.idle_timeout_ns {
                break;
            }
            if self.fix_stale(slot) {
                continue;
            }
            self.close(slot, now, CloseReason::IdleTimeout, stats, sink);
        }
    }

    /// End of input: delivers what is buffered (declaring gaps) and closes
    /// every connection with [`CloseReason::EndOfInput`] at `ts`, in
    /// [`FlowId`] order. The table is empty afterwards and can be reused.
    pub fn finish(&mut self, ts: TimestampNs, stats: &mut WireStats, sink: &mut impl FlowSink<T>) {
        let mut order: Vec<(u64, usize)> = self
            .lru
            .iter()
            .map(|s| (Lru::key(&self.slots, s).1, s as usize))
            .collect();
        order.sort_unstable();
        for (_, slot) in order {
            self.close(slot, ts, CloseReason::EndOfInput, stats, sink);
        }
    }

    /// Connections currently tracked.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// `true` when no connection is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Out-of-order bytes currently buffered over all connections.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_total
    }

    /// Slot of the flow with key `key`.
    fn find(&self, key: &FlowKey) -> Option<usize> {
        if self.flow(self.last).is_some_and(|f| f.key == *key) {
            return Some(self.last);
        }
        let slots = &self.slots;
        self.by_key
            .find(key.hash(&self.hasher), |&s| {
                slots
                    .get(s as usize)
                    .and_then(Option::as_deref)
                    .is_some_and(|f| f.key == *key)
            })
            .map(|&s| s as usize)
    }

    fn flow(&self, slot: usize) -> Option<&Flow<T>> {
        self.slots.get(slot).and_then(Option::as_deref)
    }

    fn buffered_of(&self, slot: usize) -> [usize; 2] {
        self.flow(slot)
            .map_or([0, 0], |f| [f.halves[0].buffered(), f.halves[1].buffered()])
    }

    /// When the flow in `slot` (the top of the LRU heap) has its LRU key
    /// behind its activity, re-keys it and returns `true`.
    fn fix_stale(&mut self, slot: usize) -> bool {
        match self.slots.get_mut(slot).and_then(Option::as_mut) {
            Some(f) => {
                if f.last_ts == f.lru_ts {
                    return false;
                }
                f.lru_ts = f.last_ts;
                let pos = f.heap_pos as usize;
                self.lru.sift_down(&mut self.slots, pos);
                true
            }
            None => {
                // Cannot happen (index out of sync); drop the entry to make progress.
                if let Some(pos) = self.lru.position(slot) {
                    self.lru.remove(&mut self.slots, pos);
                }
                true
            }
        }
    }

    /// Updates `by_buffer` and `buffered_total` after a flow's halves changed.
    fn rebuffer(&mut self, slot: usize, before: [usize; 2]) {
        let Some(f) = self.slots.get(slot).and_then(Option::as_ref) else {
            return;
        };
        for (i, &old) in before.iter().enumerate() {
            let now = f.halves[i].buffered();
            if now == old {
                continue;
            }
            if old > 0 {
                self.by_buffer.remove(&(old, f.id.0, slot, i));
            }
            if now > 0 {
                self.by_buffer.insert((now, f.id.0, slot, i));
            }
            self.buffered_total = self.buffered_total.saturating_sub(old).saturating_add(now);
        }
    }

    /// While the table buffers more than the total cap, skips the first hole
    /// of the largest buffer. (The check inline, the work out of line: it is
    /// called for every segment and almost never has anything to do.)
    #[inline(always)]
    fn enforce_total(
        &mut self,
        ts: TimestampNs,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        if self.buffered_total > self.cfg.max_buffered_bytes_total {
            self.enforce_total_slow(ts, stats, sink);
        }
    }

    /// [`FlowTable::enforce_total`] once the table is over the cap.
    #[inline(never)]
    fn enforce_total_slow(
        &mut self,
        ts: TimestampNs,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        while self.buffered_total > self.cfg.max_buffered_bytes_total {
            let Some(&(_, _, slot, i)) = self.by_buffer.last() else {
                break;
            };
            let before = self.buffered_of(slot);
            let progressed = match self.slots.get_mut(slot).and_then(Option::as_mut) {
                Some(f) => {
                    let Flow {
                        id, halves, conn, ..
                    } = &mut **f;
                    let mut out = Out {
                        flow: *id,
                        dir: dir_of(i),
                        ts,
                        stats: &mut *stats,
                        sink: &mut *sink,
                        conn,
                    };
                    halves
                        .get_mut(i)
                        .is_some_and(|h| h.skip_hole(&mut out, true))
                }
                None => false,
            };
            self.rebuffer(slot, before);
            if !progressed {
                break;
            }
        }
    }

    /// Creates the flow for `pkt` (evicting when full) and emits `Opened`.
    fn open(
        &mut self,
        ts: TimestampNs,
        (key, src_first): (FlowKey, bool),
        pkt: &TcpPacket<'_>,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) -> usize {
        // Slots are indexed by u32 in `by_key`.
        let max = self.cfg.max_flows.clamp(1, u32::MAX as usize);
        while self.by_key.len() >= max {
            let Some(top) = self.lru.first() else {
                break;
            };
            let slot = top as usize;
            if self.fix_stale(slot) {
                continue;
            }
            self.close(slot, ts, CloseReason::Evicted, stats, sink);
        }
        let (client_is_src, client_isn, saw_syn) = client_guess(pkt);
        let (client, server) = if client_is_src {
            (pkt.src, pkt.dst)
        } else {
            (pkt.dst, pkt.src)
        };
        let id = FlowId(self.next_id);
        self.next_id = self.next_id.wrapping_add(1);
        stats.flows_opened = stats.flows_opened.saturating_add(1);
        let conn = sink.on_open(FlowOpened {
            flow: id,
            client,
            server,
            client_isn,
            saw_syn,
            ts,
        });
        let flow = Flow {
            id,
            key,
            // An endpoint talking to itself: every segment is `src_first`
            // and goes to the client half (see `dir_index`).
            client_first: client_is_src == src_first || pkt.src == pkt.dst,
            last_ts: ts,
            lru_ts: ts,
            heap_pos: 0,
            halves: [Half::default(), Half::default()],
            conn,
        };
        self.store(flow)
    }

    /// Puts `flow` in a free slot (or a new one) and indexes it by key and
    /// in the LRU; returns the slot.
    fn store(&mut self, flow: Flow<T>) -> usize {
        let key = flow.key;
        let slot = match self.free.pop() {
            Some(s) if s < self.slots.len() => {
                self.slots[s] = Some(Box::new(flow));
                s
            }
            _ => {
                self.slots.push(Some(Box::new(flow)));
                self.slots.len() - 1
            }
        };
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.by_key.insert_unique(
            key.hash(hasher),
            // `slots.len() <= max <= u32::MAX` (see `open`).
            slot as u32,
            |&s| {
                slots
                    .get(s as usize)
                    .and_then(Option::as_deref)
                    .map_or(0, |f| f.key.hash(hasher))
            },
        );
        // `slot < slots.len() <= max <= u32::MAX` (see `open`).
        self.lru.push(&mut self.slots, slot as u32);
        slot
    }

    /// Flushes both halves, emits `Closed`, counts it and frees the slot.
    fn close(
        &mut self,
        slot: usize,
        ts: TimestampNs,
        reason: CloseReason,
        stats: &mut WireStats,
        sink: &mut impl FlowSink<T>,
    ) {
        let before = self.buffered_of(slot);
        let Some(f) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return;
        };
        let Flow {
            id, halves, conn, ..
        } = &mut **f;
        for (i, h) in halves.iter_mut().enumerate() {
            let mut out = Out {
                flow: *id,
                dir: dir_of(i),
                ts,
                stats: &mut *stats,
                sink: &mut *sink,
                conn: &mut *conn,
            };
            h.flush(&mut out);
        }
        // (Flushing only empties buffers: nothing buffered before, nothing to account.)
        if before != [0, 0] {
            self.rebuffer(slot, before);
        }
        let Some(mut f) = self.slots.get_mut(slot).and_then(Option::take) else {
            return;
        };
        if let Ok(e) = self
            .by_key
            .find_entry(f.key.hash(&self.hasher), |&s| s as usize == slot)
        {
            e.remove();
        }
        if self.lru.get(f.heap_pos as usize) == Some(slot as u32) {
            self.lru.remove(&mut self.slots, f.heap_pos as usize);
        }
        self.free.push(slot);
        let counter = match reason {
            CloseReason::Fin | CloseReason::Rst => &mut stats.flows_closed,
            CloseReason::IdleTimeout => &mut stats.flows_idle_timeout,
            CloseReason::Evicted => &mut stats.flows_evicted,
            CloseReason::EndOfInput => &mut stats.flows_end_of_input,
        };
        *counter = counter.saturating_add(1);
        sink.on_flow_event(
            &mut f.conn,
            TcpEvent::Closed {
                flow: f.id,
                ts,
                reason,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    //! Internal invariants of the table under arbitrary input.

    use super::super::TcpSink;
    use super::*;
    use crate::Dir;
    use crate::link::TcpFlags;
    use proptest::prelude::*;
    use std::net::SocketAddr;

    struct Null;
    impl TcpSink for Null {
        fn on_tcp_event(&mut self, _: TcpEvent<'_>) {}
    }

    impl<T> FlowTable<T> {
        /// Every index agrees with the flows; every buffer is well formed.
        fn check(&self) -> Result<(), String> {
            let mut total = 0;
            let mut n = 0;
            for (slot, f) in self.slots.iter().enumerate() {
                let Some(f) = f else {
                    if !self.free.contains(&slot) {
                        return Err(format!("empty slot {slot} not free"));
                    }
                    continue;
                };
                n += 1;
                if self.find(&f.key) != Some(slot) {
                    return Err(format!("by_key wrong for {slot}"));
                }
                let pos = f.heap_pos as usize;
                if self.lru.get(pos) != Some(slot as u32) || f.lru_ts > f.last_ts {
                    return Err(format!("lru wrong for {slot}"));
                }
                if pos > 0
                    && self
                        .lru
                        .get((pos - 1) / 2)
                        .map(|p| Lru::key(&self.slots, p))
                        > Some((f.lru_ts, f.id.0))
                {
                    return Err(format!("lru heap order broken at {slot}"));
                }
                for (i, h) in f.halves.iter().enumerate() {
                    let mut sum = 0;
                    let mut prev_end: Option<u64> = None;
                    if h.ooo.as_ref().is_some_and(|o| o.buf.is_empty()) {
                        return Err("empty out-of-order buffer kept".into());
                    }
                    for (&k, v) in h.ooo.iter().flat_map(|o| o.buf.iter()) {
                        if v.is_empty() || k <= h.next_off {
                            return Err(format!("bad run at {k} (next {})", h.next_off));
                        }
                        if prev_end.is_some_and(|e| k <= e) {
                            return Err(format!("overlapping/adjacent runs at {k}"));
                        }
                        prev_end = Some(k + v.len() as u64);
                        sum += v.len();
                    }
                    if sum != h.buffered() {
                        return Err(format!("buffered {} != {sum}", h.buffered()));
                    }
                    if (h.buffered() > 0)
                        != self.by_buffer.contains(&(h.buffered(), f.id.0, slot, i))
                    {
                        return Err("by_buffer wrong".into());
                    }
                    total += sum;
                }
            }
            if n != self.by_key.len() || n != self.lru.len() || total != self.buffered_total {
                return Err("counts disagree".into());
            }
            if self.by_buffer.iter().map(|e| e.0).sum::<usize>() != total {
                return Err("by_buffer total".into());
            }
            Ok(())
        }
    }

    /// Records the direction and bytes of every `Data` event.
    struct Dirs(Vec<(Dir, Vec<u8>)>);
    impl TcpSink for Dirs {
        fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
            if let TcpEvent::Data { dir, data, .. } = ev {
                self.0.push((dir, data.to_vec()));
            }
        }
    }

    /// An endpoint talking to itself: every segment is one stream, in the
    /// client direction, whichever segment opened the connection (the SYN+ACK
    /// opener makes the client guess "not the source").
    #[test]
    fn a_connection_to_itself_is_one_client_stream() {
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap_or_else(|_| unreachable!());
        let seg = |seq: u32, syn: bool, ack: bool, payload: &'static [u8]| TcpPacket {
            src: a,
            dst: a,
            seq,
            ack: 1,
            flags: TcpFlags {
                syn,
                ack,
                fin: false,
                rst: false,
            },
            payload,
        };
        for opener in [
            seg(99, true, false, b""),
            seg(99, true, true, b""),
            seg(100, false, true, b"x"),
        ] {
            let mut t = FlowTable::new(TcpConfig::default());
            let mut stats = WireStats::default();
            let mut sink = Dirs(Vec::new());
            let data_start = if opener.payload.is_empty() { 100 } else { 101 };
            t.ingest(1, &opener, &mut stats, &mut sink);
            t.ingest(
                2,
                &seg(data_start, false, true, b"ab"),
                &mut stats,
                &mut sink,
            );
            t.ingest(
                3,
                &seg(data_start + 2, false, true, b"cd"),
                &mut stats,
                &mut sink,
            );
            assert!(sink.0.iter().all(|(d, _)| *d == Dir::ClientToServer));
            let bytes: Vec<u8> = sink.0.iter().flat_map(|(_, b)| b.clone()).collect();
            let want: &[u8] = if opener.payload.is_empty() {
                b"abcd"
            } else {
                b"xabcd"
            };
            assert_eq!(bytes, want);
            assert_eq!(t.len(), 1);
            assert!(t.check().is_ok());
        }
    }

    /// The per-connection memory budget (BENCHMARKS.md, peak RSS at 100k
    /// flows): a flow with its HTTP state fits mimalloc's 384-byte class.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn flow_with_http_state_fits_384_bytes() {
        assert!(std::mem::size_of::<Flow<crate::conn::HttpConnection>>() <= 384);
        assert!(std::mem::size_of::<Half>() <= 40);
    }

    /// Records the order of closes.
    struct Closes(Vec<(u64, CloseReason)>);
    impl TcpSink for Closes {
        fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
            if let TcpEvent::Closed { flow, reason, .. } = ev {
                self.0.push((flow.0, reason));
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// The eviction and idle-timeout contract: the flow closed first is
        /// always the one with the smallest `(last activity, flow id)`
        /// (equal timestamps in flow-id order), whatever the LRU index's lazy
        /// re-keying does; time may go backwards (activity is a maximum).
        #[test]
        fn evictions_and_expiry_follow_last_activity_then_flow_id(
            ops in proptest::collection::vec((0u16..12, 0u8..8, any::<bool>()), 1..200),
            max_flows in 1usize..6,
        ) {
            let cfg = TcpConfig {
                max_flows,
                idle_timeout_ns: 3 * LRU_GRANULARITY_NS,
                ..TcpConfig::default()
            };
            let mut t = FlowTable::new(cfg);
            let mut stats = WireStats::default();
            let mut sink = Closes(Vec::new());
            // Model: port → (flow id, last activity).
            let mut live: std::collections::BTreeMap<u16, (u64, u64)> = Default::default();
            let mut expected = Vec::new();
            let mut next_id = 0u64;
            let mut ts = 10 * LRU_GRANULARITY_NS;
            let server: SocketAddr = "10.0.0.1:80".parse().unwrap_or_else(|_| unreachable!());
            for (port, step, expire) in ops {
                // Steps: equal times, small and granularity-sized moves, backwards.
                ts = match step {
                    0 | 1 => ts,
                    2 => ts + 1,
                    3 => ts + LRU_GRANULARITY_NS / 2,
                    4 => ts + LRU_GRANULARITY_NS,
                    5 => ts + 2 * LRU_GRANULARITY_NS + 7,
                    6 => ts.saturating_sub(LRU_GRANULARITY_NS),
                    _ => ts.saturating_sub(3),
                };
                if expire {
                    t.expire(ts, &mut stats, &mut sink);
                    loop {
                        let oldest = live.iter().map(|(&p, &(id, last))| (last, id, p)).min();
                        match oldest {
                            Some((last, id, p)) if ts.saturating_sub(last) > cfg.idle_timeout_ns => {
                                live.remove(&p);
                                expected.push((id, CloseReason::IdleTimeout));
                            }
                            _ => break,
                        }
                    }
                    continue;
                }
                let src = SocketAddr::from(([10, 0, 0, 2], 40000 + port));
                let pkt = TcpPacket {
                    src,
                    dst: server,
                    seq: 1,
                    ack: 1,
                    flags: TcpFlags { syn: false, ack: true, fin: false, rst: false },
                    payload: b"x",
                };
                t.ingest(ts, &pkt, &mut stats, &mut sink);
                match live.get_mut(&port) {
                    Some((_, last)) => *last = (*last).max(ts),
                    None => {
                        if live.len() >= max_flows {
                            let oldest = live.iter().map(|(&p, &(id, last))| (last, id, p)).min();
                            if let Some((_, id, p)) = oldest {
                                live.remove(&p);
                                expected.push((id, CloseReason::Evicted));
                            }
                        }
                        live.insert(port, (next_id, ts));
                        next_id += 1;
                    }
                }
                prop_assert!(t.check().is_ok(), "{:?}", t.check());
            }
            prop_assert_eq!(&sink.0, &expected);
        }
    }

    /// The endpoints of the arbitrary-segment proptests: a server and two clients.
    fn three_endpoints() -> [SocketAddr; 3] {
        [
            "10.0.0.1:80".parse().unwrap_or_else(|_| unreachable!()),
            "10.0.0.2:40000".parse().unwrap_or_else(|_| unreachable!()),
            "10.0.0.3:40000".parse().unwrap_or_else(|_| unreachable!()),
        ]
    }

    /// Tiny caps and a 200 ns idle timeout, so eviction, caps and expiry all happen.
    fn tiny_config(max_flows: usize, per_dir: usize, total: usize) -> TcpConfig {
        TcpConfig {
            max_flows,
            max_buffered_bytes_per_dir: per_dir,
            max_buffered_bytes_total: total,
            idle_timeout_ns: 200,
        }
    }

    /// Segment `(src, dst, seq, ack, flag byte)` between `eps`, sequence numbers
    /// around wrap-around; SYN when `fl & syn_mask == 0`, ACK on bit 4, FIN on
    /// bits 5–6 both set, RST on bits 7 and 3 both set.
    fn arbitrary_segment<'p>(
        eps: &[SocketAddr; 3],
        (a, b, seq, ack, fl): (usize, usize, u32, u32, u8),
        syn_mask: u8,
        payload: &'p [u8],
    ) -> TcpPacket<'p> {
        TcpPacket {
            src: eps[a],
            dst: eps[b],
            seq: seq.wrapping_sub(40),
            ack: ack.wrapping_sub(40),
            flags: TcpFlags {
                syn: fl & syn_mask == 0,
                ack: fl & 0x10 != 0,
                fin: fl & 0x60 == 0x60,
                rst: fl & 0x80 != 0 && fl & 0x08 != 0,
            },
            payload,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        #[test]
        fn invariants_hold_under_arbitrary_segments(
            ops in proptest::collection::vec(
                (0usize..3, 0usize..3, 0u32..96, 0u32..96, any::<u8>(), 0usize..24, 0u64..300),
                0..150,
            ),
            max_flows in 1usize..4,
            per_dir in 0usize..80,
            total in 0usize..120,
        ) {
            let eps = three_endpoints();
            let cfg = tiny_config(max_flows, per_dir, total);
            let mut t = FlowTable::new(cfg);
            let mut stats = WireStats::default();
            let payload = [7u8; 24];
            let mut ts = 0;
            for (k, (a, b, seq, ack, fl, len, dt)) in ops.iter().enumerate() {
                ts += dt;
                let pkt = arbitrary_segment(&eps, (*a, *b, *seq, *ack, *fl), 0x07, &payload[..*len]);
                t.ingest(ts, &pkt, &mut stats, &mut Null);
                prop_assert!(t.check().is_ok(), "{:?}", t.check());
                prop_assert!(t.buffered_bytes() <= total);
                if k % 7 == 0 {
                    t.expire(ts, &mut stats, &mut Null);
                    prop_assert!(t.check().is_ok(), "{:?}", t.check());
                }
            }
            t.finish(ts, &mut stats, &mut Null);
            prop_assert!(t.check().is_ok(), "{:?}", t.check());
            prop_assert!(t.is_empty());
        }
    }

    /// Records every event, rendered.
    struct Log(Vec<String>);
    impl TcpSink for Log {
        fn on_tcp_event(&mut self, ev: TcpEvent<'_>) {
            self.0.push(format!("{ev:?}"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]
        /// The pure-ACK fast path (a segment without payload, SYN, FIN or RST
        /// while nothing is buffered only moves the activity time) gives the
        /// same events, counters and table state as the general path, under
        /// arbitrary segments, pure ACKs in abundance, with expiry and caps.
        #[test]
        fn pure_ack_fast_path_matches_the_general_path(
            ops in proptest::collection::vec(
                (0usize..3, 0usize..3, 0u32..96, 0u32..96, any::<u8>(), prop_oneof![Just(0usize), 0usize..24], 0u64..300),
                0..150,
            ),
            max_flows in 1usize..4,
            per_dir in 0usize..80,
            total in 0usize..120,
        ) {
            let eps = three_endpoints();
            let cfg = tiny_config(max_flows, per_dir, total);
            let mut fast = FlowTable::new(cfg);
            let mut slow = FlowTable::new(cfg);
            slow.general_only = true;
            let (mut fs, mut ss) = (WireStats::default(), WireStats::default());
            let (mut fl_log, mut sl_log) = (Log(Vec::new()), Log(Vec::new()));
            let payload = [7u8; 24];
            let mut ts = 0;
            for (k, (a, b, seq, ack, fl, len, dt)) in ops.iter().enumerate() {
                ts += dt;
                // Mostly plain ACKs: SYN on 1 in 16 flag bytes.
                let pkt = arbitrary_segment(&eps, (*a, *b, *seq, *ack, *fl), 0x0f, &payload[..*len]);
                fast.ingest(ts, &pkt, &mut fs, &mut fl_log);
                slow.ingest(ts, &pkt, &mut ss, &mut sl_log);
                if k % 7 == 0 {
                    fast.expire(ts, &mut fs, &mut fl_log);
                    slow.expire(ts, &mut ss, &mut sl_log);
                }
                prop_assert_eq!(&fl_log.0, &sl_log.0);
                prop_assert_eq!(format!("{fs:?}"), format!("{ss:?}"));
                prop_assert_eq!(format!("{:?}", fast.slots), format!("{:?}", slow.slots));
                prop_assert_eq!(&fast.lru, &slow.lru);
            }
            fast.finish(ts, &mut fs, &mut fl_log);
            slow.finish(ts, &mut ss, &mut sl_log);
            prop_assert_eq!(&fl_log.0, &sl_log.0);
            prop_assert_eq!(format!("{fs:?}"), format!("{ss:?}"));
        }
    }
}
