//! One hop of a forwarding chain: a node (RFC 7239 §6) as written in
//! `Forwarded: for=`, `X-Forwarded-For` or `X-Real-IP`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longest node text read (an IPv6 address in brackets with a port is at
/// most 53 bytes; obfuscated identifiers are short). Longer is malformed.
pub(crate) const MAX_NODE_BYTES: usize = 256;

/// One list element of a forwarding chain, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Hop {
    /// An empty list element (RFC 9110 §5.6.1: ignored).
    #[default]
    Empty,
    /// An address, with its port when given. `unbracketed`: an IPv6 address
    /// without the `[...]` RFC 7239 §6 requires (accepted, flagged).
    Addr {
        ip: IpAddr,
        port: Option<u16>,
        unbracketed: bool,
    },
    /// `unknown` (RFC 7239 §6.2), an obfuscated identifier `_x` (§6.3), or a
    /// `Forwarded` element without `for=`.
    Hidden,
    /// Not a node.
    Malformed,
    /// The element runs past the start of the bytes examined (a value longer
    /// than the byte bound).
    Cut,
}

fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// `s` without leading and trailing spaces and tabs (OWS, RFC 9110 §5.6.3).
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s.iter().rposition(|&b| !is_ows(b)).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

/// RFC 7239 §6.3 `obfnode`/`obfport` characters after the `_`.
fn is_obf_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')
}

fn is_obfuscated(s: &[u8]) -> bool {
    matches!(s.split_first(), Some((b'_', rest)) if !rest.is_empty() && rest.iter().all(|&b| is_obf_char(b)))
}

/// A `node-port` (RFC 7239 §6): `port` (1 to 5 digits, at most 65535) gives
/// `Some(Some(port))`, an obfuscated port `_x` gives `Some(None)`; anything
/// else `None` (malformed).
fn parse_port(s: &[u8]) -> Option<Option<u16>> {
    if is_obfuscated(s) {
        return Some(None);
    }
    if s.is_empty() || s.len() > 5 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse::<u16>().ok().map(Some)
}

fn parse_v4(s: &[u8]) -> Option<Ipv4Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

fn parse_v6(s: &[u8]) -> Option<Ipv6Addr> {
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Reads one node (RFC 7239 §6 `node = nodename [ ":" node-port ]`), OWS
/// around it ignored. Accepted: `192.0.2.43`, `192.0.2.43:47011`,
/// `[2001:db8::17]`, `[2001:db8::17]:4711`, a bare IPv6 address
/// `2001:db8::17` (the form `X-Forwarded-For` uses; flagged unbracketed),
/// obfuscated ports (`_p` → no port), `unknown` and obfuscated nodes `_x`
/// (→ [`Hop::Hidden`]). Everything else (other text, IPv4 in brackets,
/// zone ids, bad ports, over [`MAX_NODE_BYTES`]) is [`Hop::Malformed`].
/// An empty text is [`Hop::Empty`].
pub(crate) fn parse_node(text: &[u8]) -> Hop {
    let s = trim_ows(text);
    if s.is_empty() {
        return Hop::Empty;
    }
    if s.len() > MAX_NODE_BYTES {
        return Hop::Malformed;
    }
    if let Some(inner) = s.strip_prefix(b"[") {
        let Some(close) = inner.iter().position(|&b| b == b']') else {
            return Hop::Malformed;
        };
        let (addr, rest) = inner.split_at(close);
        let rest = rest.get(1..).unwrap_or_default();
        let port = match rest {
            [] => Some(None),
            [b':', p @ ..] => parse_port(p),
            _ => None,
        };
        return match (parse_v6(addr), port) {
            (Some(v6), Some(port)) => Hop::Addr {
                ip: IpAddr::V6(v6),
                port,
                unbracketed: false,
            },
            _ => Hop::Malformed,
        };
    }
    let colons = s.iter().filter(|&&b| b == b':').count();
    if colons >= 2 {
        return parse_v6(s).map_or(Hop::Malformed, |v6| Hop::Addr {
            ip: IpAddr::V6(v6),
            port: None,
            unbracketed: true,
        });
    }
    let (name, port) = match s.iter().position(|&b| b == b':') {
        Some(c) => (
            s.get(..c).unwrap_or_default(),
            s.get(c + 1..).map(parse_port),
        ),
        None => (s, Some(Some(None))),
    };
    let Some(Some(port)) = port else {
        return Hop::Malformed;
    };
    if name.eq_ignore_ascii_case(b"unknown") || is_obfuscated(name) {
        return Hop::Hidden;
    }
    parse_v4(name).map_or(Hop::Malformed, |v4| Hop::Addr {
        ip: IpAddr::V4(v4),
        port,
        unbracketed: false,
    })
}
