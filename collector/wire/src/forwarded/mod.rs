//! Who the client is behind proxies and meshes, from the socket peer and the
//! request's forwarding headers: pure, total and bounded on any input.
//!
//! - [`resolve_client`]: the original client's address and port (OTel
//!   `client.address`/`client.port`) from `Forwarded` (RFC 7239 `for=`),
//!   else `X-Forwarded-For`, else `X-Real-IP`, else the socket peer (OTel
//!   `network.peer.address`/`network.peer.port`, always the caller's
//!   `peer`).
//! - [`workload_identity`]: the mesh workload identity of the client: the
//!   SPIFFE URI in Envoy/Istio `x-forwarded-client-cert`, or Linkerd's
//!   `l5d-client-id`.
//!
//! Both believe headers only when the socket peer is a [`TrustedProxies`]
//! address: anyone else could have written them.
//!
//! ```
//! use mcptap_wire::forwarded::{resolve_client, ClientSource, TrustedProxies};
//!
//! let trusted = TrustedProxies::default(); // private, loopback, link-local
//! // ingress-nginx at 10.0.3.7 forwarded a request from 203.0.113.9.
//! let headers: [(&[u8], &[u8]); 1] = [(b"X-Forwarded-For", b"198.51.100.4, 203.0.113.9")];
//! let id = resolve_client("10.0.3.7:41000".parse().unwrap(), headers, &trusted);
//! assert_eq!(id.address.to_string(), "203.0.113.9");
//! assert_eq!(id.source, ClientSource::XForwardedFor);
//! assert_eq!(id.hops, 1);
//! assert_eq!(id.anomaly, None);
//! ```
//!
//! With a [`Headers`](crate::Headers) table: `resolve_client(conn.client,
//! req.headers.iter_bytes(), &trusted)`.

mod chain;
mod node;
mod trusted;
mod workload;

pub use chain::MAX_HOPS;
pub use trusted::{TrustedProxies, TrustedProxiesError};
pub use workload::{
    MAX_WORKLOAD_ID_BYTES, MAX_XFCC_BYTES, WorkloadIdentity, WorkloadSource, workload_identity,
};

use chain::{ForwardedHops, Walk, XffRev, walk};
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

/// Most bytes of a `Forwarded` value read (all of its header lines joined);
/// a longer one is not read at all ([`Anomaly::TooLong`], the client is the
/// socket peer): its elements cannot be split from the right without
/// reading its quoted strings from the left.
pub const MAX_FORWARDED_BYTES: usize = 16 * 1024;

/// Most bytes of an `X-Forwarded-For` or `X-Real-IP` value read, from its
/// right end: the walk never looks further left ([`Anomaly::TooLong`] if
/// it gets there).
pub const MAX_XFF_BYTES: usize = 16 * 1024;

/// Where [`ClientIdentity::address`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientSource {
    /// `Forwarded: for=` (RFC 7239 §5.2).
    Forwarded,
    /// `X-Forwarded-For` (de facto: comma-separated addresses, client first,
    /// each proxy appending the address it received the request from).
    XForwardedFor,
    /// `X-Real-IP` (nginx `proxy_set_header X-Real-IP $remote_addr`).
    XRealIp,
    /// The socket peer: no (believed) forwarding header.
    Peer,
}

impl ClientSource {
    /// The header sources in the default precedence (RFC 7239 first).
    pub const DEFAULT_ORDER: [ClientSource; 3] = [
        ClientSource::Forwarded,
        ClientSource::XForwardedFor,
        ClientSource::XRealIp,
    ];

    /// Stable lowercase name (the header name, or `peer`), for an attribute
    /// or a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientSource::Forwarded => "forwarded",
            ClientSource::XForwardedFor => "x-forwarded-for",
            ClientSource::XRealIp => "x-real-ip",
            ClientSource::Peer => "peer",
        }
    }
}

/// Something wrong or unusual in the forwarding headers, one per request
/// (for a counter by [`Anomaly::as_str`]). The identity is still usable:
/// see [`resolve_client`] for where each one leaves the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Anomaly {
    /// Forwarding headers from a socket peer that is not a trusted proxy:
    /// ignored (the peer is the client). Often a `--trusted-proxies` that
    /// misses the ingress.
    UntrustedPeer,
    /// A hop that is not a node (RFC 7239 §6): garbage, a bad port, an
    /// unterminated quoted string, `Forwarded` syntax errors or a repeated
    /// `for=` in one element (§4).
    Malformed,
    /// A hop that hides the next one: `unknown` (RFC 7239 §6.2), an
    /// obfuscated identifier `_x` (§6.3), or a `Forwarded` element without
    /// `for=`.
    Hidden,
    /// An IPv6 address without brackets in `Forwarded` (RFC 7239 §6
    /// requires `"[2001:db8::1]"`); accepted.
    UnbracketedIpv6,
    /// [`MAX_HOPS`] elements examined without reaching the client.
    TooManyHops,
    /// A value longer than [`MAX_FORWARDED_BYTES`] / [`MAX_XFF_BYTES`].
    TooLong,
}

