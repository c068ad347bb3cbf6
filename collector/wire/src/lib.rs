//! Pure decoding of captured bytes, from link-layer frames to HTTP/1.1 messages
//! and Server-Sent Events.
//!
//! The chain, one module per arrow:
//!
//! ```text
//! frame bytes ──link::decode_packet──▶ TcpPacket
//!             ──tcp::FlowTable::ingest──▶ TcpEvent (ordered bytes per direction, gaps, close)
//!             ──conn::HttpConnection::on_*──▶ HttpEvent (requests, response heads, SSE events, ends)
//! ```
//!
//! Invariants (see ARCHITECTURE.md): no I/O, no libpcap, no clock; nothing here
//! panics on any input; "need more bytes" is a normal outcome, never an error;
//! every byte that is thrown away is counted in [`stats::WireStats`].
//!
//! Timestamps are nanoseconds since the Unix epoch ([`TimestampNs`]), taken from
//! the capture, never from the wall clock.

pub mod conn;
pub mod forwarded;
pub mod http;
pub mod link;
pub mod pcapfile;
pub mod sse;
pub mod stats;
pub mod tcp;

/// Differential checks for the fuzz targets, compiled only under `cargo fuzz`
/// (which builds every crate with `--cfg fuzzing`); see `fuzz/fuzz_targets/http_head.rs`.
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing {
    /// Panics when the fast head walk (`http.rs`, `parse_head_fast`) accepts
    /// `bytes` as a request or response head and httparse reads it differently.
    pub fn head_parsers_agree(bytes: &[u8]) {
        crate::http::fuzz_agree(bytes);
    }

    /// Reads `data[1..]` as a capture file twice, whole and in windows of
    /// `data[0] * 7 + 1` bytes (`pcapfile.rs`, the way a file source refills its
    /// buffer), and panics if the two readings differ or an answer makes no
    /// progress.
    pub fn pcap_file_reads_agree(data: &[u8]) {
        let Some((&w, file)) = data.split_first() else {
            return;
        };
        let whole = crate::pcapfile::read_windowed(file, file.len().max(1));
        let windowed = crate::pcapfile::read_windowed(file, usize::from(w) * 7 + 1);
        assert_eq!(whole, windowed);
    }
}

use std::net::SocketAddr;

/// Nanoseconds since the Unix epoch (1970-01-01T00:00:00Z), from the capture.
pub type TimestampNs = u64;

/// Identifies one TCP connection within one [`tcp::FlowTable`]: a counter that
/// never repeats for the life of the table (a reused 4-tuple gets a new id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u64);

/// Direction of bytes within a connection, relative to the side the flow table
/// believes is the client (the SYN sender, else a port heuristic; see
/// [`tcp::FlowTable`]). The HTTP layer corrects the guess when the bytes show
/// otherwise (see [`conn::HttpConnection`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    /// From the (believed) client to the (believed) server.
    ClientToServer,
    /// From the (believed) server to the (believed) client.
    ServerToClient,
}

impl Dir {
    /// The other direction.
    pub fn reverse(self) -> Dir {
        match self {
            Dir::ClientToServer => Dir::ServerToClient,
            Dir::ServerToClient => Dir::ClientToServer,
        }
    }
}

/// The two endpoints of a connection and what identifies it across captures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConnMeta {
    /// Flow id within this run.
    pub flow: FlowId,
    /// The endpoint that sends HTTP requests.
    pub client: SocketAddr,
    /// The endpoint that answers them.
    pub server: SocketAddr,
    /// The client's initial sequence number when the SYN was captured, else the
    /// first client sequence number seen. Stable across two captures of the same
    /// traffic that both saw the handshake; used to derive span ids.
    pub client_isn: u32,
}

/// One HTTP header as it appeared on the wire: the name keeps the sender's case,
/// the value is raw bytes (HTTP allows non-UTF-8 octets). An owned header, for
/// building [`Headers`] by hand (tests, injection); parsed heads store their
/// headers packed in [`Headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name as sent (compare case-insensitively).
    pub name: String,
    /// Raw value, without surrounding whitespace.
    pub value: Vec<u8>,
}

/// One header borrowed from [`Headers`]: same meaning as [`Header`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRef<'a> {
    /// Header name as sent (compare case-insensitively).
    pub name: &'a str,
    /// Raw value, without surrounding whitespace.
    pub value: &'a [u8],
}

