//! Client identity from forwarding headers (`mcptap_wire::forwarded`): the
//! examples of RFC 7239 (§4, §6, §7.1–7.5), the shapes nginx, haproxy and
//! write, trusted-proxy parsing, and hostile inputs (workload identity:
//! `forwarded_workload.rs`).

use mcptap_wire::forwarded::{
    Anomaly, ClientIdentity, ClientSource, MAX_HOPS, TrustedProxies, resolve_client,
    resolve_client_from,
};
use mcptap_wire::{Header, Headers};
use std::net::{IpAddr, SocketAddr};

/// An in-cluster proxy as the socket peer (trusted by default).
const PROXY: &str = "10.0.3.7:41000";
/// An outside socket peer (not trusted by default).
const OUTSIDE: &str = "198.18.0.9:52000";

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

fn trusted(s: &str) -> TrustedProxies {
    TrustedProxies::parse(s).expect("trusted proxies")
}

/// Resolves with `peer` and `headers` given as text pairs.
fn resolve_with(peer: &str, headers: &[(&str, &str)], t: &TrustedProxies) -> ClientIdentity {
    resolve_client(
        sa(peer),
        headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())),
        t,
    )
}

fn resolve(headers: &[(&str, &str)]) -> ClientIdentity {
    resolve_with(PROXY, headers, &TrustedProxies::default())
}

fn fwd(value: &str) -> ClientIdentity {
    resolve(&[("Forwarded", value)])
}

/// Asserts address, port, source, hops and anomaly.
#[track_caller]
fn check(
    id: ClientIdentity,
    addr: &str,
    port: Option<u16>,
    source: ClientSource,
    hops: u16,
    anomaly: Option<Anomaly>,
) {
    assert_eq!(
        (id.address, id.port, id.source, id.hops, id.anomaly),
        (ip(addr), port, source, hops, anomaly),
        "{id:?}"
    );
}

const F: ClientSource = ClientSource::Forwarded;
const XFF: ClientSource = ClientSource::XForwardedFor;
const PEER: ClientSource = ClientSource::Peer;

// --- RFC 7239 examples -----------------------------------------------------

