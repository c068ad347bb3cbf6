//! The chains of hops in `X-Forwarded-For`/`X-Real-IP` (read from the right)
//! and `Forwarded` (RFC 7239 §4, tokenized from the left), and the walk
//! that picks the client out of a chain.

use super::node::{Hop, MAX_NODE_BYTES, parse_node};
use super::{Anomaly, TrustedProxies};
use std::net::IpAddr;

/// Most list elements examined per chain, from the right (empty elements
/// included); a walk that gets this far without finding the client stops
/// with [`Anomaly::TooManyHops`].
pub const MAX_HOPS: usize = 64;

/// `X-Forwarded-For` elements from the right, over the last bytes of the
/// value only: when `truncated`, the leftmost (partial) element reads as
/// [`Hop::Cut`]. Each step finds the previous comma (memrchr).
pub(crate) struct XffRev<'a> {
    rest: Option<&'a [u8]>,
    truncated: bool,
}

impl<'a> XffRev<'a> {
    pub(crate) fn new(value: &'a [u8], truncated: bool) -> Self {
        XffRev {
            rest: Some(value),
            truncated,
        }
    }
}

impl Iterator for XffRev<'_> {
    type Item = Hop;

    fn next(&mut self) -> Option<Hop> {
        let rest = self.rest?;
        match memchr::memrchr(b',', rest) {
            Some(i) => {
                self.rest = rest.get(..i);
                Some(parse_node(rest.get(i + 1..).unwrap_or_default()))
            }
            None => {
                self.rest = None;
                Some(if self.truncated {
                    Hop::Cut
                } else {
                    parse_node(rest)
                })
            }
        }
    }
}

/// A `Forwarded` value tokenized: the `for=` hops of its last
/// `MAX_HOPS + 1` elements (a ring, oldest overwritten), and whether any
/// element carried `for=` or was malformed (else the header says nothing
/// about the client and the next source is read).
pub(crate) struct ForwardedHops {
    ring: [Hop; MAX_HOPS + 1],
    len: usize,
    total: usize,
    pub(crate) usable: bool,
}

impl ForwardedHops {
    /// Tokenizes the whole `value` (RFC 7239 §4: `1#forwarded-element`,
    /// elements of `;`-separated `token=value` pairs, values tokens or
    /// quoted strings). Lenient where real proxies are: OWS around `;`,
    /// unquoted values with `:` and brackets. Linear in `value.len()`.
    pub(crate) fn parse(value: &[u8]) -> Self {
        let mut out = ForwardedHops {
            ring: [Hop::Empty; MAX_HOPS + 1],
            len: 0,
            total: 0,
            usable: false,
        };
        let mut i = 0;
        while i < value.len() {
            let (hop, next, usable) = element(value, i);
            out.usable |= usable;
            out.push(hop);
            // `element` always consumes at least one byte.
            i = next.max(i + 1);
        }
        // A trailing comma ends with an empty element: ignored like the others.
        out
    }

    fn push(&mut self, hop: Hop) {
        let slot = self.total % self.ring.len();
        if let Some(s) = self.ring.get_mut(slot) {
            *s = hop;
        }
        self.total += 1;
        self.len = (self.len + 1).min(self.ring.len());
    }

    /// The hops from the right (newest first).
    pub(crate) fn rev(&self) -> impl Iterator<Item = Hop> + '_ {
        let n = self.ring.len();
        (0..self.len).filter_map(move |k| self.ring.get((self.total + n - 1 - k) % n).copied())
    }
}

/// `tchar` (RFC 9110 §5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn skip_ows(s: &[u8], mut i: usize) -> usize {
    while matches!(s.get(i), Some(b' ' | b'\t')) {
        i += 1;
    }
    i
}

/// The index after the next top-level `,` from `i` (quoted strings
/// skipped), or `s.len()`.
fn resync(s: &[u8], mut i: usize) -> usize {
    let mut quoted = false;
    while let Some(&b) = s.get(i) {
        i += 1;
        match (quoted, b) {
            (false, b',') => return i,
            (_, b'"') => quoted = !quoted,
            (true, b'\\') => i += 1,
            _ => {}
        }
    }
    s.len()
}

/// A pair's value at `i`: a quoted string (RFC 9110 §5.6.4, quoted-pairs
/// unescaped into `buf`, at most `MAX_NODE_BYTES + 1` kept) or the bytes up
/// to `,`, `;` or OWS. Returns the bytes kept, the index after the value,
/// and `false` for an unterminated quoted string.
fn read_value<'b>(
    s: &[u8],
    mut i: usize,
    buf: &'b mut [u8; MAX_NODE_BYTES + 1],
) -> (&'b [u8], usize, bool) {
    let mut n = 0;
    let mut keep = |b: u8, n: &mut usize| {
        if let Some(slot) = buf.get_mut(*n) {
            *slot = b;
            *n += 1;
        }
    };
    if s.get(i) == Some(&b'"') {
        i += 1;
        loop {
            match s.get(i) {
                None => return (&[], s.len(), false),
                Some(b'"') => break,
                Some(b'\\') => {
                    let Some(&b) = s.get(i + 1) else {
                        return (&[], s.len(), false);
                    };
                    keep(b, &mut n);
                    i += 2;
                }
                Some(&b) => {
                    keep(b, &mut n);
                    i += 1;
                }
            }
        }
        i += 1;
    } else {
        while let Some(&b) = s.get(i) {
            if matches!(b, b',' | b';' | b' ' | b'\t' | b'"') {
                break;
            }
            keep(b, &mut n);
            i += 1;
        }
    }
    (buf.get(..n).unwrap_or_default(), i, true)
}