/// Bit of the leading count word marking wide (u32) offsets.
const WIDE: u32 = 1 << 31;

/// The headers of one head in wire order, packed in ONE exactly sized block
/// (BENCHMARKS.md, peak RSS at 100k flows):
///
/// ```text
/// count: u32 LE (bit 31 set: wide offsets)
/// count × (name_end, value_end): u16 LE each (u32 LE each when wide)
/// name₀ name₁ …     (UTF-8; name ends relative to the start of the names)
/// value₀ value₁ …   (value ends relative to the start of the values)
/// ```
///
/// Offsets are narrow (4 bytes per header) when the names and values total
/// at most 65 535 bytes, else wide (8 bytes). Lookups read the fixed-size
/// offset table and compare only names of the right length. No headers:
/// an empty block, no allocation. Iterate with [`Headers::iter`]; look up with
/// [`header`]/[`header_str`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers {
    buf: Box<[u8]>,
}

/// Reads a little-endian u16 or u32 (`wide`) at `pos`; 0 when out of range.
#[inline]
fn read_off(buf: &[u8], pos: usize, wide: bool) -> usize {
    if wide {
        buf.get(pos..pos + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| u32::from_le_bytes(b) as usize)
    } else {
        buf.get(pos..pos + 2)
            .and_then(|b| b.try_into().ok())
            .map_or(0, |b| usize::from(u16::from_le_bytes(b)))
    }
}

/// `dst.copy_from_slice(src)` for slices of equal length (anything else is
/// left alone), without a `memcpy` call for the short slices header names
/// and values mostly are: two overlapping fixed-size copies.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n {
        return;
    }
    match n {
        0 => {}
        1 => dst.copy_from_slice(src),
        2..4 => {
            copy_fixed::<2>(dst, src, 0);
            copy_fixed::<2>(dst, src, n - 2);
        }
        4..8 => {
            copy_fixed::<4>(dst, src, 0);
            copy_fixed::<4>(dst, src, n - 4);
        }
        8..16 => {
            copy_fixed::<8>(dst, src, 0);
            copy_fixed::<8>(dst, src, n - 8);
        }
        16..=32 => {
            copy_fixed::<16>(dst, src, 0);
            copy_fixed::<16>(dst, src, n - 16);
        }
        _ => dst.copy_from_slice(src),
    }
}

/// Copies the `N` bytes of `src` at `at` to `dst` at `at` (nothing when
/// either is too short).
#[inline(always)]
fn copy_fixed<const N: usize>(dst: &mut [u8], src: &[u8], at: usize) {
    let from: Option<&[u8; N]> = src.get(at..at + N).and_then(|s| s.try_into().ok());
    let to: Option<&mut [u8; N]> = dst.get_mut(at..at + N).and_then(|d| d.try_into().ok());
    if let (Some(from), Some(to)) = (from, to) {
        *to = *from;
    }
}

/// Copies the pieces `src[from..from + len]` of `pieces`, in order, one
/// after the other to the start of `dst`, and returns the rest of `dst`;
/// `None` (and `dst` partly written) when a piece is outside `src` or
/// `dst` is too short. A piece
/// of at most 32 bytes is copied as one or two fixed 16-byte blocks when
/// `src` and `dst` have that much room: a block may run past the piece
/// into `dst` bytes that later pieces overwrite (so the bytes after the
/// last piece are unspecified unless `dst` ends there, where the copy is
/// exact). No `memcpy` call for short pieces.
#[inline(always)]
fn copy_pieces<'d>(
    dst: &'d mut [u8],
    src: &[u8],
    pieces: impl Iterator<Item = (usize, usize)>,
) -> Option<&'d mut [u8]> {
    let mut tail = dst;
    for (from, len) in pieces {
        // Two 16-byte blocks for 17..=32 bytes, not one 32-byte block:
        // LLVM would merge blocks of two sizes into one `memcpy` call.
        let done = len <= 32
            && copy_block16(tail, src, from)
            && (len <= 16 || copy_block16(tail.get_mut(16..).unwrap_or_default(), src, from + 16));
        if !done {
            tail.get_mut(..len)?
                .copy_from_slice(src.get(from..from + len)?);
        }
        tail = std::mem::take(&mut tail).get_mut(len..)?;
    }
    Some(tail)
}

