//! The client behind proxies and meshes (OTel HTTP server semconv:
//! `client.address` is the original client, `network.peer.address` the socket
//! peer): read from the request's forwarding and mesh identity headers when the
//! socket peer is a trusted proxy ([`mcptap_wire::forwarded`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use mcptap_wire::forwarded::{ClientIdentity, ClientSource, resolve_client, workload_identity};

use super::Decoder;
use super::exchange::Exchange;
use super::headers::{FORWARDING_LINES, ReqHeaders};

/// What [`Decoder::client_identity`] finds: `client.address`, `client.port`,
/// `network.peer.address`, where the client came from (`None`: the peer, no
/// anomaly), and the mesh workload identity with its header's name.
pub(super) type Client = (
    Arc<str>,
    Option<u16>,
    Arc<str>,
    Option<ClientIdentity>,
    Option<(String, &'static str)>,
);

impl Decoder {
    /// The exchange's client identity. Without a forwarding or mesh header
    /// (found by the one header scan) the socket peer is the client and no
    /// second pass over the headers is made.
    pub(super) fn client_identity(&mut self, ex: &Exchange, hdrs: &ReqHeaders<'_>) -> Client {
        let peer = ex.conn.client;
        let peer_ip = self.texts.ip(peer.ip());
        if !hdrs.forwarding {
            return (Arc::clone(&peer_ip), Some(peer.port()), peer_ip, None, None);
        }
        let (id, workload) = self.resolve_cached(peer, hdrs);
        if let Some(anomaly) = id.anomaly {
            self.stats.client_address_anomalies += 1;
            let by = &mut self.stats.client_address_anomalies_by_reason;
            *by.entry(anomaly.as_str()).or_insert(0) += 1;
        }
        if id.source != ClientSource::Peer {
            self.stats.client_address_forwarded += 1;
        }
        let client_ip = if id.source == ClientSource::Peer {
            Arc::clone(&peer_ip)
        } else {
            self.texts.ip(id.address)
        };
        let via = (id.source != ClientSource::Peer || id.anomaly.is_some()).then_some(id);
        (client_ip, id.port, peer_ip, via, workload)
    }

    /// [`resolve_client`] and [`workload_identity`] of the request, through a
    /// one-entry cache keyed by the peer address and the forwarding lines'
    /// bytes (consecutive requests through one proxy usually carry the same
    /// ones). Only header-given identities are kept: one that falls back to
    /// the peer carries the peer's port.
    fn resolve_cached(
        &mut self,
        peer: SocketAddr,
        hdrs: &ReqHeaders<'_>,
    ) -> (ClientIdentity, Option<(String, &'static str)>) {
        let cacheable = hdrs.forwarding_count <= FORWARDING_LINES;
        if cacheable {
            let key = &mut self.client_key;
            key.clear();
            match peer.ip() {
                IpAddr::V4(a) => key.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => key.extend_from_slice(&a.octets()),
            }
            for (n, v) in hdrs.forwarding_headers() {
                key.push(0);
                key.extend_from_slice(n);
                key.push(0);
                key.extend_from_slice(v);
            }
            if let Some(last) = &self.last_client
                && last.key == *key
            {
                return (last.id, last.workload.clone());
            }
        }
        let trusted = &self.cfg.trusted_proxies;
        let id = resolve_client(peer, hdrs.forwarding_headers(), trusted);
        // The mesh proxy vouches for its own mTLS peer: that is the client
        // only when no other proxy stood between them (an ingress gateway
        // would otherwise be named as every client's workload).
        let workload = (id.hops <= 1 && hdrs.mesh_identity)
            .then(|| workload_identity(peer, hdrs.forwarding_headers(), trusted))
            .flatten()
            .map(|w| (w.id.into_owned(), w.source.as_str()));
        if cacheable && id.source != ClientSource::Peer {
            let key = self.client_key.clone();
            self.last_client = Some(Box::new(LastClient {
                key,
                id,
                workload: workload.clone(),
            }));
        }
        (id, workload)
    }
}

/// The last header-given client identity and the key it was read under.
#[derive(Debug)]
pub(super) struct LastClient {
    key: Vec<u8>,
    id: ClientIdentity,
    workload: Option<(String, &'static str)>,
}
