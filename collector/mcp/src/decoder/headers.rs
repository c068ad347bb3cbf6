//! Request-header scanning: the request headers the decoder reads, found in
//! one pass over the head ([`ReqHeaders::scan`]), and header values as text.

use std::borrow::Cow;

use mcptap_wire::Headers;

/// The request headers the decoder reads, found in one pass over the head:
/// the first header of each name, names compared case-insensitively (as
/// [`mcptap_wire::header`] does).
#[derive(Debug, Clone, Copy)]
pub(super) struct ReqHeaders<'h> {
    pub(super) headers: &'h Headers,
    pub(super) protocol_version: Option<&'h [u8]>,
    pub(super) session_id: Option<&'h [u8]>,
    pub(super) user_agent: Option<&'h [u8]>,
    pub(super) mcp_method: Option<&'h [u8]>,
    pub(super) mcp_name: Option<&'h [u8]>,
    pub(super) traceparent: Option<&'h [u8]>,
    pub(super) tracestate: Option<&'h [u8]>,
    /// `X-Request-Id` (the first line).
    pub(super) request_id: Option<&'h [u8]>,
    /// Some header name starts with `mcp-param-` (any case).
    pub(super) param_headers: bool,
    /// Some forwarding or mesh identity header is there (`Forwarded`,
    /// `X-Forwarded-For`, `X-Real-IP`, `x-forwarded-client-cert`,
    /// `l5d-client-id`).
    pub(super) forwarding: bool,
    /// Those headers' lines in wire order, the first [`FORWARDING_LINES`]
    /// (the client identity reads these instead of every header).
    pub(super) forwarding_lines: [(&'h [u8], &'h [u8]); FORWARDING_LINES],
    /// Forwarding lines seen (may exceed [`FORWARDING_LINES`]: then the
    /// client identity walks every header).
    pub(super) forwarding_count: usize,
    /// Some of them is a mesh identity header (`x-forwarded-client-cert`, `l5d-client-id`).
    pub(super) mesh_identity: bool,
}

/// Forwarding header lines kept by [`ReqHeaders::scan`].
pub(super) const FORWARDING_LINES: usize = 4;

impl<'h> ReqHeaders<'h> {
    /// The forwarding and mesh identity header lines, in wire order: the
    /// ones the scan kept, or every header when there were more.
    pub(super) fn forwarding_headers(&self) -> impl Iterator<Item = (&'h [u8], &'h [u8])> + '_ {
        let kept = (self.forwarding_count <= FORWARDING_LINES).then(|| {
            self.forwarding_lines
                .iter()
                .take(self.forwarding_count)
                .copied()
        });
        let all = kept.is_none().then(|| self.headers.iter_bytes());
        kept.into_iter().flatten().chain(all.into_iter().flatten())
    }
}

