//! Mesh workload identity of the client: Envoy/Istio
//! `x-forwarded-client-cert` (XFCC) and Linkerd `l5d-client-id`.

use super::node::trim_ows;
use super::{TrustedProxies, Values};
use std::borrow::Cow;
use std::net::SocketAddr;

/// Most bytes of an `x-forwarded-client-cert` value read (all its lines
/// joined; `Cert=`/`Chain=` carry URL-encoded PEM, several KiB each). A
/// longer one is not read.
pub const MAX_XFCC_BYTES: usize = 64 * 1024;

/// Longest workload identity accepted, in bytes (a SPIFFE ID is at most
/// 2048 bytes, SPIFFE-ID §2.3).
pub const MAX_WORKLOAD_ID_BYTES: usize = 2048;

/// Longest `l5d-client-id` accepted (a DNS name, RFC 1035 §2.3.4).
const MAX_DNS_NAME: usize = 253;

/// Which header gave a [`WorkloadIdentity`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WorkloadSource {
    /// Envoy/Istio `x-forwarded-client-cert`: a `URI=` of its last element.
    Xfcc,
    /// Linkerd `l5d-client-id`.
    L5dClientId,
}

impl WorkloadSource {
    /// The header name, lowercase (for an attribute or a metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadSource::Xfcc => "x-forwarded-client-cert",
            WorkloadSource::L5dClientId => "l5d-client-id",
        }
    }
}

/// The client's mesh workload identity, as its mesh proxy vouched for it
/// (the peer certificate of the mTLS leg).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkloadIdentity<'a> {
    /// The identity: a URI from XFCC, usually a SPIFFE ID
    /// (`spiffe://cluster.local/ns/default/sa/sleep`), or a Linkerd
    /// DNS-like name (`web.emojivoto.serviceaccount.identity.linkerd.cluster.local`).
    /// Printable ASCII without spaces, 1 to [`MAX_WORKLOAD_ID_BYTES`] bytes.
    /// Borrowed from the header when it needs no unescaping.
    pub id: Cow<'a, str>,
    /// Which header it came from.
    pub source: WorkloadSource,
}

impl WorkloadIdentity<'_> {
    /// The same identity, owned.
    pub fn into_owned(self) -> WorkloadIdentity<'static> {
        WorkloadIdentity {
            id: Cow::Owned(self.id.into_owned()),
            source: self.source,
        }
    }
}

/// The client's mesh workload identity, when the socket peer is a trusted
/// proxy (the mesh sidecar, on loopback) and it sent one.
///
/// `x-forwarded-client-cert` first (Envoy's format: `,`-separated elements,
/// one per proxy, the current client's last; `;`-separated `Key=value`
/// pairs; values may be double-quoted, with `\"` escapes, and hold `,`, `;`
/// and `=` inside quotes; keys case-insensitive): the first `URI=` of the
/// LAST element that starts with `spiffe://`, else its first `URI=`. Then
/// `l5d-client-id`: one DNS-like name (labels of letters, digits and `-`,
/// 1 to 63 bytes each, 253 at most). Repeated lines of a header are joined
/// with `,` first (RFC 9110 §5.3), so two `l5d-client-id` lines give none.
///
/// `None` when the peer is not trusted, neither header is there, or the
/// value is malformed, an unterminated quoted string, longer than
/// [`MAX_XFCC_BYTES`], or the identity not printable ASCII. Linear in the
/// header bytes; no input panics.
pub fn workload_identity<'a>(
    peer: SocketAddr,
    headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>,
    trusted: &TrustedProxies,
) -> Option<WorkloadIdentity<'a>> {
    if !trusted.contains(peer.ip()) {
        return None;
    }
    let (mut xfcc, mut l5d) = (Values::default(), Values::default());
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(b"x-forwarded-client-cert") {
            xfcc.push(value);
        } else if name.eq_ignore_ascii_case(b"l5d-client-id") {
            l5d.push(value);
        }
    }
    if xfcc.first.is_some() {
        let (value, truncated) = xfcc.joined_tail(MAX_XFCC_BYTES);
        if !truncated && let Some(id) = xfcc_uri(value) {
            return Some(WorkloadIdentity {
                id,
                source: WorkloadSource::Xfcc,
            });
        }
    }
    if l5d.first.is_some() {
        let (value, truncated) = l5d.joined_tail(MAX_DNS_NAME + 1);
        if truncated {
            return None;
        }
        let id = sub_cow(value, |v| {
            let s = trim_ows(v);
            let start = s.as_ptr() as usize - v.as_ptr() as usize;
            is_dns_name(s).then_some((start, start + s.len()))
        })?;
        return Some(WorkloadIdentity {
            id,
            source: WorkloadSource::L5dClientId,
        });
    }
    None
}

