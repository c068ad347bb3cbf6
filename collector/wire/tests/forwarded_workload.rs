//! Mesh workload identity (`mcptap_wire::forwarded::workload_identity`):
//! Envoy's and Istio's `x-forwarded-client-cert` shapes, Linkerd's
//! `l5d-client-id`, hostile values, and trust of the socket peer.

use mcptap_wire::forwarded::{TrustedProxies, WorkloadSource, workload_identity};
use std::net::SocketAddr;

/// An outside socket peer (not trusted by default).
const OUTSIDE: &str = "198.18.0.9:52000";

fn sa(s: &str) -> SocketAddr {
    s.parse().expect("socket address")
}

fn workload(peer: &str, headers: &[(&str, &str)]) -> Option<(String, WorkloadSource)> {
    let pairs = headers.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes()));
    workload_identity(sa(peer), pairs, &TrustedProxies::default())
        .map(|w| (w.id.into_owned(), w.source))
}

const XFCC: WorkloadSource = WorkloadSource::Xfcc;
const HASH: &str = "468ed33be74eee6556d90c0149c1309e9ba61d6425303443c0748a02dd8de688";

#[test]
fn envoy_xfcc_examples() {
    let one = format!(
        "By=http://frontend.lyft.com;Hash={HASH};Subject=\"/C=US/ST=CA/L=San Francisco/OU=Lyft/CN=Test Client\";URI=http://testclient.lyft.com"
    );
    let w = |v: &str| workload("127.0.0.6:40000", &[("x-forwarded-client-cert", v)]);
    assert_eq!(w(&one), Some(("http://testclient.lyft.com".into(), XFCC)));
    // Two elements: the last one is the current client.
    let two = format!(
        "By=http://frontend.lyft.com;Hash={HASH};URI=http://testclient.lyft.com,By=http://backend.lyft.com;Hash={HASH};URI=http://frontend.lyft.com"
    );
    assert_eq!(w(&two), Some(("http://frontend.lyft.com".into(), XFCC)));
    // URI and DNS SANs.
    let dns = format!("{one};DNS=lyft.com;DNS=www.lyft.com");
    assert_eq!(w(&dns), Some(("http://testclient.lyft.com".into(), XFCC)));
    // No URI SAN: no identity.
    let no_uri = format!(
        "By=http://frontend.lyft.com;Hash={HASH};Subject=\"/C=US/CN=Test Client\";DNS=lyft.com"
    );
    assert_eq!(w(&no_uri), None);
}

#[test]
fn istio_xfcc_spiffe() {
    let v = format!(
        "By=spiffe://cluster.local/ns/default/sa/httpbin;Hash={HASH};Subject=\"\";URI=spiffe://cluster.local/ns/default/sa/sleep"
    );
    let got = workload("127.0.0.6:40000", &[("X-Forwarded-Client-Cert", &v)]);
    assert_eq!(
        got,
        Some(("spiffe://cluster.local/ns/default/sa/sleep".into(), XFCC))
    );
    // A quoted subject holding `,` `;` `=` and escaped quotes does not split.
    let v = r#"Subject="CN=a\"b, O=x;y";URI="spiffe://td/ns/a/sa/b""#;
    assert_eq!(
        workload("127.0.0.1:1", &[("x-forwarded-client-cert", v)]).map(|w| w.0),
        Some("spiffe://td/ns/a/sa/b".into())
    );
    // SPIFFE preferred over another URI SAN of the same element.
    let v = "URI=https://other.example;URI=spiffe://td/w";
    assert_eq!(
        workload("127.0.0.1:1", &[("x-forwarded-client-cert", v)]).map(|w| w.0),
        Some("spiffe://td/w".into())
    );
    // Repeated header lines are one list: the last line's element wins.
    let lines = [
        ("x-forwarded-client-cert", "URI=spiffe://td/a"),
        ("x-forwarded-client-cert", "URI=spiffe://td/b"),
    ];
    assert_eq!(
        workload("127.0.0.1:1", &lines).map(|w| w.0),
        Some("spiffe://td/b".into())
    );
}

#[test]
fn xfcc_hostile_values() {
    for v in [
        "URI=\"spiffe://td/unterminated",
        "URI=",
        "URI=has space",
        "URI=\"\\\"",
        "By=x;URI=spiffe://td/a,",
        ";;;",
        "\u{7f}",
    ] {
        assert_eq!(
            workload("127.0.0.1:1", &[("x-forwarded-client-cert", v)]),
            None,
            "{v:?}"
        );
    }
    let long = format!("Cert=\"{}\";URI=spiffe://td/a", "A".repeat(70_000));
    assert_eq!(
        workload("127.0.0.1:1", &[("x-forwarded-client-cert", &long)]),
        None
    );
    let id = format!("URI=spiffe://td/{}", "a".repeat(3000));
    assert_eq!(
        workload("127.0.0.1:1", &[("x-forwarded-client-cert", &id)]),
        None
    );
}

#[test]
fn linkerd_client_id() {
    let name = "web.emojivoto.serviceaccount.identity.linkerd.cluster.local";
    let got = workload("127.0.0.1:4143", &[("l5d-client-id", name)]);
    assert_eq!(got, Some((name.into(), WorkloadSource::L5dClientId)));
    for bad in [
        "",
        "a..b",
        "bad name",
        "x,y",
        &"a".repeat(64),
        &format!("{}.x", "a.".repeat(130)),
    ] {
        assert_eq!(
            workload("127.0.0.1:4143", &[("l5d-client-id", bad)]),
            None,
            "{bad:?}"
        );
    }
    // Longer than a DNS name, whatever its tail.
    let padded = format!("garbage{}a.b", " ".repeat(300));
    assert_eq!(workload("127.0.0.1:1", &[("l5d-client-id", &padded)]), None);
    // Two lines: ambiguous, none.
    assert_eq!(
        workload(
            "127.0.0.1:1",
            &[("l5d-client-id", "a.b"), ("l5d-client-id", "c.d")]
        ),
        None
    );
    // XFCC first when both are present.
    let both = [
        ("l5d-client-id", "a.b"),
        ("x-forwarded-client-cert", "URI=spiffe://td/x"),
    ];
    assert_eq!(workload("127.0.0.1:1", &both).map(|w| w.1), Some(XFCC));
}

#[test]
fn workload_only_from_a_trusted_peer() {
    assert_eq!(
        workload(OUTSIDE, &[("x-forwarded-client-cert", "URI=spiffe://td/x")]),
        None
    );
    assert_eq!(workload(OUTSIDE, &[("l5d-client-id", "a.b")]), None);
}