/// Copies the 16 bytes of `src` at `from` to the start of `dst`; `false`
/// (nothing copied) when either is too short.
#[inline(always)]
fn copy_block16(dst: &mut [u8], src: &[u8], from: usize) -> bool {
    let s = src.get(from..).and_then(|s| s.first_chunk::<16>());
    match (dst.first_chunk_mut::<16>(), s) {
        (Some(d), Some(s)) => {
            *d = *s;
            true
        }
        _ => false,
    }
}

/// Fills the offset table (entries of two `W`-byte offsets), the names and
/// the values of a packed block from `items`; returns the ends of the
/// names and values written (`None` when they do not fit). Offsets are
/// below 2³¹ (`W == 4`) or at most `u16::MAX` (`W == 2`): the caller sized
/// the block.
#[inline(always)]
fn fill<'a, const W: usize>(
    table: &mut [u8],
    names: &mut [u8],
    values: &mut [u8],
    items: impl Iterator<Item = (&'a [u8], &'a [u8])>,
) -> Option<(usize, usize)> {
    let (mut name_end, mut value_end) = (0usize, 0usize);
    for ((name, value), entry) in items.zip(table.chunks_exact_mut(2 * W)) {
        let (n0, v0) = (name_end, value_end);
        name_end += name.len();
        value_end += value.len();
        copy_short(names.get_mut(n0..name_end)?, name);
        copy_short(values.get_mut(v0..value_end)?, value);
        let (e_name, e_value) = entry.split_at_mut(W);
        // Truncation to `W` bytes: see above.
        copy_fixed::<W>(e_name, &(name_end as u32).to_le_bytes(), 0);
        copy_fixed::<W>(e_value, &(value_end as u32).to_le_bytes(), 0);
    }
    Some((name_end, value_end))
}

/// Iterator over the packed headers as `(name, value)` slices.
#[derive(Clone)]
pub(crate) struct RawIter<'a> {
    /// Offset table.
    table: &'a [u8],
    /// All names, concatenated (UTF-8).
    names: &'a [u8],
    /// All values, concatenated.
    values: &'a [u8],
    wide: bool,
    /// Next table entry, in bytes.
    pos: usize,
    /// End of the previous name in `names`.
    prev_name: usize,
    /// End of the previous value in `values`.
    prev_value: usize,
}

impl<'a> RawIter<'a> {
    /// Bytes per offset.
    #[inline]
    fn width(&self) -> usize {
        if self.wide { 4 } else { 2 }
    }

    /// End of the next name without advancing; `None` at the end.
    #[inline]
    fn peek_name_end(&self) -> Option<usize> {
        (self.pos < self.table.len()).then(|| read_off(self.table, self.pos, self.wide))
    }

    /// Advances over the next header, returning its value (name end `name_end`).
    #[inline]
    fn take_value(&mut self, name_end: usize) -> &'a [u8] {
        let value_end = read_off(self.table, self.pos + self.width(), self.wide);
        self.pos += 2 * self.width();
        self.step(name_end, value_end).1
    }

    /// The header ending at `name_end` / `value_end` (offsets into `names` /
    /// `values`), which become the previous ends.
    #[inline]
    fn step(&mut self, name_end: usize, value_end: usize) -> (std::ops::Range<usize>, &'a [u8]) {
        let name = self.prev_name..name_end;
        let value = self
            .values
            .get(self.prev_value..value_end)
            .unwrap_or_default();
        self.prev_name = name_end;
        self.prev_value = value_end;
        (name, value)
    }
}

impl<'a> Iterator for RawIter<'a> {
    /// The name's range in `names`, and the value.
    type Item = (std::ops::Range<usize>, &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(std::ops::Range<usize>, &'a [u8])> {
        if !self.wide {
            // Narrow offsets (nearly every head): one 4-byte entry.
            let entry = self.table.get(self.pos..self.pos + 4)?;
            let Ok(&[n0, n1, v0, v1]) = <&[u8; 4]>::try_from(entry) else {
                return None;
            };
            self.pos += 4;
            let name_end = usize::from(u16::from_le_bytes([n0, n1]));
            let value_end = usize::from(u16::from_le_bytes([v0, v1]));
            return Some(self.step(name_end, value_end));
        }
        let name_end = self.peek_name_end()?;
        let name = self.prev_name..name_end;
        Some((name, self.take_value(name_end)))
    }
}

/// Iterator over the packed headers as `(name, value)` byte slices (what
/// [`Headers::iter_bytes`] returns): one offset-table entry per step,
/// without the name ranges of [`RawIter`].
#[derive(Clone)]
pub(crate) struct BytePairs<'a> {
    /// Offset-table entries (4 bytes each, 8 when wide).
    entries: std::slice::ChunksExact<'a, u8>,
    wide: bool,
    /// All names, concatenated.
    names: &'a [u8],
    /// All values, concatenated.
    values: &'a [u8],
    /// End of the previous name in `names`.
    prev_name: usize,
    /// End of the previous value in `values`.
    prev_value: usize,
}

