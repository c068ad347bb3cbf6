//! The legs of a proxied request, when one capture holds both (a node or bridge
//! capture, or a sidecar in the ingress pod): client → proxy (the *client
//! leg*) and proxy → instance (the *upstream leg*).
//!
//! A request whose forwarding headers a trusted socket peer sent is an
//! upstream leg, and that peer a proxy. Its client leg is the pending request
//! to that proxy from the client the forwarding headers name, with the same
//! method, target and body ([`digest`]), received before
//! it, oldest first. An upstream leg without a body (the instance answered
//! from the head alone, so the proxy never forwarded the body) is matched on
//! method and target only. Linked, the upstream leg's spans become children of
//! the client leg's span (same trace), and each leg says which it is
//! (`mcptap.hop`: `client`, `upstream`); a request to a known proxy whose
//! upstream leg is not in the capture is `client_only` (answered by the proxy
//! itself, e.g. nginx's own 404/502/504, or forwarded where the capture does
//! not see it, e.g. over TLS). Capture order makes this work: the client leg's
//! request is complete before the proxy forwards it, and its response ends
//! after the upstream leg's.
//!
//! Client legs are indexed only for servers already known as proxies; when a
//! proxy is first seen, the pending requests to it are indexed once. Bounded:
//! at most [`MAX_PROXIES`] proxies and [`MAX_LEGS`] indexed legs (past that
//! the index starts over, counted in `McpStats::hop_index_resets`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;

use foldhash::fast::{FixedState, RandomState};
use mcptap_wire::FlowId;

/// Proxies remembered.
pub(super) const MAX_PROXIES: usize = 1024;
/// Client legs indexed at once.
pub(super) const MAX_LEGS: usize = 16_384;

/// Which leg of a proxied request an exchange is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Hop {
    /// No sign of a proxy on either side.
    #[default]
    Direct,
    /// A request to a proxy that the proxy forwarded (its upstream leg was
    /// linked to it).
    Client,
    /// A request forwarded by a proxy: `parent` is the client leg's span
    /// (trace id, span id) when that leg was found.
    Upstream {
        /// The client leg's span.
        parent: Option<([u8; 16], [u8; 8])>,
    },
}

impl Hop {
    /// `mcptap.hop` of a leg: `None` for a direct request; `client_only`
    /// for a request to a known proxy whose upstream leg was not seen.
    pub(super) fn attr(self, to_proxy: bool) -> Option<&'static str> {
        match self {
            Hop::Client => Some("client"),
            Hop::Upstream { .. } => Some("upstream"),
            Hop::Direct if to_proxy => Some("client_only"),
            Hop::Direct => None,
        }
    }
}

/// The digest of a request head's method and target, for an upstream leg
/// without its body.
pub(super) fn head_digest(method: &str, target: &str) -> u64 {
    digest(method, target, b"")
}

/// A digest of what a proxy forwards unchanged: the HTTP method, the
/// target and the (de-chunked) body.
pub(super) fn digest(method: &str, target: &str, body: &[u8]) -> u64 {
    let mut h = FixedState::with_seed(0x6d63_7074_6170_6870).build_hasher();
    h.write(method.as_bytes());
    h.write_u8(0);
    h.write(target.as_bytes());
    h.write_u8(0);
    h.write(body);
    h.finish()
}

/// Known proxies and the client legs that may still be forwarded.
#[derive(Debug, Default)]
pub(super) struct Hops {
    proxies: HashSet<IpAddr, RandomState>,
    /// Pending requests to known proxies by (proxy address, digest), oldest first.
    legs: HashMap<(IpAddr, u64), VecDeque<(FlowId, u64)>, RandomState>,
    /// The same by (proxy address, [`head_digest`]), for upstream legs without
    /// a body (entries linked through `legs` stay until met, then dropped as stale).
    by_head: HashMap<(IpAddr, u64), VecDeque<(FlowId, u64)>, RandomState>,
    /// Entries in `legs`, and in `by_head`.
    indexed: usize,
    indexed_by_head: usize,
    /// Some request to a known proxy was indexed: upstream legs are worth
    /// looking up (a pod sidecar never sees one, and skips the digests).
    seen_client_leg: bool,
    /// The last [`Hops::is_proxy`] answer (servers repeat).
    last: Option<(IpAddr, bool)>,
}

impl Hops {
    /// `ip` forwarded requests (it sent believed forwarding headers).
    pub(super) fn is_proxy(&mut self, ip: IpAddr) -> bool {
        if self.proxies.is_empty() {
            return false;
        }
        if let Some((last, answer)) = self.last
            && last == ip
        {
            return answer;
        }
        let answer = self.proxies.contains(&ip);
        self.last = Some((ip, answer));
        answer
    }

    /// Requests need their [`digest`]: no proxy is known yet (the first
    /// one's pending requests are indexed when it is learned), or client
    /// legs have been seen.
    pub(super) fn needs_digest(&self) -> bool {
        self.proxies.is_empty() || self.seen_client_leg
    }

    /// Some client leg was indexed (else no upstream leg can be linked).
    pub(super) fn seen_client_leg(&self) -> bool {
        self.seen_client_leg
    }

    /// Remembers proxy `ip`; `true` when it is new (the caller then indexes
    /// the pending requests to it). Past [`MAX_PROXIES`] new ones are not kept.
    pub(super) fn learn_proxy(&mut self, ip: IpAddr) -> bool {
        if self.proxies.len() >= MAX_PROXIES || self.proxies.contains(&ip) {
            return false;
        }
        self.proxies.insert(ip);
        self.last = None;
        true
    }

