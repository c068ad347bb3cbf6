//! One direction of a connection ([`Half`]): the delivery point in sequence
//! space, the out-of-order buffer ([`Ooo`]), holes declared as gaps, and
//! where its events go ([`Out`]).

use super::{FlowSink, MAX_SEGMENTS_PER_DIR, TcpEvent};
use crate::stats::WireStats;
use crate::{Dir, FlowId, TimestampNs};
use std::collections::BTreeMap;

/// The out-of-order bytes of one direction (allocated only while some are
/// buffered: most directions never see a segment out of order).
#[derive(Debug, Default)]
pub(super) struct Ooo {
    /// Out-of-order runs by stream offset: non-overlapping, non-adjacent,
    /// all starting after the half's `next_off`; never empty while allocated.
    pub(super) buf: BTreeMap<u64, Vec<u8>>,
    /// Bytes in `buf`.
    pub(super) buffered: usize,
}

/// One direction of a connection. 40 bytes: the options are stored as a
/// value plus a flag, and the out-of-order buffer is boxed on first use.
#[derive(Debug, Default)]
pub(super) struct Half {
    /// Stream offset of `next_seq` (bytes delivered or skipped so far).
    pub(super) next_off: u64,
    /// Stream offset of the FIN, valid when `has_fin`.
    pub(super) fin_off_v: u64,
    /// Sequence number of the next byte to deliver.
    pub(super) next_seq: u32,
    /// ISN when the SYN (or the peer's SYN+ACK acknowledging it) was seen,
    /// valid when `has_syn`.
    pub(super) syn_seq_v: u32,
    /// `next_seq`/`next_off` are valid.
    pub(super) init: bool,
    pub(super) has_syn: bool,
    pub(super) has_fin: bool,
    /// Buffered out-of-order runs; `None` when there are none.
    pub(super) ooo: Option<Box<Ooo>>,
}

/// Where a half's events go.
pub(super) struct Out<'x, S, T> {
    pub(super) flow: FlowId,
    pub(super) dir: Dir,
    pub(super) ts: TimestampNs,
    pub(super) stats: &'x mut WireStats,
    pub(super) sink: &'x mut S,
    /// The flow's caller state.
    pub(super) conn: &'x mut T,
}

impl<S: FlowSink<T>, T> Out<'_, S, T> {
    pub(super) fn data(&mut self, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.stats.tcp_bytes_delivered = self
            .stats
            .tcp_bytes_delivered
            .saturating_add(data.len() as u64);
        self.sink.on_flow_event(
            self.conn,
            TcpEvent::Data {
                flow: self.flow,
                dir: self.dir,
                ts: self.ts,
                data,
            },
        );
    }

    pub(super) fn gap(&mut self, len: u64, by_cap: bool) {
        if len == 0 {
            return;
        }
        self.stats.tcp_gaps = self.stats.tcp_gaps.saturating_add(1);
        self.stats.tcp_gap_bytes = self.stats.tcp_gap_bytes.saturating_add(len);
        if by_cap {
            self.stats.tcp_buffer_overflow_bytes =
                self.stats.tcp_buffer_overflow_bytes.saturating_add(len);
        }
        self.sink.on_flow_event(
            self.conn,
            TcpEvent::Gap {
                flow: self.flow,
                dir: self.dir,
                ts: self.ts,
                len,
            },
        );
    }
}

impl Half {
    /// ISN when the SYN (or the peer's SYN+ACK acknowledging it) was seen.
    #[inline]
    pub(super) fn syn_seq(&self) -> Option<u32> {
        self.has_syn.then_some(self.syn_seq_v)
    }

    #[inline]
    pub(super) fn set_syn_seq(&mut self, seq: u32) {
        self.has_syn = true;
        self.syn_seq_v = seq;
    }

    /// Stream offset of the FIN, once seen.
    #[inline]
    pub(super) fn fin_off(&self) -> Option<u64> {
        self.has_fin.then_some(self.fin_off_v)
    }

    /// Out-of-order bytes buffered.
    #[inline]
    pub(super) fn buffered(&self) -> usize {
        self.ooo.as_ref().map_or(0, |o| o.buffered)
    }

    /// Stream offset of the first buffered run.
    #[inline]
    pub(super) fn first_buffered(&self) -> Option<u64> {
        self.ooo
            .as_ref()
            .and_then(|o| o.buf.first_key_value().map(|(k, _)| *k))
    }