/// `value[range]` as text, borrowed when `value` is, if `find` gives a
/// range of printable ASCII.
fn sub_cow<'a>(
    value: Cow<'a, [u8]>,
    find: impl Fn(&[u8]) -> Option<(usize, usize)>,
) -> Option<Cow<'a, str>> {
    let (start, end) = find(&value)?;
    match value {
        Cow::Borrowed(v) => std::str::from_utf8(v.get(start..end)?)
            .ok()
            .map(Cow::Borrowed),
        Cow::Owned(v) => std::str::from_utf8(v.get(start..end)?)
            .ok()
            .map(|s| Cow::Owned(s.to_owned())),
    }
}

fn is_dns_name(s: &[u8]) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DNS_NAME
        && s.split(|&b| b == b'.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn is_id(s: &[u8]) -> bool {
    (1..=MAX_WORKLOAD_ID_BYTES).contains(&s.len()) && s.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

/// Top-level positions of `sep` in `s` (outside double quotes, `\`
/// escaping the next byte inside them), and whether every quote closed.
fn split_top(s: &[u8], sep: u8) -> (Vec<usize>, bool) {
    let (mut at, mut quoted, mut i) = (Vec::new(), false, 0);
    while let Some(&b) = s.get(i) {
        match (quoted, b) {
            (false, _) if b == sep => at.push(i),
            (_, b'"') => quoted = !quoted,
            (true, b'\\') => i += 1,
            _ => {}
        }
        i += 1;
    }
    (at, !quoted)
}

/// The start of the last top-level element of `s` (after its last
/// top-level `,`), or `None` when a quoted string does not close.
fn last_element_start(s: &[u8]) -> Option<usize> {
    let (mut quoted, mut i, mut start) = (false, 0, 0);
    while let Some(&b) = s.get(i) {
        match (quoted, b) {
            (false, b',') => start = i + 1,
            (_, b'"') => quoted = !quoted,
            (true, b'\\') => i += 1,
            _ => {}
        }
        i += 1;
    }
    (!quoted).then_some(start)
}

/// The URI (see [`workload_identity`]) of the last element of an XFCC value.
fn xfcc_uri(value: Cow<'_, [u8]>) -> Option<Cow<'_, str>> {
    let start = last_element_start(&value)?;
    let element = value.get(start..)?;
    let (semis, _) = split_top(element, b';');
    let mut bounds = Vec::with_capacity(semis.len() + 2);
    bounds.push(0);
    bounds.extend(semis.iter().map(|&p| p + 1));
    let ends = semis.iter().copied().chain(std::iter::once(element.len()));
    let mut first: Option<(usize, usize, bool)> = None;
    for (&from, to) in bounds.iter().zip(ends) {
        let pair = element.get(from..to).unwrap_or_default();
        let Some(eq) = pair.iter().position(|&b| b == b'=') else {
            continue;
        };
        if !trim_ows(pair.get(..eq).unwrap_or_default()).eq_ignore_ascii_case(b"uri") {
            continue;
        }
        let raw = pair.get(eq + 1..).unwrap_or_default();
        let v = trim_ows(raw);
        let off = start + from + eq + 1 + (v.as_ptr() as usize - raw.as_ptr() as usize);
        let (off, len, quoted) = match v {
            [b'"', inner @ .., b'"'] => (off + 1, inner.len(), true),
            _ => (off, v.len(), false),
        };
        let spiffe = value
            .get(off..off + len)
            .is_some_and(|u| u.len() >= 9 && u[..9].eq_ignore_ascii_case(b"spiffe://"));
        if spiffe {
            return uri_text(value, off, off + len, quoted);
        }
        first.get_or_insert((off, off + len, quoted));
    }
    let (from, to, quoted) = first?;
    uri_text(value, from, to, quoted)
}

/// `value[from..to]`, quoted-pairs unescaped when `quoted`, if it is an
/// identity ([`is_id`]).
fn uri_text(value: Cow<'_, [u8]>, from: usize, to: usize, quoted: bool) -> Option<Cow<'_, str>> {
    let raw = value.get(from..to)?;
    if quoted && raw.contains(&b'\\') {
        let mut out = Vec::with_capacity(raw.len());
        let mut it = raw.iter();
        while let Some(&b) = it.next() {
            out.push(if b == b'\\' { *it.next()? } else { b });
        }
        return is_id(&out)
            .then(|| String::from_utf8(out).ok())
            .flatten()
            .map(Cow::Owned);
    }
    if !is_id(raw) {
        return None;
    }
    sub_cow(value, |_| Some((from, to)))
}
