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
            let is = |name: &[u8]| n.eq_ignore_ascii_case(name);
            let slot = if is(b"mcp-name") {
                &mut r.mcp_name
            } else if is(b"user-agent") {
                &mut r.user_agent
            } else if is(b"mcp-method") {
                &mut r.mcp_method
            } else if is(b"tracestate") {
                &mut r.tracestate
            } else if is(b"traceparent") {
                &mut r.traceparent
            } else if is(b"x-request-id") {
                &mut r.request_id
            } else if is(b"mcp-session-id") {
                &mut r.session_id
            } else if is(b"mcp-protocol-version") {
                &mut r.protocol_version
            } else {
                if let Some(mesh) = forwarding_kind(n) {
                    r.forwarding = true;
                    r.mesh_identity |= mesh;
                    if let Some(slot) = r.forwarding_lines.get_mut(r.forwarding_count) {
                        *slot = (n, value);
                    }
                    r.forwarding_count += 1;
                } else if n
                    .get(..10)
                    .is_some_and(|p| p.eq_ignore_ascii_case(b"mcp-param-"))
                {
                    r.param_headers = true;
                }
                continue;
            };
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        r
    }
}

/// `Some(mesh)` when `n` is a forwarding header name (any case), `mesh`
/// for a mesh identity header (`x-forwarded-client-cert`, `l5d-client-id`).
fn forwarding_kind(n: &[u8]) -> Option<bool> {
    let is = |name: &[u8]| n.eq_ignore_ascii_case(name);
    if is(b"forwarded") || is(b"x-real-ip") || is(b"x-forwarded-for") {
        Some(false)
    } else if is(b"l5d-client-id") || is(b"x-forwarded-client-cert") {
        Some(true)
    } else {
        None
    }
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
