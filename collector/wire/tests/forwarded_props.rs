//! Property tests of `mcptap_wire::forwarded`: total on arbitrary bytes, the
//! client is always the peer or an address from the headers, the chain walk
//! matches a plain model, `Forwarded` and `X-Forwarded-For` agree, and the
//! result does not depend on how a list is split over header lines.

use mcptap_wire::forwarded::{
    ClientIdentity, ClientSource, MAX_HOPS, TrustedProxies, resolve_client, workload_identity,
};
use proptest::prelude::*;
use std::net::{IpAddr, SocketAddr};

/// Addresses the chains are made of: in-cluster (trusted by default) and
/// outside ones, IPv4, IPv6 and IPv4-mapped.
const POOL: [&str; 10] = [
    "10.0.0.1",
    "192.168.7.7",
    "127.0.0.6",
    "fd00::5",
    "::ffff:10.9.0.1",
    "203.0.113.7",
    "198.51.100.20",
    "2001:db8::17",
    "2001:db8:cafe::1",
    "::ffff:198.51.100.9",
];

fn pool(i: usize) -> IpAddr {
    POOL[i % POOL.len()].parse().expect("pool address")
}

/// One hop of a generated chain.
#[derive(Debug, Clone)]
enum Hop {
    Addr(IpAddr, Option<u16>),
    /// Not an address: `unknown`, obfuscated, garbage, empty.
    Junk(&'static str),
}

const JUNK: [&str; 6] = ["unknown", "_hidden", "bogus", "1.2.3", "[::1", ""];

fn hop() -> impl Strategy<Value = Hop> {
    prop_oneof![
        8 => (0..POOL.len(), proptest::option::of(1u16..)).prop_map(|(i, p)| Hop::Addr(pool(i), p)),
        1 => (0..JUNK.len()).prop_map(|j| Hop::Junk(JUNK[j])),
    ]
}

fn addr_hops() -> impl Strategy<Value = Vec<Hop>> {
    prop::collection::vec(
        (0..POOL.len(), proptest::option::of(1u16..)).prop_map(|(i, p)| Hop::Addr(pool(i), p)),
        1..80,
    )
}

/// The hop as an `X-Forwarded-For` element (`bracket`: IPv6 in brackets
/// even without a port).
fn xff(h: &Hop, bracket: bool) -> String {
    match h {
        Hop::Junk(j) => (*j).to_owned(),
        Hop::Addr(IpAddr::V4(a), Some(p)) => format!("{a}:{p}"),
        Hop::Addr(IpAddr::V4(a), None) => a.to_string(),
        Hop::Addr(IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        Hop::Addr(IpAddr::V6(a), None) if bracket => format!("[{a}]"),
        Hop::Addr(IpAddr::V6(a), None) => a.to_string(),
    }
}

/// The hop as a `Forwarded` element (RFC 7239 §4, §6), with extra pairs.
fn forwarded(h: &Hop, extra: bool) -> String {
    let node = match h {
        Hop::Junk("") => return String::new(),
        Hop::Junk(j) => (*j).to_owned(),
        Hop::Addr(IpAddr::V4(a), None) => a.to_string(),
        other => format!("\"{}\"", xff(other, true)),
    };
    if extra {
        format!("proto=https;for={node};by=\"[::1]:80\"")
    } else {
        format!("for={node}")
    }
}

/// Splits `elements` into header lines at the `cuts` (element boundaries).
fn lines(elements: &[String], cuts: &[usize]) -> Vec<String> {
    let mut at: Vec<usize> = cuts.iter().map(|c| c % (elements.len() + 1)).collect();
    at.sort_unstable();
    at.dedup();
    let mut out = Vec::new();
    let mut from = 0;
    for c in at.into_iter().chain(std::iter::once(elements.len())) {
        if c > from {
            out.push(elements[from..c].join(", "));
            from = c;
        }
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out
}

fn resolve_lines(peer: SocketAddr, name: &str, values: &[String]) -> ClientIdentity {
    let pairs: Vec<(&[u8], &[u8])> = values
        .iter()
        .map(|v| (name.as_bytes(), v.as_bytes()))
        .collect();
    resolve_client(peer, pairs, &TrustedProxies::default())
}

/// The plain model of the walk over a chain of addresses only: from the
/// right, the first untrusted address, else the leftmost; at most
/// `MAX_HOPS` elements. Returns (address, port, hops).
fn model(chain: &[(IpAddr, Option<u16>)], t: &TrustedProxies) -> (IpAddr, Option<u16>, u16) {
    let mut last = None;
    for (k, &(a, p)) in chain.iter().rev().take(MAX_HOPS).enumerate() {
        if !t.contains(a) {
            return (a, p, k as u16 + 1);
        }
        last = Some((a, p, k as u16 + 1));
    }
    last.expect("non-empty chain")
}

fn peer() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        Just("10.0.3.7:41000".parse().expect("peer")),
        Just("[::1]:9000".parse().expect("peer")),
        Just("198.18.0.9:52000".parse().expect("peer")),
        (0..POOL.len(), any::<u16>()).prop_map(|(i, p)| SocketAddr::new(pool(i), p)),
    ]
}

const NAMES: [&str; 7] = [
    "Forwarded",
    "x-forwarded-for",
    "X-Real-IP",
    "x-forwarded-client-cert",
    "l5d-client-id",
    "Host",
    "FORWARDED",
];

fn headers() -> impl Strategy<Value = Vec<(usize, Vec<u8>)>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"0123456789abcdef.:[]\",;= _\\\tforunknowURIspife/".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec((0..NAMES.len(), prop::collection::vec(byte, 0..120)), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Arbitrary header bytes: no panic, and the client is the peer unless a
    /// header of its source was there; hops within the bound.
    #[test]
    fn total_on_arbitrary_bytes(peer in peer(), hs in headers()) {
        let pairs: Vec<(&[u8], &[u8])> = hs.iter().map(|(n, v)| (NAMES[*n].as_bytes(), &v[..])).collect();
        let t = TrustedProxies::default();
        let id = resolve_client(peer, pairs.iter().copied(), &t);
        prop_assert!(usize::from(id.hops) <= MAX_HOPS);
        let wanted = match id.source {
            ClientSource::Peer => {
                prop_assert_eq!((id.address, id.port, id.hops), (peer.ip(), Some(peer.port()), 0));
                None
            }
            ClientSource::Forwarded => Some("forwarded"),
            ClientSource::XForwardedFor => Some("x-forwarded-for"),
            ClientSource::XRealIp => Some("x-real-ip"),
        };
        if let Some(name) = wanted {
            prop_assert!(t.contains(peer.ip()));
            prop_assert!(pairs.iter().any(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())));
        }
        let workload = workload_identity(peer, pairs.iter().copied(), &t);
        if let Some(w) = &workload {
            prop_assert!(t.contains(peer.ip()));
            prop_assert!(!w.id.is_empty() && w.id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
        }
        // Each name's lines joined into one line give the same answers.
        let joined: Vec<(Vec<u8>, Vec<u8>)> = NAMES
            .iter()
            .filter_map(|name| {
                let vals: Vec<&[u8]> = pairs.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| *v).collect();
                (!vals.is_empty() && !NAMES[..NAMES.iter().position(|x| x == name).unwrap_or(0)]
                    .iter()
                    .any(|earlier| earlier.eq_ignore_ascii_case(name)))
                .then(|| (name.as_bytes().to_vec(), vals.join(&b", "[..])))
            })
            .collect();
        let jp = || joined.iter().map(|(n, v)| (&n[..], &v[..]));
        prop_assert_eq!(resolve_client(peer, jp(), &t), id);
        prop_assert_eq!(workload_identity(peer, jp(), &t), workload);
    }

