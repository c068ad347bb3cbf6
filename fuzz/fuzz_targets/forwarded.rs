//! Fuzz target: client and workload identity from forwarding headers
//! (`mcptap_wire::forwarded`: `Forwarded`, `X-Forwarded-For`, `X-Real-IP`,
//! `x-forwarded-client-cert`, `l5d-client-id`).
//!
//! Input: byte 0 picks the socket peer (low two bits: 10.0.3.7, ::1,
//! 198.18.0.9 (not trusted), ::ffff:10.0.0.1; port 40000 + the byte); the
//! rest is header lines split at `\n`, each one name byte (mod 6:
//! `Forwarded`, `X-Forwarded-For`, `X-Real-IP`, `x-forwarded-client-cert`,
//! `l5d-client-id`, `Host`) then the value. Checks: no panic, the
//! identity's invariants (bounded hops; the peer unless a header of its
//! source was sent by a trusted peer; printable workload ids), and the same
//! answers when each name's lines are joined into one with `, ` (RFC 9110
//! §5.3).

#![no_main]

use libfuzzer_sys::fuzz_target;
use mcptap_wire::forwarded::{
    ClientSource, MAX_HOPS, TrustedProxies, resolve_client, workload_identity,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const NAMES: [&str; 6] = [
    "Forwarded",
    "X-Forwarded-For",
    "X-Real-IP",
    "x-forwarded-client-cert",
    "l5d-client-id",
    "Host",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ip = match sel & 3 {
        0 => IpAddr::V4(Ipv4Addr::new(10, 0, 3, 7)),
        1 => IpAddr::V6(Ipv6Addr::LOCALHOST),
        2 => IpAddr::V4(Ipv4Addr::new(198, 18, 0, 9)),
        _ => IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
    };
    let peer = SocketAddr::new(ip, 40000 + u16::from(sel));
    let headers: Vec<(&[u8], &[u8])> = rest
        .split(|&b| b == b'\n')
        .filter_map(|line| line.split_first())
        .map(|(&n, v)| (NAMES[usize::from(n) % NAMES.len()].as_bytes(), v))
        .collect();
    let trusted = TrustedProxies::default();
    let id = resolve_client(peer, headers.iter().copied(), &trusted);
    assert!(usize::from(id.hops) <= MAX_HOPS);
    let name = match id.source {
        ClientSource::Peer => {
            assert_eq!(
                (id.address, id.port, id.hops),
                (peer.ip(), Some(peer.port()), 0)
            );
            None
        }
        ClientSource::Forwarded => Some(NAMES[0]),
        ClientSource::XForwardedFor => Some(NAMES[1]),
        ClientSource::XRealIp => Some(NAMES[2]),
    };
    if let Some(name) = name {
        assert!(trusted.contains(peer.ip()));
        assert!(headers.iter().any(|(n, _)| *n == name.as_bytes()));
    }
    let workload = workload_identity(peer, headers.iter().copied(), &trusted);
    if let Some(w) = &workload {
        assert!(trusted.contains(peer.ip()));
        assert!(!w.id.is_empty() && w.id.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
    // Each name's lines joined into one.
    let joined: Vec<(&[u8], Vec<u8>)> = NAMES
        .iter()
        .filter_map(|name| {
            let mut values = headers
                .iter()
                .filter(|(n, _)| *n == name.as_bytes())
                .map(|(_, v)| *v);
            let first = values.next()?.to_vec();
            Some((
                name.as_bytes(),
                values.fold(first, |mut acc, v| {
                    acc.extend_from_slice(b", ");
                    acc.extend_from_slice(v);
                    acc
                }),
            ))
        })
        .collect();
    let pairs = || joined.iter().map(|(n, v)| (*n, &v[..]));
    assert_eq!(resolve_client(peer, pairs(), &trusted), id);
    assert_eq!(workload_identity(peer, pairs(), &trusted), workload);
});