    /// Frees the out-of-order buffer once it is empty.
    #[inline]
    pub(super) fn release_empty(&mut self) {
        if self.ooo.as_ref().is_some_and(|o| o.buf.is_empty()) {
            self.ooo = None;
        }
    }

    /// Starts the stream at `seq` (offset 0).
    #[inline]
    pub(super) fn start(&mut self, seq: u32) {
        self.init = true;
        self.next_seq = seq;
        self.next_off = 0;
    }

    /// Signed distance of `seq` from `next_seq`, modulo 2³² (RFC 9293 §3.4).
    #[inline]
    pub(super) fn rel(&self, seq: u32) -> i64 {
        i64::from(seq.wrapping_sub(self.next_seq) as i32)
    }

    /// Stream offset of `seq`, `None` when it lies before the stream start.
    #[inline]
    pub(super) fn offset_of(&self, seq: u32) -> Option<u64> {
        let rel = self.rel(seq);
        if rel >= 0 {
            Some(self.next_off.saturating_add(rel.unsigned_abs()))
        } else {
            self.next_off.checked_sub(rel.unsigned_abs())
        }
    }

    /// Moves the delivery point `n` bytes forward.
    #[inline]
    pub(super) fn advance(&mut self, n: u64) {
        self.next_off = self.next_off.saturating_add(n);
        // Truncation is the modulo-2³² arithmetic sequence numbers use.
        self.next_seq = self.next_seq.wrapping_add(n as u32);
    }

    /// Delivers the buffered run starting at `next_off`, if any. (Runs never
    /// start before `next_off`; if one did, its stale prefix is dropped, so
    /// every call removes such entries and callers always make progress.)
    pub(super) fn drain<S: FlowSink<T>, T>(&mut self, out: &mut Out<'_, S, T>) {
        while let Some(entry) = self.ooo.as_deref_mut().and_then(|o| o.buf.first_entry()) {
            let key = *entry.key();
            if key > self.next_off {
                break;
            }
            let v = entry.remove();
            if let Some(o) = self.ooo.as_deref_mut() {
                o.buffered = o.buffered.saturating_sub(v.len());
            }
            let skip = usize::try_from(self.next_off - key).unwrap_or(usize::MAX);
            if let Some(fresh) = v.get(skip..) {
                out.data(fresh);
                self.advance(fresh.len() as u64);
            }
        }
        self.release_empty();
    }

    /// Declares the first hole a gap and delivers the run after it.
    /// Returns `false` when nothing is buffered.
    pub(super) fn skip_hole<S: FlowSink<T>, T>(
        &mut self,
        out: &mut Out<'_, S, T>,
        by_cap: bool,
    ) -> bool {
        let Some(first) = self.first_buffered() else {
            return false;
        };
        let len = first.saturating_sub(self.next_off);
        out.gap(len, by_cap);
        self.advance(len);
        self.drain(out);
        true
    }

    /// Payload `payload` whose first byte has sequence number `seq`.
    pub(super) fn data<S: FlowSink<T>, T>(
        &mut self,
        seq: u32,
        payload: &[u8],
        cap: usize,
        pieces: &mut Vec<(u64, u64)>,
        out: &mut Out<'_, S, T>,
    ) {
        if payload.is_empty() {
            return;
        }
        if !self.init {
            self.start(seq);
        }
        let rel = self.rel(seq);
        let (start, p) = if rel < 0 {
            let behind = rel.unsigned_abs();
            match usize::try_from(behind).ok().and_then(|b| payload.get(b..)) {
                Some(rest) if !rest.is_empty() => (self.next_off, rest),
                _ => {
                    out.stats.tcp_retransmitted_segments =
                        out.stats.tcp_retransmitted_segments.saturating_add(1);
                    return;
                }
            }
        } else {
            (self.next_off.saturating_add(rel.unsigned_abs()), payload)
        };
        let end = start.saturating_add(p.len() as u64);
        if start == self.next_off {
            let first = self.first_buffered();
            if first.is_none_or(|k| end < k) {
                // Fast path: straight from the packet, nothing to merge.
                out.data(p);
                self.advance(p.len() as u64);
                return;
            }
            self.ooo.get_or_insert_default().insert(start, p, pieces);
            self.drain(out);
        } else {
            if self.ooo.get_or_insert_default().insert(start, p, pieces) == 0 {
                self.release_empty();
                out.stats.tcp_retransmitted_segments =
                    out.stats.tcp_retransmitted_segments.saturating_add(1);
                return;
            }
            out.stats.tcp_out_of_order_segments =
                out.stats.tcp_out_of_order_segments.saturating_add(1);
        }
        while self.buffered() > cap
            || self.ooo.as_ref().map_or(0, |o| o.buf.len()) > MAX_SEGMENTS_PER_DIR
        {
            if !self.skip_hole(out, true) {
                break;
            }
        }
    }