    /// Generated chains with junk: the client is the peer or one of the
    /// chain's addresses (with its port).
    #[test]
    fn client_is_the_peer_or_a_listed_address(
        peer in peer(),
        chain in prop::collection::vec(hop(), 0..20),
        as_forwarded in any::<bool>(),
        bracket in any::<bool>(),
    ) {
        let (name, elements): (&str, Vec<String>) = if as_forwarded {
            ("Forwarded", chain.iter().map(|h| forwarded(h, bracket)).collect())
        } else {
            ("X-Forwarded-For", chain.iter().map(|h| xff(h, bracket)).collect())
        };
        let id = resolve_lines(peer, name, &[elements.join(", ")]);
        let listed = chain.iter().any(|h| matches!(h, Hop::Addr(a, p) if (*a, *p) == (id.address, id.port)));
        prop_assert!(
            (id.source == ClientSource::Peer && id.address == peer.ip()) || listed,
            "{:?} from {:?}", id, elements
        );
    }

    /// Chains of addresses only: the walk is the model's, for XFF (IPv6
    /// bracketed or not) and Forwarded alike.
    #[test]
    fn walk_matches_the_model(chain in addr_hops(), bracket in any::<bool>(), extra in any::<bool>()) {
        let peer: SocketAddr = "10.0.3.7:41000".parse().expect("peer");
        let t = TrustedProxies::default();
        let plain: Vec<(IpAddr, Option<u16>)> = chain
            .iter()
            .map(|h| match h { Hop::Addr(a, p) => (*a, *p), Hop::Junk(_) => unreachable!() })
            .collect();
        let (addr, port, hops) = model(&plain, &t);
        let x = resolve_lines(peer, "X-Forwarded-For", &[chain.iter().map(|h| xff(h, bracket)).collect::<Vec<_>>().join(",")]);
        prop_assert_eq!((x.address, x.port, x.hops, x.source), (addr, port, hops, ClientSource::XForwardedFor));
        let f = resolve_lines(peer, "Forwarded", &[chain.iter().map(|h| forwarded(h, extra)).collect::<Vec<_>>().join(", ")]);
        prop_assert_eq!((f.address, f.port, f.hops, f.source), (addr, port, hops, ClientSource::Forwarded));
        prop_assert_eq!(x.anomaly, f.anomaly);
    }

