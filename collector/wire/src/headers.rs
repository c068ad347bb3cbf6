//! The packed header table of a parsed head ([`Headers`]), its one walk
//! ([`Entries`]), and case-insensitive lookups ([`header`]).

use crate::lossy;
use std::ops::Range;

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
/// (one allocation per head, no per-header overhead):
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

/// Copies the pieces `src[from..from + len]` of `pieces`, in order, one
/// after the other to the start of `dst`, and returns the rest of `dst`;
/// `None` (and `dst` partly written) when a piece is outside `src` or
/// `dst` is too short. A piece
/// of at most 32 bytes is copied as one or two fixed 16-byte blocks when
/// `src` and `dst` have that much room: a block may run past the piece
/// into `dst` bytes that later pieces overwrite (so the bytes after the
/// last piece are unspecified unless `dst` ends there, where the copy is
/// exact). No `memcpy` call for short pieces.
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
        names.get_mut(n0..name_end)?.copy_from_slice(name);
        values.get_mut(v0..value_end)?.copy_from_slice(value);
        let (e_name, e_value) = entry.split_at_mut(W);
        // Truncation to `W` bytes: see above.
        e_name.copy_from_slice(&(name_end as u32).to_le_bytes()[..W]);
        e_value.copy_from_slice(&(value_end as u32).to_le_bytes()[..W]);
    }
    Some((name_end, value_end))
}

/// The one walk over a packed block: each header's name range in `names`
/// and value range in `values`, from the offset table, in wire order.
/// Every other view ([`Headers::iter`], [`Headers::iter_bytes`],
/// [`header`]) is built on it.
#[derive(Clone)]
pub(crate) struct Entries<'a> {
    /// Offset-table entries (4 bytes each, 8 when wide).
    entries: std::slice::ChunksExact<'a, u8>,
    wide: bool,
    /// All names, concatenated (UTF-8).
    names: &'a [u8],
    /// All values, concatenated.
    values: &'a [u8],
    /// End of the previous name in `names`.
    prev_name: usize,
    /// End of the previous value in `values`.
    prev_value: usize,
}

impl<'a> Entries<'a> {
    /// All names, concatenated (what name ranges index).
    #[inline]
    fn names(&self) -> &'a [u8] {
        self.names
    }

    /// All values, concatenated (what value ranges index).
    #[inline]
    fn values(&self) -> &'a [u8] {
        self.values
    }
}

impl Iterator for Entries<'_> {
    /// The name's range in `names`, the value's range in `values`.
    type Item = (Range<usize>, Range<usize>);

    #[inline]
    fn next(&mut self) -> Option<(Range<usize>, Range<usize>)> {
        let e = self.entries.next()?;
        let (name_end, value_end) = if self.wide {
            let &[n0, n1, n2, n3, v0, v1, v2, v3] = e.first_chunk::<8>()?;
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
        let item = (self.prev_name..name_end, self.prev_value..value_end);
        self.prev_name = name_end;
        self.prev_value = value_end;
        Some(item)
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
        // Allocated, then zeroed with `memset` (not `vec![0; n]`, which takes
        // the allocator's zeroed-allocation path).
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
            entry.copy_from_slice(&[n0, n1, v0, v1]);
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
            .byte_pairs()
            .fold((name.len(), value.len()), |(n, v), (nm, val)| {
                (n.saturating_add(nm.len()), v.saturating_add(val.len()))
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

    /// The walk over the block (see [`Entries`]).
    #[inline]
    pub(crate) fn entries(&self) -> Entries<'_> {
        let word = self.count_word();
        let wide = word & WIDE != 0;
        let count = (word & !WIDE) as usize;
        let entry_len = if wide { 8 } else { 4 };
        let table_end = (4 + count * entry_len).min(self.buf.len());
        let table = self.buf.get(4..table_end).unwrap_or_default();
        // The last entry holds the total lengths of names and values.
        let names_len = match count.checked_sub(1) {
            Some(last) => read_off(table, last * entry_len, wide),
            None => 0,
        };
        let rest = self.buf.get(table_end..).unwrap_or_default();
        let names_end = names_len.min(rest.len());
        Entries {
            entries: table.chunks_exact(entry_len),
            wide,
            names: rest.get(..names_end).unwrap_or_default(),
            values: rest.get(names_end..).unwrap_or_default(),
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
    #[inline]
    pub(crate) fn byte_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + Clone + '_ {
        let entries = self.entries();
        let (names, values) = (entries.names(), entries.values());
        entries.map(move |(n, v)| {
            (
                names.get(n).unwrap_or_default(),
                values.get(v).unwrap_or_default(),
            )
        })
    }

    /// The headers as `(name, value)` slices, in wire order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &[u8])> + Clone + '_ {
        let entries = self.entries();
        // Names were added as whole `&str`s: valid UTF-8 (one check per walk).
        let names = std::str::from_utf8(entries.names()).unwrap_or("");
        let values = entries.values();
        entries.map(move |(n, v)| {
            (
                names.get(n).unwrap_or(""),
                values.get(v).unwrap_or_default(),
            )
        })
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
    // Lengths come from the offsets: only names of the right length are compared.
    let mut entries = headers.entries();
    let (names, values) = (entries.names(), entries.values());
    let (_, value) = entries.find(|(n, _)| {
        n.len() == name.len()
            && names
                .get(n.clone())
                .is_some_and(|n| n.eq_ignore_ascii_case(name.as_bytes()))
    })?;
    Some(values.get(value).unwrap_or_default())
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

#[cfg(test)]
mod tests {
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
