//! Word-at-a-time ("SWAR": SIMD within a register) byte scans, eight bytes
//! per step in a `u64`, for the scans that pay for it (BENCHMARKS.md,
//! round 8): header names and values in the HTTP head walk
//! ([`crate::http`]), and the plain run of a JSON string in mcptap-mcp's
//! deserializer. Each is checked against the plain byte loop it replaces
//! by a proptest beside its caller (`word_scans_match_byte_loops` in
//! `http/head.rs`, `scan_plain_finds_the_first_special_byte` in mcptap-mcp's
//! `json/fast.rs`).

/// `tchar` (RFC 9110 §5.6.2), the bytes of a method or a header name:
/// exactly the bytes `httparse` accepts there (its `TOKEN_MAP`).
pub(crate) static TCHAR: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
};

/// Length of the run of `tchar` bytes at the start of `s` (`None` when
/// `s` ends inside it).
#[inline]
pub(crate) fn tchar_run(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| !TCHAR[usize::from(b)])
}

/// Index of the first byte at or after `i` that is not a `tchar` (see
/// [`TCHAR`]), or `buf.len()`. Eight bytes at a time for the usual name
/// bytes (letters and `-`): each lane is range-checked on its low seven
/// bits (no carries between lanes), bytes from 0x80 fail; the first
/// failing lane is then looked up in [`TCHAR`] (a digit or a rarer
/// `tchar` such as `_` is stepped over).
pub(crate) fn tchar_end(buf: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = LO * 0x80;
    while let Some(w) = buf.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*w);
        let x7 = x & !HI;
        // High bit of a lane set when the condition holds for that lane.
        let l = x7 | (LO * 0x20); // letters folded to lowercase
        let letter = l.wrapping_add(LO * 0x1f) & !l.wrapping_add(LO * 0x05); // 0x61..=0x7a
        let dash = !(x7 ^ (LO * 0x2d)).wrapping_add(LO * 0x7f); // 0x2d
        let odd = !((letter | dash) & !x) & HI;
        if odd == 0 {
            i += 8;
            continue;
        }
        let j = i + (odd.trailing_zeros() / 8) as usize;
        match buf.get(j) {
            Some(&b) if TCHAR[usize::from(b)] => i = j + 1,
            _ => return j,
        }
    }
    // Fewer than eight bytes left.
    i + tchar_run(buf.get(i..).unwrap_or_default()).unwrap_or(buf.len().saturating_sub(i))
}

/// Index of the first byte at or after `i` that may not appear in a header
/// value or a reason phrase, or `buf.len()`. Allowed are HTAB, SP, VCHAR
/// and obs-text (RFC 9110 §5.5): every byte but DEL and the controls other
/// than HTAB, as `httparse`'s `HEADER_VALUE_MAP`. Eight bytes at a time:
/// a byte below 0x20 or equal to 0x7F sets the high bit of its lane
/// (borrows only run upwards, so the lowest marked lane is the first such
/// byte); a marked HTAB is stepped over.
pub(crate) fn value_stop(buf: &[u8], mut i: usize) -> usize {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    while let Some(w) = buf.get(i..).and_then(|r| r.first_chunk::<8>()) {
        let x = u64::from_le_bytes(*w);
        let ctl = x.wrapping_sub(LO * 0x20) & !x;
        let y = x ^ (LO * 0x7f);
        let del = y.wrapping_sub(LO) & !y;
        let marked = (ctl | del) & HI;
        if marked == 0 {
            i += 8;
            continue;
        }
        let j = i + (marked.trailing_zeros() / 8) as usize;
        if buf.get(j) != Some(&b'\t') {
            return j;
        }
        i = j + 1;
    }
    // Fewer than eight bytes left.
    while let Some(&b) = buf.get(i) {
        if !(b == b'\t' || (b >= 0x20 && b != 0x7f)) {
            break;
        }
        i += 1;
    }
    i
}

/// Index of the first byte of `s` that is special inside a JSON string
/// (`"`, `\\` or a control character below 0x20), or `s.len()`.
///
/// Eight bytes at a time: `"` and the control characters are exactly the
/// bytes `b` with `b ^ 0x02 < 0x21` (xor 2 maps 0x00..=0x1F onto itself and
/// 0x22 onto 0x20), so two classic SWAR tests suffice: "has a byte below
/// 0x21" on `w ^ 0x0202…` and "has a zero byte" on `w ^ 0x5C5C…`. In each
/// test a borrow only starts at a matching byte and only moves to higher
/// bytes, so the lowest flagged byte is the first special one. Both share
/// their `& !x & HIGHS` part: the xor constants have no high bit, so
/// `!(w ^ c)` and `!w` agree there.
#[inline]
pub fn json_special_end(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let (words, tail) = s.as_chunks::<8>();
    let mut i = 0;
    for word in words {
        let w = u64::from_le_bytes(*word);
        let quote_or_control = (w ^ (ONES * 0x02)).wrapping_sub(ONES * 0x21);
        let backslash = (w ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
        let has = (quote_or_control | backslash) & !w & HIGHS;
        if has != 0 {
            return i + (has.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    for &b in tail {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}