impl Anomaly {
    /// Stable snake_case name, for a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Anomaly::UntrustedPeer => "untrusted_peer",
            Anomaly::Malformed => "malformed",
            Anomaly::Hidden => "hidden",
            Anomaly::UnbracketedIpv6 => "unbracketed_ipv6",
            Anomaly::TooManyHops => "too_many_hops",
            Anomaly::TooLong => "too_long",
        }
    }
}

/// The original client of one request (OTel HTTP server `client.address`,
/// `client.port`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientIdentity {
    /// The client's address: the socket peer or an address written in the
    /// headers, as written (an IPv4-mapped IPv6 address stays one).
    pub address: IpAddr,
    /// The client's port when known: the peer's port, or the port written
    /// next to the address (`"[2001:db8::1]:4711"`, `192.0.2.1:5678`);
    /// `None` when the header gives none or an obfuscated one.
    pub port: Option<u16>,
    /// Which header (or the peer) gave `address`.
    pub source: ClientSource,
    /// Trusted proxies between the client and the capture point, the
    /// socket peer included: 0 when the client is the peer, 1 behind one
    /// proxy, ...; at most [`MAX_HOPS`].
    pub hops: u16,
    /// What was wrong or unusual, if anything.
    pub anomaly: Option<Anomaly>,
}

impl ClientIdentity {
    /// The socket peer as the client.
    fn peer(peer: SocketAddr, anomaly: Option<Anomaly>) -> Self {
        ClientIdentity {
            address: peer.ip(),
            port: Some(peer.port()),
            source: ClientSource::Peer,
            hops: 0,
            anomaly,
        }
    }
}

/// The values of one header name in wire order, borrowed.
#[derive(Default)]
struct Values<'a> {
    first: Option<&'a [u8]>,
    rest: Vec<&'a [u8]>,
}

impl<'a> Values<'a> {
    fn push(&mut self, v: &'a [u8]) {
        if self.first.is_none() {
            self.first = Some(v);
        } else {
            self.rest.push(v);
        }
    }

    fn all(&self) -> impl DoubleEndedIterator<Item = &'a [u8]> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }

    /// The values as one list, joined by `, ` (RFC 9110 §5.3), only its
    /// last `cap` bytes: borrowed when there is one value. `true` when
    /// bytes were left out on the left.
    fn joined_tail(&self, cap: usize) -> (Cow<'a, [u8]>, bool) {
        let Some(first) = self.first else {
            return (Cow::Borrowed(&[]), false);
        };
        if self.rest.is_empty() {
            let cut = first.len().saturating_sub(cap);
            return (Cow::Borrowed(first.get(cut..).unwrap_or_default()), cut > 0);
        }
        // Only the last values that reach `cap` are copied.
        let (mut take, mut bytes) = (0usize, 0usize);
        for v in self.all().rev() {
            take += 1;
            bytes += v.len() + 2;
            if bytes > cap + 2 {
                break;
            }
        }
        let skip = self.rest.len() + 1 - take;
        let mut buf = Vec::with_capacity(bytes);
        for (k, v) in self.all().skip(skip).enumerate() {
            if k > 0 {
                buf.extend_from_slice(b", ");
            }
            buf.extend_from_slice(v);
        }
        let cut = buf.len().saturating_sub(cap);
        buf.drain(..cut);
        (Cow::Owned(buf), skip > 0 || cut > 0)
    }
}

/// The forwarding headers of one request.
#[derive(Default)]
struct Forwarding<'a> {
    forwarded: Values<'a>,
    xff: Values<'a>,
    real_ip: Values<'a>,
}