    /// A list split over any number of header lines reads as one
    /// (RFC 9110 §5.3), for XFF, Forwarded and XFCC.
    #[test]
    fn independent_of_header_line_splits(
        peer in peer(),
        chain in prop::collection::vec(hop(), 0..30),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
        uris in prop::collection::vec("[a-z]{1,8}", 1..6),
    ) {
        let xffs: Vec<String> = chain.iter().map(|h| xff(h, false)).collect();
        let fwds: Vec<String> = chain.iter().map(|h| forwarded(h, true)).collect();
        for (name, elements) in [("X-Forwarded-For", &xffs), ("Forwarded", &fwds)] {
            let whole = resolve_lines(peer, name, &[elements.join(", ")]);
            let split = resolve_lines(peer, name, &lines(elements, &cuts));
            prop_assert_eq!(whole, split, "{:?}", lines(elements, &cuts));
        }
        let elements: Vec<String> = uris
            .iter()
            .map(|u| format!("By=spiffe://td/me;Subject=\"CN=x, O=y;z\";URI=spiffe://td/{u}"))
            .collect();
        let t = TrustedProxies::default();
        let one = [elements.join(",")];
        let split = lines(&elements, &cuts);
        let get = |vals: &[String]| {
            let pairs: Vec<(&[u8], &[u8])> = vals.iter().map(|v| (&b"x-forwarded-client-cert"[..], v.as_bytes())).collect();
            workload_identity(peer, pairs, &t).map(|w| w.id.into_owned())
        };
        prop_assert_eq!(get(&one), get(&split));
        if t.contains(peer.ip()) {
            prop_assert_eq!(get(&one), Some(format!("spiffe://td/{}", uris[uris.len() - 1])));
        }
    }
}