impl<'a> Iterator for BytePairs<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let e = self.entries.next()?;
        let (name_end, value_end) = if self.wide {
            let w = e.first_chunk::<8>()?;
            let [n0, n1, n2, n3, v0, v1, v2, v3] = *w;
            (
                u32::from_le_bytes([n0, n1, n2, n3]) as usize,
                u32::from_le_bytes([v0, v1, v2, v3]) as usize,
            )
        } else {
            let &[n0, n1, v0, v1] = e.first_chunk::<4>()?;
            (
                usize::from(u16::from_le_bytes([n0, n1])),
                usize::from(u16::from_le_bytes([v0, v1])),
            )
        };
        let name = self.names.get(self.prev_name..name_end).unwrap_or_default();
        let value = self
            .values
            .get(self.prev_value..value_end)
            .unwrap_or_default();
        self.prev_name = name_end;
        self.prev_value = value_end;
        Some((name, value))
    }
}

impl Headers {
    /// No headers; allocates nothing.
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Empty. The block is sized exactly when headers are added, so the
    /// capacities (headers, bytes of names, bytes of values) are only a
    /// hint and nothing is allocated yet.
    pub fn with_capacity(count: usize, name_bytes: usize, value_bytes: usize) -> Headers {
        let _ = (count, name_bytes, value_bytes);
        Headers::new()
    }