/// One `forwarded-element` from `i`: its `for=` hop ([`Hop::Empty`] for an
/// empty element, [`Hop::Hidden`] when it has pairs but no `for=`,
/// [`Hop::Malformed`] for bad syntax or a repeated `for=`, RFC 7239 §4),
/// the index after its `,`, and whether it tells about the client (has
/// `for=` or is malformed).
fn element(s: &[u8], mut i: usize) -> (Hop, usize, bool) {
    let mut buf = [0u8; MAX_NODE_BYTES + 1];
    let mut found: Option<Hop> = None;
    let mut pairs = false;
    let malformed = |at: usize| (Hop::Malformed, resync(s, at), true);
    loop {
        i = skip_ows(s, i);
        match s.get(i) {
            None => break,
            Some(b',') => {
                i += 1;
                break;
            }
            Some(b';') => {
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let start = i;
        while s.get(i).copied().is_some_and(is_tchar) {
            i += 1;
        }
        let name = s.get(start..i).unwrap_or_default();
        if name.is_empty() || s.get(i) != Some(&b'=') {
            return malformed(i);
        }
        let (value, next, closed) = read_value(s, i + 1, &mut buf);
        if !closed {
            return (Hop::Malformed, s.len(), true);
        }
        pairs = true;
        if name.eq_ignore_ascii_case(b"for") {
            if found.is_some() {
                return malformed(next);
            }
            found = Some(match parse_node(value) {
                Hop::Empty | Hop::Cut => Hop::Malformed,
                hop => hop,
            });
        }
        i = skip_ows(s, next);
        if !matches!(s.get(i), None | Some(b',' | b';')) {
            return malformed(i);
        }
    }
    match found {
        Some(hop) => (hop, i, true),
        None if pairs => (Hop::Hidden, i, false),
        None => (Hop::Empty, i, false),
    }
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Walk {
    /// Only empty elements: the header says nothing.
    Absent,
    /// The client: `pick` (`None`: the socket peer), the trusted hops
    /// between it and the capture point (socket peer included; 0 for the
    /// peer), and the anomaly seen.
    Done {
        pick: Option<(IpAddr, Option<u16>)>,
        hops: u16,
        anomaly: Option<Anomaly>,
    },
}

/// Walks `hops` from the right (the socket peer, already trusted, is hop
/// 0): past every trusted address, to the first untrusted one, which is
/// the client. At the left end (every hop trusted) the leftmost address is
/// the client. An element that is not an address (malformed, hidden, cut)
/// or the [`MAX_HOPS`] bound stops the walk: the client is then the last
/// address read (the nearest trusted hop to its right), else the peer.
/// `strict_v6`: IPv6 without brackets is flagged
/// ([`Anomaly::UnbracketedIpv6`]; `Forwarded` only, where RFC 7239 §6
/// requires them).
pub(crate) fn walk(
    hops: impl Iterator<Item = Hop>,
    trusted: &TrustedProxies,
    strict_v6: bool,
) -> Walk {
    let mut last: Option<(IpAddr, Option<u16>)> = None;
    let mut passed: u16 = 0;
    let mut lenient = None;
    let stop = |last, passed, a| Walk::Done {
        pick: last,
        hops: passed,
        anomaly: Some(a),
    };
    for (examined, hop) in hops.enumerate() {
        if examined == MAX_HOPS {
            return stop(last, passed, Anomaly::TooManyHops);
        }
        match hop {
            Hop::Empty => {}
            Hop::Addr {
                ip,
                port,
                unbracketed,
            } => {
                if unbracketed && strict_v6 {
                    lenient = Some(Anomaly::UnbracketedIpv6);
                }
                if !trusted.contains(ip) {
                    return Walk::Done {
                        pick: Some((ip, port)),
                        hops: passed + 1,
                        anomaly: lenient,
                    };
                }
                last = Some((ip, port));
                passed += 1;
            }
            Hop::Hidden => return stop(last, passed, Anomaly::Hidden),
            Hop::Malformed => return stop(last, passed, Anomaly::Malformed),
            Hop::Cut => return stop(last, passed, Anomaly::TooLong),
        }
    }
    match last {
        None => Walk::Absent,
        Some(_) => Walk::Done {
            pick: last,
            hops: passed,
            anomaly: lenient,
        },
    }
}