#[test]
fn rfc7239_s4_examples() {
    // An obfuscated identifier hides the client: the proxy (peer) is the best known.
    check(
        fwd(r#"for="_gazonk""#),
        "10.0.3.7",
        Some(41000),
        PEER,
        0,
        Some(Anomaly::Hidden),
    );
    // Parameter names are case-insensitive; IPv6 in brackets with a port.
    check(
        fwd(r#"For="[2001:db8:cafe::17]:4711""#),
        "2001:db8:cafe::17",
        Some(4711),
        F,
        1,
        None,
    );
    check(
        fwd("for=192.0.2.60;proto=http;by=203.0.113.43"),
        "192.0.2.60",
        None,
        F,
        1,
        None,
    );
    // Two hops: the rightmost is untrusted, so it is the client...
    check(
        fwd("for=192.0.2.43, for=198.51.100.17"),
        "198.51.100.17",
        None,
        F,
        1,
        None,
    );
    // ... unless its proxy is trusted too.
    let t = trusted("default,198.51.100.0/24");
    let id = resolve_with(
        PROXY,
        &[("Forwarded", "for=192.0.2.43, for=198.51.100.17")],
        &t,
    );
    check(id, "192.0.2.43", None, F, 2, None);
}

#[test]
fn rfc7239_s6_nodes() {
    check(
        fwd(r#"for="192.0.2.43:47011""#),
        "192.0.2.43",
        Some(47011),
        F,
        1,
        None,
    );
    check(
        fwd(r#"for="[2001:db8:cafe::17]:47011""#),
        "2001:db8:cafe::17",
        Some(47011),
        F,
        1,
        None,
    );
    // §6.3: obfuscated port: address kept, port unknown.
    check(
        fwd(r#"for="192.0.2.43:_p1""#),
        "192.0.2.43",
        None,
        F,
        1,
        None,
    );
    // §6.3: obfuscated nodes.
    check(
        fwd("for=_hidden, for=_SEVKISEK"),
        "10.0.3.7",
        Some(41000),
        PEER,
        0,
        Some(Anomaly::Hidden),
    );
    // §6.2: unknown, behind a trusted hop: that hop is the last good one.
    check(
        fwd("for=unknown, for=10.1.1.1"),
        "10.1.1.1",
        None,
        F,
        1,
        Some(Anomaly::Hidden),
    );
}

#[test]
fn rfc7239_s7_1_lists_and_header_groups() {
    let t = trusted("default,2001:db8:cafe::/48");
    let one = "for=192.0.2.43,for=\"[2001:db8:cafe::17]\",for=unknown";
    let spaced = "for=192.0.2.43, for=\"[2001:db8:cafe::17]\", for=unknown";
    for v in [one, spaced] {
        let id = resolve_with(PROXY, &[("Forwarded", v)], &t);
        // `unknown` is the rightmost: nothing trustworthy beyond the peer.
        check(id, "10.0.3.7", Some(41000), PEER, 0, Some(Anomaly::Hidden));
    }
    // The same list split over a header group reads the same.
    let group = [
        ("Forwarded", "for=192.0.2.43"),
        ("Forwarded", "for=\"[2001:db8:cafe::17]\", for=unknown"),
    ];
    assert_eq!(
        resolve_with(PROXY, &group, &t),
        resolve_with(PROXY, &[("Forwarded", one)], &t)
    );
    // Without the `unknown` hop the walk passes the trusted IPv6 proxy.
    let id = resolve_with(
        PROXY,
        &[("Forwarded", "for=192.0.2.43, for=\"[2001:db8:cafe::17]\"")],
        &t,
    );
    check(id, "192.0.2.43", None, F, 2, None);
}

#[test]
fn rfc7239_s7_4_transition_from_x_forwarded_for() {
    let t = trusted("default,2001:db8:cafe::/48");
    let x = resolve_with(
        PROXY,
        &[("X-Forwarded-For", "192.0.2.43, 2001:db8:cafe::17")],
        &t,
    );
    let f = resolve_with(
        PROXY,
        &[("Forwarded", "for=192.0.2.43, for=\"[2001:db8:cafe::17]\"")],
        &t,
    );
    check(x, "192.0.2.43", None, XFF, 2, None);
    assert_eq!(
        (f.address, f.port, f.hops, f.anomaly),
        (x.address, x.port, x.hops, x.anomaly)
    );
    assert_eq!(f.source, F);
}

#[test]
fn rfc7239_s7_5_example_usage() {
    let v = "for=192.0.2.43, for=198.51.100.17;by=203.0.113.60;proto=http;host=example.com";
    check(fwd(v), "198.51.100.17", None, F, 1, None);
    let id = resolve_with(
        PROXY,
        &[("Forwarded", v)],
        &trusted("default,198.51.100.17"),
    );
    check(id, "192.0.2.43", None, F, 2, None);
}

#[test]
fn rfc7239_s5_5_extensions_and_quoted_pairs() {
    check(
        fwd(r#"key=value;token="\"quoted-string\"";for=192.0.2.1"#),
        "192.0.2.1",
        None,
        F,
        1,
        None,
    );
    // A quoted-pair inside the for= value itself.
    check(
        fwd(r#"for="\[2001:db8::1\]:80""#),
        "2001:db8::1",
        Some(80),
        F,
        1,
        None,
    );
    // Commas and semicolons inside quoted strings are not separators.
    check(
        fwd(r#"for=192.0.2.9;host="a,b;c", for=10.0.0.5"#),
        "192.0.2.9",
        None,
        F,
        2,
        None,
    );
}

// --- Forwarded leniency and errors -------------------------------------------

#[test]
fn forwarded_lenient_forms() {
    // IPv6 without brackets: accepted, flagged.
    check(
        fwd(r#"for="2001:db8::1""#),
        "2001:db8::1",
        None,
        F,
        1,
        Some(Anomaly::UnbracketedIpv6),
    );
    // Unquoted brackets and ports (not tokens, but common).
    check(
        fwd("for=[2001:db8::1]:8443"),
        "2001:db8::1",
        Some(8443),
        F,
        1,
        None,
    );
    check(
        fwd("for=192.0.2.1:8080"),
        "192.0.2.1",
        Some(8080),
        F,
        1,
        None,
    );
    // Whitespace around pairs, empty pairs and elements.
    check(
        fwd(" proto=https ; for=192.0.2.1 ;; , ,"),
        "192.0.2.1",
        None,
        F,
        1,
        None,
    );
}

#[test]
fn forwarded_errors_fall_back_to_the_last_good_hop() {
    let malformed = Some(Anomaly::Malformed);
    for v in [
        "for=",
        "for=192.0.2.1;for=192.0.2.2",
        "for=not-an-address",
        "for=\"[192.0.2.1]\"",
        "for=\"[2001:db8::1]x\"",
        "for=192.0.2.1:99999",
        "for=fe80::1%eth0",
        "garbage",
        "=x",
        "for=1.2.3.4 junk",
    ] {
        check(fwd(v), "10.0.3.7", Some(41000), PEER, 0, malformed);
        let behind = format!("{v}, for=10.9.9.9:1234");
        check(fwd(&behind), "10.9.9.9", Some(1234), F, 1, malformed);
    }
    // An unterminated quoted string swallows the rest of the list.
    check(
        fwd("for=10.9.9.9, for=\"192.0.2.1, for=10.9.9.8"),
        "10.0.3.7",
        Some(41000),
        PEER,
        0,
        malformed,
    );
}

#[test]
fn forwarded_without_for_falls_through_to_x_forwarded_for() {
    let id = resolve(&[
        ("Forwarded", "proto=https;host=example.com"),
        ("X-Forwarded-For", "192.0.2.7"),
    ]);
    check(id, "192.0.2.7", None, XFF, 1, None);
    // An empty Forwarded too.
    check(
        resolve(&[("Forwarded", " , "), ("X-Real-IP", "192.0.2.8")]),
        "192.0.2.8",
        None,
        ClientSource::XRealIp,
        1,
        None,
    );
}

#[test]
fn forwarded_too_long_is_not_read() {
    let v = format!("for=192.0.2.1;x=\"{}\"", "a".repeat(20_000));
    check(
        fwd(&v),
        "10.0.3.7",
        Some(41000),
        PEER,
        0,
        Some(Anomaly::TooLong),
    );
}

// --- X-Forwarded-For / X-Real-IP: real shapes ----------------------------------

#[test]
fn nginx_proxy_add_x_forwarded_for() {
    // The client forged an XFF; nginx appended the address it saw.
    let id = resolve(&[
        ("X-Forwarded-For", "1.1.1.1, 203.0.113.9"),
        ("X-Real-IP", "203.0.113.9"),
    ]);
    check(id, "203.0.113.9", None, XFF, 1, None);
    // Two in-cluster hops (ingress, then a pod proxy) behind the client.
    let id = resolve(&[("X-Forwarded-For", "203.0.113.9, 10.0.1.5, 10.0.2.6")]);
    check(id, "203.0.113.9", None, XFF, 3, None);
    // A private-range client: every hop trusted, the leftmost is the client.
    let id = resolve(&[("X-Forwarded-For", "192.168.1.20, 10.0.1.5")]);
    check(id, "192.168.1.20", None, XFF, 2, None);
    // Only X-Real-IP (nginx `proxy_set_header X-Real-IP $remote_addr`).
    check(
        resolve(&[("X-Real-IP", "203.0.113.10")]),
        "203.0.113.10",
        None,
        ClientSource::XRealIp,
        1,
        None,
    );
}

#[test]
fn haproxy_option_forwardfor_adds_a_header_line() {
    // haproxy appends its own X-Forwarded-For line after the client's.
    let id = resolve(&[
        ("x-forwarded-for", "1.1.1.1"),
        ("X-Forwarded-For", "203.0.113.9"),
    ]);
    check(id, "203.0.113.9", None, XFF, 1, None);
    check(
        resolve(&[("X-Forwarded-For", "2001:db8::5")]),
        "2001:db8::5",
        None,
        XFF,
        1,
        None,
    );
}

#[test]
fn x_forwarded_for_address_forms() {
    let cases: [(&str, &str, Option<u16>); 7] = [
        ("2001:db8::1", "2001:db8::1", None),
        ("[2001:db8::1]", "2001:db8::1", None),
        ("[2001:db8::1]:4711", "2001:db8::1", Some(4711)),
        ("1.2.3.4:5678", "1.2.3.4", Some(5678)),
        ("  1.2.3.4\t", "1.2.3.4", None),
        ("::ffff:198.51.100.1", "::ffff:198.51.100.1", None),
        (",, 1.2.3.4 ,,", "1.2.3.4", None),
    ];
    for (v, addr, port) in cases {
        check(resolve(&[("X-Forwarded-For", v)]), addr, port, XFF, 1, None);
    }
    // `unknown` in XFF hides like in Forwarded.
    check(
        resolve(&[("X-Forwarded-For", "unknown, 10.0.0.8")]),
        "10.0.0.8",
        None,
        XFF,
        1,
        Some(Anomaly::Hidden),
    );
    // Garbage stops the walk at the last good hop.
    let id = resolve(&[("X-Forwarded-For", "203.0.113.1, bogus, 10.0.0.8")]);
    check(id, "10.0.0.8", None, XFF, 1, Some(Anomaly::Malformed));
    // Empty value: nothing said, the peer.
    check(
        resolve(&[("X-Forwarded-For", "")]),
        "10.0.3.7",
        Some(41000),
        PEER,
        0,
        None,
    );
}

#[test]
fn ipv4_mapped_hops_are_matched_as_ipv4() {
    let id = resolve(&[("X-Forwarded-For", "203.0.113.4, ::ffff:10.0.0.1")]);
    check(id, "203.0.113.4", None, XFF, 2, None);
    let id = resolve_with(
        "[::ffff:10.0.0.2]:9000",
        &[("X-Forwarded-For", "203.0.113.4")],
        &TrustedProxies::default(),
    );
    check(id, "203.0.113.4", None, XFF, 1, None);
}

// --- trust of the socket peer -----------------------------------------------

#[test]
fn untrusted_peer_headers_are_ignored() {
    let t = TrustedProxies::default();
    let id = resolve_with(
        OUTSIDE,
        &[
            ("X-Forwarded-For", "10.0.0.1"),
            ("Forwarded", "for=10.0.0.1"),
        ],
        &t,
    );
    check(
        id,
        "198.18.0.9",
        Some(52000),
        PEER,
        0,
        Some(Anomaly::UntrustedPeer),
    );
    // No forwarding header, no anomaly.
    check(
        resolve_with(OUTSIDE, &[("Host", "x")], &t),
        "198.18.0.9",
        Some(52000),
        PEER,
        0,
        None,
    );
    // `none` trusts nothing, loopback included.
    let id = resolve_with(
        "127.0.0.1:80",
        &[("X-Forwarded-For", "203.0.113.1")],
        &TrustedProxies::none(),
    );
    check(
        id,
        "127.0.0.1",
        Some(80),
        PEER,
        0,
        Some(Anomaly::UntrustedPeer),
    );
}

#[test]
fn source_precedence_and_order() {
    let h = [
        ("X-Real-IP", "203.0.113.3"),
        ("X-Forwarded-For", "203.0.113.2"),
        ("Forwarded", "for=203.0.113.1"),
    ];
    check(resolve(&h), "203.0.113.1", None, F, 1, None);
    check(resolve(&h[..2]), "203.0.113.2", None, XFF, 1, None);
    let t = TrustedProxies::default();
    let pairs = h.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    let id = resolve_client_from(sa(PROXY), pairs, &t, &[ClientSource::XForwardedFor]);
    check(id, "203.0.113.2", None, XFF, 1, None);
}

#[test]
fn headers_table_iterates_into_resolve() {
    let headers: Headers = vec![
        Header {
            name: "X-FORWARDED-FOR".into(),
            value: b"203.0.113.50, 10.0.0.9".to_vec(),
        },
        Header {
            name: "Host".into(),
            value: b"mcp.example".to_vec(),
        },
    ]
    .into();
    let id = resolve_client(sa(PROXY), headers.iter_bytes(), &TrustedProxies::default());
    check(id, "203.0.113.50", None, XFF, 2, None);
}

// --- bounds -----------------------------------------------------------------

#[test]
fn ten_thousand_hops_are_bounded() {
    let hops = vec!["10.0.0.1"; 10_000].join(", ");
    let start = std::time::Instant::now();
    let id = resolve(&[("X-Forwarded-For", &hops)]);
    check(
        id,
        "10.0.0.1",
        None,
        XFF,
        MAX_HOPS as u16,
        Some(Anomaly::TooManyHops),
    );
    // The same as Forwarded: over the byte bound, not read.
    let f = vec!["for=10.0.0.1"; 10_000].join(", ");
    check(
        fwd(&f),
        "10.0.3.7",
        Some(41000),
        PEER,
        0,
        Some(Anomaly::TooLong),
    );
    // And 10k header lines.
    let lines: Vec<(&str, &str)> = (0..10_000)
        .map(|_| ("X-Forwarded-For", "10.0.0.1"))
        .collect();
    check(
        resolve(&lines),
        "10.0.0.1",
        None,
        XFF,
        MAX_HOPS as u16,
        Some(Anomaly::TooManyHops),
    );
    // Generous: debug build on a shared machine; the work is a few µs.
    assert!(start.elapsed() < std::time::Duration::from_secs(2));
}

#[test]
fn hops_just_under_the_bound_reach_the_leftmost() {
    let mut hops = vec!["10.0.0.1"; MAX_HOPS - 1];
    hops.insert(0, "192.168.0.1");
    let id = resolve(&[("X-Forwarded-For", &hops.join(","))]);
    check(id, "192.168.0.1", None, XFF, MAX_HOPS as u16, None);
    hops.insert(0, "203.0.113.1");
    let id = resolve(&[("X-Forwarded-For", &hops.join(","))]);
    check(
        id,
        "192.168.0.1",
        None,
        XFF,
        MAX_HOPS as u16,
        Some(Anomaly::TooManyHops),
    );
}

#[test]
fn a_long_x_forwarded_for_is_read_from_its_right_end() {
    let v = format!("{}, 203.0.113.77, 10.0.0.2", "9".repeat(40_000));
    check(
        resolve(&[("X-Forwarded-For", &v)]),
        "203.0.113.77",
        None,
        XFF,
        2,
        None,
    );
    let v = format!("{}, 10.0.0.2", "9".repeat(40_000));
    let id = resolve(&[("X-Forwarded-For", &v)]);
    check(id, "10.0.0.2", None, XFF, 1, Some(Anomaly::TooLong));
}

// --- TrustedProxies -----------------------------------------------------------

#[test]
fn trusted_proxies_parse() {
    let t = trusted(" 10.0.0.0/8 , 2001:db8::/32,192.0.2.7 ");
    assert!(t.contains(ip("10.200.1.1")));
    assert!(t.contains(ip("2001:db8:1::1")));
    assert!(t.contains(ip("192.0.2.7")));
    assert!(!t.contains(ip("192.0.2.8")));
    assert!(t.contains(ip("::ffff:10.1.1.1")));
    assert_eq!(t.to_string(), "10.0.0.0/8,2001:db8::/32,192.0.2.7/32");
    assert_eq!(trusted(&t.to_string()), t);
    // Host bits are dropped.
    assert_eq!(trusted("10.1.2.3/8").to_string(), "10.0.0.0/8");
    assert!(trusted("NONE").is_empty());
    assert_eq!(trusted("none").to_string(), "none");
    assert_eq!(trusted("default"), TrustedProxies::default());
    let d = TrustedProxies::default();
    for a in [
        "10.1.1.1",
        "172.31.0.1",
        "192.168.5.5",
        "fd00::1",
        "127.0.0.6",
        "::1",
        "169.254.1.1",
        "fe80::1",
    ] {
        assert!(d.contains(ip(a)), "{a}");
    }
    for a in ["172.32.0.1", "8.8.8.8", "2001:db8::1", "::ffff:8.8.8.8"] {
        assert!(!d.contains(ip(a)), "{a}");
    }
}

#[test]
fn trusted_proxies_errors_name_the_item() {
    for (text, pos, item) in [
        ("10.0.0.0/8,10.0.0.0/33", 2, "10.0.0.0/33"),
        ("10.0.0.0/8,,192.168.0.0/16", 2, ""),
        ("bogus", 1, "bogus"),
        ("none,10.0.0.0/8", 1, "none"),
        ("10.0.0.0/8, none", 2, "none"),
        ("fe80::/129", 1, "fe80::/129"),
        ("", 0, ""),
    ] {
        let e = TrustedProxies::parse(text).expect_err(text);
        assert_eq!((e.position, e.item.as_str()), (pos, item), "{text}: {e}");
        assert!(e.to_string().contains(&format!("{item:?}")), "{e}");
    }
    let e: Result<TrustedProxies, _> = "10.0.0.0/8,x".parse();
    assert_eq!(
        e.expect_err("x").to_string(),
        "trusted proxies item 2 \"x\": not an IP address or CIDR block"
    );
}

#[test]
fn label_names_are_stable() {
    let sources = [
        ClientSource::Forwarded,
        ClientSource::XForwardedFor,
        ClientSource::XRealIp,
        PEER,
    ];
    let names: Vec<&str> = sources.iter().map(|s| s.as_str()).collect();
    assert_eq!(names, ["forwarded", "x-forwarded-for", "x-real-ip", "peer"]);
    let anomalies = [
        Anomaly::UntrustedPeer,
        Anomaly::Malformed,
        Anomaly::Hidden,
        Anomaly::UnbracketedIpv6,
        Anomaly::TooManyHops,
        Anomaly::TooLong,
    ];
    let names: Vec<&str> = anomalies.iter().map(|a| a.as_str()).collect();
    assert_eq!(
        names,
        [
            "untrusted_peer",
            "malformed",
            "hidden",
            "unbracketed_ipv6",
            "too_many_hops",
            "too_long"
        ]
    );
    let t = TrustedProxies::from_nets(["10.1.2.3/8".parse().expect("net")]);
    assert_eq!(t.to_string(), "10.0.0.0/8");
}