    /// Packs `count` headers whose names total `names_len` bytes and whose
    /// values total `values_len` bytes (all three must match what `items`
    /// yields; extra items are dropped, and a mismatch gives empty headers)
    /// into one exactly sized block, in one walk of `items`. A block of
    /// 2 GiB or more is never built (heads are capped by `max_head_bytes`):
    /// the result is then empty. Items are `(name, value)` bytes; names
    /// must be UTF-8 (`&str`s, or `tchar` tokens, which are ASCII).
    pub(crate) fn pack<'a>(
        count: usize,
        names_len: usize,
        values_len: usize,
        items: impl Iterator<Item = (&'a [u8], &'a [u8])>,
    ) -> Headers {
        if count == 0 {
            return Headers::new();
        }
        let Some(data_len) = names_len.checked_add(values_len) else {
            return Headers::new();
        };
        let wide = data_len > usize::from(u16::MAX);
        let w = if wide { 4 } else { 2 };
        let table_len = count.checked_mul(2 * w);
        let total = table_len
            .and_then(|t| t.checked_add(4))
            .and_then(|t| t.checked_add(data_len));
        let (Some(table_len), Some(total), Ok(count32)) = (table_len, total, u32::try_from(count))
        else {
            return Headers::new();
        };
        if count32 >= WIDE || total >= WIDE as usize {
            return Headers::new();
        }
        // Allocated, then zeroed with `memset`: `vec![0; n]` takes
        // mimalloc's generic zeroed-allocation path, ~150 instructions more
        // per head (callgrind).
        #[allow(clippy::slow_vector_initialization)]
        let mut buf = Vec::with_capacity(total);
        buf.resize(total, 0u8);
        let Some((word, rest)) = buf.split_at_mut_checked(4) else {
            return Headers::new();
        };
        word.copy_from_slice(&(count32 | if wide { WIDE } else { 0 }).to_le_bytes());
        let Some((table, rest)) = rest.split_at_mut_checked(table_len) else {
            return Headers::new();
        };
        let Some((names, values)) = rest.split_at_mut_checked(names_len) else {
            return Headers::new();
        };
        // One loop per offset width (no width test per header).
        let ends = if wide {
            fill::<4>(table, names, values, items)
        } else {
            fill::<2>(table, names, values, items)
        };
        let Some((name_end, value_end)) = ends else {
            return Headers::new();
        };
        if name_end != names_len || value_end != values_len {
            return Headers::new();
        }
        Headers {
            buf: buf.into_boxed_slice(),
        }
    }

    /// The block [`Headers::pack`] builds from the headers at `spans` in
    /// `src`, each `[name_start, name_len, value_start, value_len]` (byte
    /// offsets and lengths in `src`; names UTF-8), whose names total
    /// `names_len` and values `values_len` bytes. Short pieces are copied
    /// as fixed-size blocks (see [`copy_pieces`]): no `memcpy` call per
    /// piece. A span outside `src` or totals that disagree give empty
    /// headers, as in [`Headers::pack`].
    pub(crate) fn pack_spans(
        src: &[u8],
        spans: &[[u16; 4]],
        names_len: usize,
        values_len: usize,
    ) -> Headers {
        let count = spans.len();
        let piece = |s: &[u16; 4], k: usize| {
            let (at, len) = (usize::from(s[k]), usize::from(s[k + 1]));
            src.get(at..at + len).unwrap_or_default()
        };
        if count == 0
            || names_len.saturating_add(values_len) > usize::from(u16::MAX)
            || count >= 1 << 16
        {
            // Wide offsets (or nothing): the general packer.
            let items = spans.iter().map(|s| (piece(s, 0), piece(s, 2)));
            return Headers::pack(count, names_len, values_len, items);
        }
        let names_at = 4 + 4 * count;
        let total = names_at + names_len + values_len;
        // Allocated, then zeroed with `memset` (see `pack`).
        #[allow(clippy::slow_vector_initialization)]
        let mut buf = Vec::with_capacity(total);
        buf.resize(total, 0u8);
        let Some((word, table)) = buf.split_at_mut_checked(4) else {
            return Headers::new();
        };
        word.copy_from_slice(&(count as u32).to_le_bytes());
        let (mut name_end, mut value_end) = (0u16, 0u16);
        for (s, entry) in spans.iter().zip(table.chunks_exact_mut(4)) {
            // The totals fit in u16 (checked above); a sum of spans that wraps
            // is caught when the copy runs out of room (empty headers).
            name_end = name_end.wrapping_add(s[1]);
            value_end = value_end.wrapping_add(s[3]);
            let [n0, n1] = name_end.to_le_bytes();
            let [v0, v1] = value_end.to_le_bytes();
            copy_fixed::<4>(entry, &[n0, n1, v0, v1], 0);
        }
        if usize::from(name_end) != names_len || usize::from(value_end) != values_len {
            return Headers::new();
        }
        // Names, then values (no chained iterator: one tight loop each).
        let pieces = |k: usize| {
            spans
                .iter()
                .map(move |s| (usize::from(s[k]), usize::from(s[k + 1])))
        };
        let copied = copy_pieces(buf.get_mut(names_at..).unwrap_or_default(), src, pieces(0))
            .and_then(|rest| copy_pieces(rest, src, pieces(2)));
        if copied.is_none() {
            return Headers::new();
        }
        Headers {
            buf: buf.into_boxed_slice(),
        }
    }

    /// Appends one header (copies the whole block: for building by hand;
    /// parsed heads are packed at once).
    pub fn push(&mut self, name: &str, value: &[u8]) {
        let (names_len, values_len) = self
            .raw()
            .fold((name.len(), value.len()), |(n, v), (r, val)| {
                (n.saturating_add(r.len()), v.saturating_add(val.len()))
            });
        let old = std::mem::take(self);
        let items = old
            .byte_pairs()
            .chain(std::iter::once((name.as_bytes(), value)));
        *self = Headers::pack(old.len() + 1, names_len, values_len, items);
    }

    /// The count word: number of headers and the wide flag.
    #[inline]
    fn count_word(&self) -> u32 {
        self.buf
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        (self.count_word() & !WIDE) as usize
    }

    /// `true` when there are no headers.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The headers as `(name, value)` slices, in wire order.
    #[inline]
    pub(crate) fn raw(&self) -> RawIter<'_> {
        let word = self.count_word();
        let wide = word & WIDE != 0;
        let count = (word & !WIDE) as usize;
        let table_end = (4 + count * if wide { 8 } else { 4 }).min(self.buf.len());
        let table = self.buf.get(4..table_end).unwrap_or_default();
        // The last entry holds the total lengths of names and values.
        let (names_len, _) = match count.checked_sub(1) {
            Some(last) => {
                let w = if wide { 4 } else { 2 };
                (read_off(table, last * 2 * w, wide), ())
            }
            None => (0, ()),
        };
        let rest = self.buf.get(table_end..).unwrap_or_default();
        let names_end = names_len.min(rest.len());
        RawIter {
            table,
            names: rest.get(..names_end).unwrap_or_default(),
            values: rest.get(names_end..).unwrap_or_default(),
            wide,
            pos: 0,
            prev_name: 0,
            prev_value: 0,
        }
    }

    /// The headers as `(name, value)` byte slices, in wire order: what
    /// [`Headers::iter`] gives, without the UTF-8 check of the names (one
    /// `str::from_utf8` over all names per walk) for callers that compare
    /// names as bytes.
    pub fn iter_bytes(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.byte_pairs()
    }

    /// The headers as `(name, value)` byte slices, in wire order (no UTF-8
    /// check of the names).
    pub(crate) fn byte_pairs(&self) -> BytePairs<'_> {
        let raw = self.raw();
        BytePairs {
            entries: raw.table.chunks_exact(if raw.wide { 8 } else { 4 }),
            wide: raw.wide,
            names: raw.names,
            values: raw.values,
            prev_name: 0,
            prev_value: 0,
        }
    }

    /// The headers as `(name, value)` slices, in wire order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone + '_ {
        let raw = self.raw();
        // Names were added as whole `&str`s: valid UTF-8 (one check per walk).
        let names = std::str::from_utf8(raw.names).unwrap_or("");
        raw.map(move |(r, value)| (names.get(r).unwrap_or(""), value))
    }

    /// The headers in wire order.
    pub fn iter(&self) -> impl Iterator<Item = HeaderRef<'_>> + '_ {
        self.pairs().map(|(name, value)| HeaderRef { name, value })
    }
}