impl<'a> Forwarding<'a> {
    fn collect(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Self {
        let mut f = Forwarding::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"forwarded") {
                f.forwarded.push(value);
            } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
                f.xff.push(value);
            } else if name.eq_ignore_ascii_case(b"x-real-ip") {
                f.real_ip.push(value);
            }
        }
        f
    }

    fn any(&self) -> bool {
        self.forwarded.first.is_some() || self.xff.first.is_some() || self.real_ip.first.is_some()
    }

    fn walk(&self, source: ClientSource, trusted: &TrustedProxies) -> Walk {
        let list = |values: &Values<'_>| {
            let (value, truncated) = values.joined_tail(MAX_XFF_BYTES);
            walk(XffRev::new(&value, truncated), trusted, false)
        };
        match source {
            ClientSource::Forwarded => {
                if self.forwarded.first.is_none() {
                    return Walk::Absent;
                }
                let (value, truncated) = self.forwarded.joined_tail(MAX_FORWARDED_BYTES);
                if truncated {
                    return Walk::Done {
                        pick: None,
                        hops: 0,
                        anomaly: Some(Anomaly::TooLong),
                    };
                }
                let hops = ForwardedHops::parse(&value);
                if !hops.usable {
                    return Walk::Absent;
                }
                walk(hops.rev(), trusted, true)
            }
            ClientSource::XForwardedFor => list(&self.xff),
            ClientSource::XRealIp => list(&self.real_ip),
            ClientSource::Peer => Walk::Absent,
        }
    }
}

/// The original client of a request: [`resolve_client_from`] with the
/// default precedence ([`ClientSource::DEFAULT_ORDER`]: `Forwarded`, then
/// `X-Forwarded-For`, then `X-Real-IP`).
///
/// `peer` is the socket peer (the flow's client endpoint); `headers` the
/// request's `(name, value)` pairs in wire order (names compared
/// ASCII-case-insensitively; e.g. [`Headers::iter_bytes`](crate::Headers::iter_bytes)).
pub fn resolve_client<'a>(
    peer: SocketAddr,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    trusted: &TrustedProxies,
) -> ClientIdentity {
    resolve_client_from(peer, headers, trusted, &ClientSource::DEFAULT_ORDER)
}

/// The original client of a request, reading the header sources in
/// `order` ([`ClientSource::Peer`] in it is ignored).
///
/// - The socket peer is the first hop. If it is not `trusted`, every
///   header is ignored (the client could have written them) and the peer
///   is the client ([`Anomaly::UntrustedPeer`] when it sent forwarding
///   headers).
/// - Otherwise the first source in `order` that names a hop is read:
///   repeated header lines are one list, joined in order (RFC 9110 §5.3);
///   empty elements are ignored (§5.6.1); a `Forwarded` without any `for=`
///   names no hop.
/// - Its chain is walked from the right, past every trusted address; the
///   first untrusted address is the client. If every hop is trusted, the
///   leftmost is the client.
/// - An element that is not an address (malformed: [`Anomaly::Malformed`];
///   `unknown` or obfuscated: [`Anomaly::Hidden`]), [`MAX_HOPS`] elements
///   ([`Anomaly::TooManyHops`]) or the byte bound ([`Anomaly::TooLong`])
///   stop the walk: the client is then the last good hop, the address just
///   right of where it stopped (that trusted proxy is the closest known
///   address of the client), or the peer if it stopped at the first
///   element. A `Forwarded` longer than [`MAX_FORWARDED_BYTES`] leaves the
///   peer.
///
/// Work is linear in the bytes of the headers, and the chain walk reads at
/// most [`MAX_HOPS`] elements and [`MAX_XFF_BYTES`] bytes; no input panics.
///
/// Caveat: a proxy that appends to one header but passes another through
/// unchanged (nginx appends to `X-Forwarded-For` but forwards a client's
/// `Forwarded` as is) lets the client choose its address through the
/// header read first; `order` (or the proxy stripping the header) fixes it.
pub fn resolve_client_from<'a>(
    peer: SocketAddr,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    trusted: &TrustedProxies,
    order: &[ClientSource],
) -> ClientIdentity {
    let found = Forwarding::collect(headers);
    if !trusted.contains(peer.ip()) {
        return ClientIdentity::peer(peer, found.any().then_some(Anomaly::UntrustedPeer));
    }
    for &source in order {
        match found.walk(source, trusted) {
            Walk::Absent => {}
            Walk::Done {
                pick: None,
                anomaly,
                ..
            } => return ClientIdentity::peer(peer, anomaly),
            Walk::Done {
                pick: Some((address, port)),
                hops,
                anomaly,
            } => {
                return ClientIdentity {
                    address,
                    port,
                    source,
                    hops,
                    anomaly,
                };
            }
        }
    }
    ClientIdentity::peer(peer, None)
}