impl<'h> ReqHeaders<'h> {
    pub(super) fn scan(headers: &'h Headers) -> ReqHeaders<'h> {
        let mut r = ReqHeaders {
            headers,
            protocol_version: None,
            session_id: None,
            user_agent: None,
            mcp_method: None,
            mcp_name: None,
            traceparent: None,
            tracestate: None,
            request_id: None,
            param_headers: false,
            forwarding: false,
            forwarding_lines: [(&[], &[]); FORWARDING_LINES],
            forwarding_count: 0,
            mesh_identity: false,
        };
        for (n, value) in headers.iter_bytes() {
            // Names of ten bytes are told apart by their first letter
            // first (`connection`, on most requests, is none of them).
            let first = n.first().map_or(0, |c| c | 0x20);
            let slot = match n.len() {
                8 if name_is(n, b"mcp-name") => &mut r.mcp_name,
                10 if first == b'u' && name_is(n, b"user-agent") => &mut r.user_agent,
                10 if first == b'm' && name_is(n, b"mcp-method") => &mut r.mcp_method,
                10 if first == b't' && name_is(n, b"tracestate") => &mut r.tracestate,
                11 if name_is(n, b"traceparent") => &mut r.traceparent,
                12 if first == b'x' && name_is(n, b"x-request-id") => &mut r.request_id,
                14 if name_is(n, b"mcp-session-id") => &mut r.session_id,
                20 if name_is(n, b"mcp-protocol-version") => &mut r.protocol_version,
                _ => {
                    if let Some(mesh) = forwarding_kind(n) {
                        r.forwarding = true;
                        r.mesh_identity |= mesh;
                        if let Some(slot) = r.forwarding_lines.get_mut(r.forwarding_count) {
                            *slot = (n, value);
                        }
                        r.forwarding_count += 1;
                        continue;
                    }
                    if n.len() >= 10
                        && n.first().is_some_and(|c| c.eq_ignore_ascii_case(&b'm'))
                        && n.get(..10).is_some_and(|p| name_is(p, b"mcp-param-"))
                    {
                        r.param_headers = true;
                    }
                    continue;
                }
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        r
    }
}

/// `Some(mesh)` when `n` is a forwarding header name (any case), `mesh`
/// for a mesh identity header.
fn forwarding_kind(n: &[u8]) -> Option<bool> {
    match n.len() {
        9 if name_is(n, b"forwarded") || name_is(n, b"x-real-ip") => Some(false),
        13 if name_is(n, b"l5d-client-id") => Some(true),
        15 if name_is(n, b"x-forwarded-for") => Some(false),
        23 if name_is(n, b"x-forwarded-client-cert") => Some(true),
        _ => None,
    }
}

/// `n.eq_ignore_ascii_case(t)` for a lowercase ASCII name `t`, eight bytes
/// at a time when `t` has at least eight: a byte of `n` matches a letter of
/// `t` in either case (`b | 0x20 == t`) and any other byte of `t` exactly,
/// which is the byte-wise rule (see the proptest).
#[inline(always)]
fn name_is(n: &[u8], t: &[u8]) -> bool {
    if n.len() != t.len() || t.len() < 8 {
        return n.eq_ignore_ascii_case(t);
    }
    let last = t.len() - 8;
    let mut at = 0;
    loop {
        let at8 = at.min(last);
        let (Some(a), Some(b)) = (word8(n, at8), word8(t, at8)) else {
            return false;
        };
        if a | lower_letters(b) != b {
            return false;
        }
        if at8 == last {
            return true;
        }
        at += 8;
    }
}

/// The eight bytes of `s` from `at`, little-endian.
#[inline(always)]
fn word8(s: &[u8], at: usize) -> Option<u64> {
    let w = s.get(at..at.checked_add(8)?)?;
    <[u8; 8]>::try_from(w).ok().map(u64::from_le_bytes)
}

/// `0x20` in each byte of `w` that is a lowercase ASCII letter, else `0`
/// (`w` all ASCII: no byte sum below carries into the next byte).
#[inline(always)]
const fn lower_letters(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let from_a = w.wrapping_add(ONES * (0x80 - b'a' as u64));
    let past_z = w.wrapping_add(ONES * (0x80 - b'z' as u64 - 1));
    ((from_a & !past_z) & (ONES * 0x80)) >> 2
}

/// A header value as UTF-8 text, lossy (as [`mcptap_wire::header_text`]).
pub(super) fn text(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

/// [`text`] of `v`, without the UTF-8 check when `known` recognises it (its
/// known values are ASCII).
pub(super) fn known_text(v: &[u8], known: fn(&[u8]) -> Option<&'static str>) -> Cow<'_, str> {
    match known(v) {
        Some(k) => Cow::Borrowed(k),
        None => text(v),
    }
}

/// A header value as an owned UTF-8 string, lossy (as [`mcptap_wire::header_str`]).
pub(super) fn owned_text(v: &[u8]) -> String {
    text(v).into_owned()
}

#[cfg(test)]
mod req_header_tests {
    use crate::protocol::{known_method_bytes, known_version_bytes};
    use proptest::prelude::*;

    proptest! {
        /// The word-wise name comparison is `eq_ignore_ascii_case`.
        #[test]
        fn name_is_matches_eq_ignore_ascii_case(
            t in prop_oneof![
                Just("mcp-name"), Just("user-agent"), Just("mcp-method"), Just("tracestate"),
                Just("traceparent"), Just("mcp-session-id"), Just("mcp-protocol-version"),
                Just("mcp-param-"), Just("host"),
            ],
            flips in proptest::collection::vec(any::<u8>(), 20),
            junk in proptest::collection::vec(any::<u8>(), 0..22),
        ) {
            let t = t.as_bytes();
            // Same bytes with cases flipped and some bytes replaced (often by
            // a neighbour of the right byte), and unrelated bytes.
            let mixed: Vec<u8> = t
                .iter()
                .zip(flips.iter().cycle())
                .map(|(&b, &f)| match f % 8 {
                    0 => b.to_ascii_uppercase(),
                    1 => b ^ 0x20,
                    2 => b ^ 0x80,
                    3 => f,
                    _ => b,
                })
                .collect();
            for n in [t, mixed.as_slice(), junk.as_slice()] {
                prop_assert_eq!(super::name_is(n, t), n.eq_ignore_ascii_case(t));
            }
        }
    }

    proptest! {
        /// A known header value reads as the same text, known or not.
        #[test]
        fn known_text_is_text(
            v in prop_oneof![
                proptest::collection::vec(any::<u8>(), 0..12),
                Just(b"2025-06-18".to_vec()),
                Just(b"tools/call".to_vec()),
                Just(b"2026-07-28 ".to_vec()),
            ]
        ) {
            for known in [known_method_bytes, known_version_bytes] {
                prop_assert_eq!(super::known_text(&v, known), super::text(&v));
            }
        }
    }

    proptest! {
        /// The one-pass header scan finds what a lookup of each name finds
        /// (first header of the name, any case), and flags `Mcp-Param-*` names.
        #[test]
        fn req_headers_scan_matches_lookups(
            hs in proptest::collection::vec(
                (
                    prop_oneof![
                        Just("Mcp-Name"), Just("user-agent"), Just("MCP-METHOD"),
                        Just("tracestate"), Just("Traceparent"), Just("mcp-session-id"),
                        Just("MCP-Protocol-Version"), Just("mcp-param-"), Just("Mcp-Param-Region"),
                        Just("mcp-par"), Just("content-type"), Just("host"), Just("x-mcp-param-a"),
                    ],
                    proptest::collection::vec(any::<u8>(), 0..6),
                ),
                0..12,
            )
        ) {
            let headers: mcptap_wire::Headers = hs
                .iter()
                .map(|(n, v)| mcptap_wire::Header { name: (*n).to_string(), value: v.clone() })
                .collect::<Vec<_>>()
                .into();
            let r = super::ReqHeaders::scan(&headers);
            let look = |n: &str| mcptap_wire::header(&headers, n);
            prop_assert_eq!(r.mcp_name, look("mcp-name"));
            prop_assert_eq!(r.user_agent, look("user-agent"));
            prop_assert_eq!(r.mcp_method, look("mcp-method"));
            prop_assert_eq!(r.tracestate, look("tracestate"));
            prop_assert_eq!(r.traceparent, look("traceparent"));
            prop_assert_eq!(r.session_id, look("mcp-session-id"));
            prop_assert_eq!(r.protocol_version, look("mcp-protocol-version"));
            let params = hs.iter().any(|(n, _)| {
                n.get(..10).is_some_and(|p| p.eq_ignore_ascii_case("mcp-param-"))
            });
            prop_assert_eq!(r.param_headers, params);
        }
    }
}