    /// Indexes request `index` of `flow` to proxy `proxy`; `false` when the
    /// index was full and started over.
    pub(super) fn add_client_leg(
        &mut self,
        proxy: IpAddr,
        (digest, head): (u64, u64),
        flow: FlowId,
        index: u64,
    ) -> bool {
        let mut kept = true;
        if self.indexed >= MAX_LEGS || self.indexed_by_head >= MAX_LEGS {
            self.legs.clear();
            self.by_head.clear();
            (self.indexed, self.indexed_by_head) = (0, 0);
            kept = false;
        }
        self.legs
            .entry((proxy, digest))
            .or_default()
            .push_back((flow, index));
        self.by_head
            .entry((proxy, head))
            .or_default()
            .push_back((flow, index));
        self.indexed += 1;
        self.indexed_by_head += 1;
        self.seen_client_leg = true;
        kept
    }

    /// The oldest indexed client leg to `proxy` with `digest` that `judge`
    /// takes; the legs it calls stale (no longer pending) are dropped, the
    /// others (another client's) kept.
    /// With `by_head`, `digest` is a [`head_digest`] (an upstream leg
    /// without its body).
    pub(super) fn take_client_leg(
        &mut self,
        proxy: IpAddr,
        digest: u64,
        by_head: bool,
        mut judge: impl FnMut(FlowId, u64) -> Leg,
    ) -> Option<(FlowId, u64)> {
        let (map, indexed) = if by_head {
            (&mut self.by_head, &mut self.indexed_by_head)
        } else {
            (&mut self.legs, &mut self.indexed)
        };
        let queue = map.get_mut(&(proxy, digest))?;
        let mut found = None;
        let mut at = 0;
        while let Some(&(flow, index)) = queue.get(at) {
            match judge(flow, index) {
                Leg::Other => at += 1,
                verdict => {
                    queue.remove(at);
                    *indexed = indexed.saturating_sub(1);
                    if verdict == Leg::Take {
                        found = Some((flow, index));
                        break;
                    }
                }
            }
        }
        if queue.is_empty() {
            map.remove(&(proxy, digest));
        }
        found
    }
}

/// What [`Hops::take_client_leg`] does with an indexed leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Leg {
    /// This is the client leg.
    Take,
    /// No longer pending (or already linked): forget it.
    Stale,
    /// Pending, but not this one (another client's): keep it.
    Other,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn digest_covers_what_a_proxy_forwards() {
        let d = digest("POST", "/mcp", b"{}");
        assert_eq!(d, digest("POST", "/mcp", b"{}"));
        assert_ne!(d, digest("POST", "/mcpx", b"{}"));
        assert_ne!(d, digest("GET", "/mcp", b"{}"));
        assert_ne!(d, digest("POST", "/mcp", b"{ }"));
        assert_ne!(digest("POST", "/mc", b"p{}"), digest("POST", "/mcp", b"{}"));
    }

    #[test]
    fn client_legs_are_taken_oldest_first_stale_ones_dropped() {
        let mut h = Hops::default();
        let p = ip("10.0.0.10");
        assert!(!h.is_proxy(p));
        assert!(h.learn_proxy(p));
        assert!(!h.learn_proxy(p));
        assert!(h.is_proxy(p));
        for i in 0..3 {
            h.add_client_leg(p, (7, 70), FlowId(1), i);
        }
        h.add_client_leg(p, (8, 70), FlowId(2), 0);
        let take = |_, _| Leg::Take;
        assert_eq!(h.take_client_leg(p, 7, false, take), Some((FlowId(1), 0)));
        // Index 1 is another client's: kept; 2 taken.
        let not_1 = |_, i| if i == 1 { Leg::Other } else { Leg::Take };
        assert_eq!(h.take_client_leg(p, 7, false, not_1), Some((FlowId(1), 2)));
        // Now stale: dropped.
        assert_eq!(h.take_client_leg(p, 7, false, |_, _| Leg::Stale), None);
        assert_eq!(h.take_client_leg(p, 7, false, take), None);
        assert_eq!(h.take_client_leg(ip("10.0.0.11"), 8, false, take), None);
        assert_eq!(h.take_client_leg(p, 8, false, take), Some((FlowId(2), 0)));
        assert_eq!(h.indexed, 0);
        // By head: every leg was indexed there too; stale ones are dropped.
        let pending_2 = |f: FlowId, _| {
            if f == FlowId(2) {
                Leg::Take
            } else {
                Leg::Stale
            }
        };
        assert_eq!(
            h.take_client_leg(p, 70, true, pending_2),
            Some((FlowId(2), 0))
        );
        assert_eq!(h.indexed_by_head, 0);
    }

    #[test]
    fn the_index_is_bounded() {
        let mut h = Hops::default();
        let p = ip("10.0.0.10");
        for i in 0..MAX_LEGS as u64 {
            assert!(h.add_client_leg(p, (i, 0), FlowId(1), i));
        }
        assert!(
            !h.add_client_leg(p, (0, 0), FlowId(1), 0),
            "full: starts over"
        );
        assert_eq!(h.indexed, 1);
        for i in 0..MAX_PROXIES as u32 {
            h.learn_proxy(IpAddr::from(i.to_be_bytes()));
        }
        assert!(!h.learn_proxy(ip("192.0.2.1")));
    }
}