impl std::fmt::Debug for Headers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl FromIterator<Header> for Headers {
    fn from_iter<I: IntoIterator<Item = Header>>(iter: I) -> Headers {
        let v: Vec<Header> = iter.into_iter().collect();
        let names_len = v.iter().map(|h| h.name.len()).sum();
        let values_len = v.iter().map(|h| h.value.len()).sum();
        Headers::pack(
            v.len(),
            names_len,
            values_len,
            v.iter().map(|h| (h.name.as_bytes(), &h.value[..])),
        )
    }
}

impl From<Vec<Header>> for Headers {
    fn from(v: Vec<Header>) -> Headers {
        v.into_iter().collect()
    }
}

/// Case-insensitive lookup of the first header called `name`; `None` when absent.
#[inline]
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a [u8]> {
    // Compares lengths from the offsets first; only same-length names are
    // compared.
    let mut it = headers.raw();
    if !it.wide {
        // Narrow offsets (nearly every head): one 4-byte entry per header.
        let (mut prev_name, mut prev_value) = (0usize, 0usize);
        for entry in it.table.chunks_exact(4) {
            let Ok(&[n0, n1, v0, v1]) = <&[u8; 4]>::try_from(entry) else {
                break;
            };
            let name_end = usize::from(u16::from_le_bytes([n0, n1]));
            let value_end = usize::from(u16::from_le_bytes([v0, v1]));
            if name_end.wrapping_sub(prev_name) == name.len()
                && it
                    .names
                    .get(prev_name..name_end)
                    .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
            {
                return Some(it.values.get(prev_value..value_end).unwrap_or_default());
            }
            prev_name = name_end;
            prev_value = value_end;
        }
        return None;
    }
    while let Some(name_end) = it.peek_name_end() {
        let hit = name_end.saturating_sub(it.prev_name) == name.len()
            && it
                .names
                .get(it.prev_name..name_end)
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()));
        let value = it.take_value(name_end);
        if hit {
            return Some(value);
        }
    }
    None
}

/// Case-insensitive lookup returning the value as UTF-8 text (lossy).
pub fn header_str(headers: &Headers, name: &str) -> Option<String> {
    header(headers, name).map(|v| lossy(v).into_owned())
}

/// Case-insensitive lookup returning the value as UTF-8 text (lossy), borrowed
/// when the value is valid UTF-8 (no allocation).
pub fn header_text<'a>(headers: &'a Headers, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    header(headers, name).map(lossy)
}