    /// The peer acknowledged everything before `ack`: holes before it will not
    /// be filled by the capture.
    pub(super) fn on_ack<S: FlowSink<T>, T>(&mut self, ack: u32, out: &mut Out<'_, S, T>) {
        if !self.init || self.ooo.is_none() {
            return;
        }
        let rel = self.rel(ack);
        if rel <= 0 {
            return;
        }
        let ack_off = self.next_off.saturating_add(rel.unsigned_abs());
        while self.next_off < ack_off {
            let Some(first) = self.first_buffered() else {
                break;
            };
            if first <= ack_off {
                self.skip_hole(out, false);
            } else {
                let len = ack_off - self.next_off;
                out.gap(len, false);
                self.advance(len);
                break;
            }
        }
    }

    /// A FIN at sequence number `seq`.
    #[inline]
    pub(super) fn on_fin(&mut self, seq: u32) {
        if !self.init {
            self.start(seq);
        }
        if !self.has_fin {
            self.fin_off_v = self.offset_of(seq).unwrap_or(self.next_off);
            self.has_fin = true;
        }
    }

    /// Connection is going away: declare every hole, deliver every buffered
    /// byte, and declare the bytes missing before a FIN.
    pub(super) fn flush<S: FlowSink<T>, T>(&mut self, out: &mut Out<'_, S, T>) {
        while self.skip_hole(out, false) {}
        if let Some(fin) = self.fin_off()
            && fin > self.next_off
        {
            let len = fin - self.next_off;
            out.gap(len, false);
            self.advance(len);
        }
    }
}

impl Ooo {
    /// Buffers the positions of `[start, start + p.len())` not buffered yet
    /// (first received wins). Returns the bytes added.
    pub(super) fn insert(&mut self, start: u64, p: &[u8], pieces: &mut Vec<(u64, u64)>) -> usize {
        let end = start.saturating_add(p.len() as u64);
        pieces.clear();
        let mut cur = start;
        if let Some((&k, v)) = self.buf.range(..start).next_back() {
            cur = cur.max(k.saturating_add(v.len() as u64).min(end));
        }
        for (&k, v) in self.buf.range(start..end) {
            if k > cur {
                pieces.push((cur, k));
            }
            cur = cur.max(k.saturating_add(v.len() as u64).min(end));
        }
        if cur < end {
            pieces.push((cur, end));
        }
        let mut added = 0;
        for &(a, b) in pieces.iter() {
            let (Ok(lo), Ok(hi)) = (usize::try_from(a - start), usize::try_from(b - start)) else {
                continue;
            };
            let Some(bytes) = p.get(lo..hi) else {
                continue;
            };
            self.insert_piece(a, bytes);
            added += bytes.len();
        }
        added
    }

    /// Adds a run at `a` that overlaps nothing buffered, merging it with the
    /// runs that end at `a` or start right after it.
    pub(super) fn insert_piece(&mut self, a: u64, bytes: &[u8]) {
        let b = a.saturating_add(bytes.len() as u64);
        let next = self.buf.remove(&b);
        let prev = self
            .buf
            .range_mut(..a)
            .next_back()
            .filter(|(k, v)| k.saturating_add(v.len() as u64) == a);
        match prev {
            Some((_, v)) => {
                v.extend_from_slice(bytes);
                if let Some(n) = next {
                    v.extend_from_slice(&n);
                }
            }
            None => {
                let mut v = Vec::with_capacity(bytes.len() + next.as_ref().map_or(0, Vec::len));
                v.extend_from_slice(bytes);
                if let Some(n) = next {
                    v.extend_from_slice(&n);
                }
                self.buf.insert(a, v);
            }
        }
        self.buffered = self.buffered.saturating_add(bytes.len());
    }
}