/// `String::from_utf8_lossy`, checking valid input with the faster
/// `str::from_utf8` first (the lossy scan has no ASCII fast path).
pub(crate) fn lossy(v: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

/// `String::from_utf8_lossy(&v).into_owned()` without copying valid input.
pub(crate) fn lossy_owned(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Irregularities seen while framing one HTTP message. All `false` for a clean message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MsgFlags {
    /// The body was longer than the configured cap; only the first `cap` bytes are kept.
    pub body_truncated: bool,
    /// The message ended before its framing said it would (connection closed or
    /// timed out before the body, the last chunk or the terminating chunk arrived).
    pub incomplete: bool,
    /// A TCP gap (missing bytes) fell inside this message.
    pub gap: bool,
    /// The parser resynchronised on this message after a gap or garbage, or the
    /// capture started mid-connection.
    pub resynced: bool,
}

impl MsgFlags {
    /// Field-wise OR.
    pub fn merge(&mut self, other: MsgFlags) {
        self.body_truncated |= other.body_truncated;
        self.incomplete |= other.incomplete;
        self.gap |= other.gap;
        self.resynced |= other.resynced;
    }
}

/// A complete HTTP/1.x request (head and de-chunked body, capped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// Position of this request on its connection, from 0, in the order sent
    /// (pipelined requests keep their order; responses are paired by this index).
    pub index: u64,
    /// Timestamp of the first byte of the request line.
    pub ts_first: TimestampNs,
    /// Timestamp of the last byte of the message (end of head for a body-less request).
    pub ts_last: TimestampNs,
    /// Method token, e.g. `POST`.
    pub method: String,
    /// Request target as sent, e.g. `/mcp?x=1`.
    pub target: String,
    /// HTTP minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub version_minor: u8,
    /// Headers in wire order.
    pub headers: Headers,
    /// Body after de-chunking, at most the configured cap in bytes.
    pub body: Vec<u8>,
    /// Framing irregularities.
    pub flags: MsgFlags,
}

/// One Server-Sent Event, per the WHATWG HTML "event stream interpretation".
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// `event:` field, `None` when absent (the default type `message`).
    pub event: Option<String>,
    /// `data:` lines joined with `\n` (may be empty, as in a priming event).
    pub data: String,
    /// `id:` field when present.
    pub id: Option<String>,
    /// `retry:` field in milliseconds when present and valid.
    pub retry_ms: Option<u64>,
}

/// What the HTTP layer reports, in wire order per connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpEvent {
    /// A request is complete (or was cut: see its flags).
    Request {
        /// Connection endpoints; repeated on every request so a consumer needs no other state.
        conn: ConnMeta,
        /// The request.
        req: HttpRequest,
    },
    /// The head of the final (non-1xx) response to request `index` on `flow`.
    ResponseHead {
        /// Connection.
        flow: FlowId,
        /// Index of the request this answers.
        index: u64,
        /// Timestamp of the last byte of the head.
        ts: TimestampNs,
        /// Status code, e.g. 200.
        status: u16,
        /// Headers in wire order.
        headers: Headers,
        /// `true` when `Content-Type` is `text/event-stream`: the body arrives as
        /// [`HttpEvent::SseEvent`]s instead of in [`HttpEvent::ResponseEnd`].
        sse: bool,
    },
    /// One event of an SSE response body.
    SseEvent {
        /// Connection.
        flow: FlowId,
        /// Index of the request this stream answers.
        index: u64,
        /// Timestamp of the last byte of the event (its terminating blank line).
        ts: TimestampNs,
        /// The event.
        event: SseEvent,
    },
    /// The response to request `index` is over.
    ResponseEnd {
        /// Connection.
        flow: FlowId,
        /// Index of the request this answers.
        index: u64,
        /// Timestamp of the last byte of the response.
        ts: TimestampNs,
        /// De-chunked body, capped; empty for SSE responses (their events came before).
        body: Vec<u8>,
        /// Framing irregularities (e.g. a stream cut before its terminating chunk).
        flags: MsgFlags,
    },
    /// The connection is gone (FIN/RST, idle timeout or eviction); nothing more
    /// will be reported for `flow`. Requests still waiting for a response never get one.
    Closed {
        /// Connection.
        flow: FlowId,
        /// Timestamp of the packet or timeout that closed it.
        ts: TimestampNs,
    },
}

#[cfg(test)]
mod lossy_tests {
    use super::{lossy, lossy_owned};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lossy_matches_std(v in proptest::collection::vec(any::<u8>(), 0..64), text in ".{0,16}") {
            prop_assert_eq!(lossy(&v), String::from_utf8_lossy(&v));
            prop_assert_eq!(lossy_owned(v.clone()), String::from_utf8_lossy(&v).into_owned());
            prop_assert_eq!(lossy(text.as_bytes()), text.as_str());
            prop_assert_eq!(lossy_owned(text.clone().into_bytes()), text);
        }
    }

    #[test]
    fn invalid_bytes_become_replacement_characters() {
        assert_eq!(lossy(b"a\xffb"), "a\u{fffd}b");
        assert_eq!(lossy_owned(b"\xc3(".to_vec()), "\u{fffd}(");
    }
}

#[cfg(test)]
mod headers_tests {
    use super::{Header, Headers, header};
    use proptest::prelude::*;

    fn check(list: &[Header]) -> Result<(), TestCaseError> {
        let packed: Headers = list.to_vec().into();
        let mut pushed = Headers::new();
        for h in list {
            pushed.push(&h.name, &h.value);
        }
        prop_assert_eq!(&packed, &pushed);
        prop_assert_eq!(packed.len(), list.len());
        prop_assert_eq!(packed.is_empty(), list.is_empty());
        let back: Vec<(String, Vec<u8>)> = packed
            .iter()
            .map(|h| (h.name.to_owned(), h.value.to_vec()))
            .collect();
        let want: Vec<(String, Vec<u8>)> = list
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        prop_assert_eq!(&back, &want);
        let bytes: Vec<(String, Vec<u8>)> = packed
            .iter_bytes()
            .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
            .collect();
        prop_assert_eq!(bytes, want);
        for h in list {
            let first = list
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(&h.name))
                .map(|o| &o.value[..]);
            prop_assert_eq!(header(&packed, &h.name.to_ascii_uppercase()), first);
        }
        prop_assert_eq!(header(&packed, "not-there-at-all"), None);
        Ok(())
    }

    proptest! {
        /// `copy_short` copies exactly like `copy_from_slice`, every length
        /// class (fixed-size pieces up to 32 bytes, `memcpy` beyond), and
        /// leaves slices of different lengths alone.
        #[test]
        fn copy_short_is_copy_from_slice(
            src in proptest::collection::vec(any::<u8>(), 0..70),
            extra in 0usize..2,
        ) {
            let mut dst = vec![0xAAu8; src.len() + extra];
            super::copy_short(&mut dst, &src);
            if extra == 0 {
                prop_assert_eq!(&dst, &src);
            } else {
                prop_assert!(dst.iter().all(|&b| b == 0xAA));
            }
        }

        /// Packing from spans builds the same block as packing the slices
        /// (pieces of every length class, overlapping, at the very end of
        /// the source, empty values; spans outside the source give empty
        /// headers in both).
        #[test]
        fn pack_spans_is_pack(
            src in proptest::collection::vec(b'a'..=b'z', 0..120),
            spans in proptest::collection::vec(
                (0u16..130, 1u16..40, 0u16..130, 0u16..40),
                0..10,
            ),
        ) {
            let spans: Vec<[u16; 4]> = spans.into_iter().map(|(a, b, c, d)| [a, b, c, d]).collect();
            let piece = |at: u16, len: u16| src.get(usize::from(at)..usize::from(at) + usize::from(len));
            let names_len = spans.iter().map(|s| usize::from(s[1])).sum();
            let values_len = spans.iter().map(|s| usize::from(s[3])).sum();
            let got = Headers::pack_spans(&src, &spans, names_len, values_len);
            let inside = spans.iter().all(|s| piece(s[0], s[1]).is_some() && piece(s[2], s[3]).is_some());
            if inside {
                let want = Headers::pack(
                    spans.len(),
                    names_len,
                    values_len,
                    spans.iter().map(|s| (piece(s[0], s[1]).unwrap_or_default(), piece(s[2], s[3]).unwrap_or_default())),
                );
                prop_assert_eq!(got, want);
            } else {
                prop_assert_eq!(got, Headers::new());
            }
        }

        /// Packing keeps every header, in order, narrow and wide offsets alike.
        #[test]
        fn packed_headers_round_trip(
            list in proptest::collection::vec(
                ("[a-dA-D-]{0,6}", proptest::collection::vec(any::<u8>(), 0..40)),
                0..12,
            ),
            big in 0usize..3,
        ) {
            let mut list: Vec<Header> = list
                .into_iter()
                .map(|(name, value)| Header { name, value })
                .collect();
            if big > 0 && !list.is_empty() {
                // Over 65 535 bytes in total: wide offsets.
                list[0].value = vec![b'x'; 40_000 * big];
            }
            check(&list)?;
        }
    }
}
