//! Recognising TLS on a captured connection, without decrypting it.
//!
//! Inside a service mesh (Istio, Linkerd, Envoy) or behind a TLS-terminating
//! proxy in the pod, `-i any` sees the same requests twice: as mTLS on `eth0`
//! and as plaintext HTTP on loopback. The TLS flows must not reach the HTTP
//! parser (they would count as garbage): [`sniff`] tells a TLS connection from
//! HTTP/1.x by its first byte, which is a TLS record's content type (RFC 8446
//! §5.1, RFC 5246 §6.2.1: 20..=23) and never the first byte of an HTTP request
//! or status line (an ASCII letter). The client's first record, a ClientHello
//! (RFC 8446 §4.1.2), then gives the server name it asked for (SNI, RFC 6066
//! §3) and the application protocols it offered (ALPN, RFC 7301 §3.1): see
//! [`parse_client_hello`]. Records and handshake messages are parsed by the
//! `tls-parser` crate (rusticata); nothing here decrypts.

use tls_parser::{
    TlsExtension, TlsMessage, TlsMessageHandshake, TlsVersion, parse_tls_extensions,
    parse_tls_plaintext,
};

/// Bytes of a TLS record header: content type (1), legacy version (2), length (2).
pub const RECORD_HEADER_LEN: usize = 5;

/// Most bytes buffered to read a ClientHello: one record of the largest
/// plaintext length (2^14 bytes, RFC 8446 §5.1) and its header. A hello split
/// over more records than that is reported unparsed.
pub const MAX_HELLO_BYTES: usize = RECORD_HEADER_LEN + (1 << 14);

/// Longest server name kept, in bytes (a DNS name is at most 253).
const MAX_SNI_BYTES: usize = 255;
/// Most ALPN protocol names kept from one ClientHello.
const MAX_ALPN: usize = 8;
/// Longest ALPN protocol name kept, in bytes (RFC 7301 allows 255).
const MAX_ALPN_BYTES: usize = 64;

/// What the first bytes of a direction say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    /// No bytes yet.
    NeedMore,
    /// A TLS record header: content type 20..=23 (change_cipher_spec, alert,
    /// handshake, application_data) and, when present, major version 3.
    Tls,
    /// Anything else (HTTP/1.x begins with an ASCII letter).
    NotTls,
}

/// Classifies the first bytes of one direction of a connection.
///
/// Decides on the first byte, and checks the second (the record's major
/// version, 3 for SSL 3.0 and every TLS version) when it is there.
pub fn sniff(first: &[u8]) -> Sniff {
    match first {
        [] => Sniff::NeedMore,
        [20..=23] | [20..=23, 3, ..] => Sniff::Tls,
        _ => Sniff::NotTls,
    }
}

/// What a ClientHello says, for the flow record of a TLS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHello {
    /// The `server_name` extension's host name (lossy UTF-8, at most 255 bytes),
    /// `None` when absent.
    pub sni: Option<String>,
    /// The ALPN protocol names offered, in order (e.g. `h2`, `http/1.1`,
    /// `istio-peer-exchange`); at most 8 names of at most 64 bytes.
    pub alpn: Vec<String>,
    /// The highest version offered: the `supported_versions` extension's
    /// (RFC 8446 §4.2.1) when present, else the hello's legacy version; as the
    /// wire's 16-bit value (`0x0304` is TLS 1.3, `0x0303` TLS 1.2).
    pub version: u16,
}

/// The outcome of [`parse_client_hello`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloParse {
    /// The first record is not complete yet (and fits in [`MAX_HELLO_BYTES`]).
    NeedMore,
    /// The first record holds a ClientHello.
    Hello(ClientHello),
    /// Not a ClientHello in one record (another message, a malformed or
    /// oversized record, a hello fragmented over several records).
    NotAHello,
}

/// Reads the ClientHello at the start of `buf`, the client's first bytes.
///
/// Never panics; `NeedMore` only while the first record is incomplete and
/// `buf` is shorter than [`MAX_HELLO_BYTES`].
pub fn parse_client_hello(buf: &[u8]) -> HelloParse {
    match parse_tls_plaintext(buf) {
        Err(tls_parser::nom::Err::Incomplete(_)) if buf.len() < MAX_HELLO_BYTES => {
            HelloParse::NeedMore
        }
        Err(_) => HelloParse::NotAHello,
        Ok((_, record)) => {
            for msg in &record.msg {
                if let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = msg {
                    return HelloParse::Hello(hello_facts(ch.version, ch.ext));
                }
            }
            HelloParse::NotAHello
        }
    }
}

/// SNI, ALPN and version from a ClientHello's extensions block.
fn hello_facts(legacy: TlsVersion, ext: Option<&[u8]>) -> ClientHello {
    let mut hello = ClientHello {
        version: legacy.0,
        ..ClientHello::default()
    };
    let Some(Ok((_, exts))) = ext.map(parse_tls_extensions) else {
        return hello;
    };
    for e in exts {
        match e {
            TlsExtension::SNI(names) => {
                if let Some((_, name)) = names.first() {
                    let name = name.get(..MAX_SNI_BYTES).unwrap_or(name);
                    hello.sni = Some(String::from_utf8_lossy(name).into_owned());
                }
            }
            TlsExtension::ALPN(protocols) => {
                hello.alpn = protocols
                    .iter()
                    .take(MAX_ALPN)
                    .map(|p| {
                        String::from_utf8_lossy(p.get(..MAX_ALPN_BYTES).unwrap_or(p)).into_owned()
                    })
                    .collect();
            }
            TlsExtension::SupportedVersions(versions) => {
                // GREASE values (RFC 8701: 0x?a?a) are not versions.
                if let Some(v) = versions
                    .iter()
                    .map(|v| v.0)
                    .filter(|v| v & 0x0f0f != 0x0a0a)
                    .max()
                {
                    hello.version = v;
                }
            }
            _ => {}
        }
    }
    hello
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ClientHello as `openssl s_client -servername mcp.example -alpn h2,http/1.1`
    /// lays it out: record header, handshake header, fields, extensions.
    fn client_hello(sni: &str, alpn: &[&str], versions: &[u16]) -> Vec<u8> {
        let mut ext = Vec::new();
        // server_name (0): list length, type 0 (host_name), name length, name.
        let name = sni.as_bytes();
        let mut sn = Vec::new();
        sn.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        sn.push(0);
        sn.extend_from_slice(&(name.len() as u16).to_be_bytes());
        sn.extend_from_slice(name);
        ext.extend_from_slice(&0u16.to_be_bytes());
        ext.extend_from_slice(&(sn.len() as u16).to_be_bytes());
        ext.extend_from_slice(&sn);
        // ALPN (16): list length, then length-prefixed names.
        let mut list = Vec::new();
        for p in alpn {
            list.push(p.len() as u8);
            list.extend_from_slice(p.as_bytes());
        }
        ext.extend_from_slice(&16u16.to_be_bytes());
        ext.extend_from_slice(&((list.len() + 2) as u16).to_be_bytes());
        ext.extend_from_slice(&(list.len() as u16).to_be_bytes());
        ext.extend_from_slice(&list);
        // supported_versions (43): one-byte list length, two bytes each.
        if !versions.is_empty() {
            ext.extend_from_slice(&43u16.to_be_bytes());
            ext.extend_from_slice(&((versions.len() * 2 + 1) as u16).to_be_bytes());
            ext.push((versions.len() * 2) as u8);
            for v in versions {
                ext.extend_from_slice(&v.to_be_bytes());
            }
        }
        let mut body = Vec::new();
        body.extend_from_slice(&[3, 3]); // legacy_version TLS 1.2
        body.extend_from_slice(&[7; 32]); // random
        body.push(0); // empty session id
        body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
        body.extend_from_slice(&[1, 0]); // null compression
        body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
        body.extend_from_slice(&ext);
        let mut hs = vec![1]; // client_hello
        hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&body);
        let mut rec = vec![22, 3, 1];
        rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn sniff_tells_tls_from_http() {
        assert_eq!(sniff(b""), Sniff::NeedMore);
        assert_eq!(sniff(&[22]), Sniff::Tls);
        assert_eq!(sniff(&[22, 3, 1, 0, 200]), Sniff::Tls);
        assert_eq!(sniff(&[23, 3, 3, 0, 17]), Sniff::Tls);
        assert_eq!(sniff(&[22, 4]), Sniff::NotTls);
        assert_eq!(sniff(b"POST /mcp HTTP/1.1\r\n"), Sniff::NotTls);
        assert_eq!(sniff(b"HTTP/1.1 200 OK\r\n"), Sniff::NotTls);
    }

    #[test]
    fn client_hello_gives_sni_alpn_and_version() {
        let rec = client_hello(
            "outbound_.8000_._.mcp.shop.svc.cluster.local",
            &["istio-peer-exchange", "istio", "h2"],
            &[0x2a2a, 0x0304, 0x0303],
        );
        let want = ClientHello {
            sni: Some("outbound_.8000_._.mcp.shop.svc.cluster.local".into()),
            alpn: vec!["istio-peer-exchange".into(), "istio".into(), "h2".into()],
            version: 0x0304,
        };
        assert_eq!(parse_client_hello(&rec), HelloParse::Hello(want.clone()));
        // Every prefix asks for more; trailing bytes (the next record) do not matter.
        for cut in 0..rec.len() {
            assert_eq!(
                parse_client_hello(&rec[..cut]),
                HelloParse::NeedMore,
                "cut {cut}"
            );
        }
        let mut more = rec.clone();
        more.extend_from_slice(&[20, 3, 3, 0, 1, 1]);
        assert_eq!(parse_client_hello(&more), HelloParse::Hello(want));
    }

    #[test]
    fn tls12_hello_without_supported_versions() {
        let rec = client_hello("mcp.example", &["http/1.1"], &[]);
        let HelloParse::Hello(h) = parse_client_hello(&rec) else {
            panic!("not a hello");
        };
        assert_eq!((h.sni.as_deref(), h.version), (Some("mcp.example"), 0x0303));
    }

    #[test]
    fn other_records_are_not_hellos() {
        assert_eq!(
            parse_client_hello(&[23, 3, 3, 0, 2, 1, 2]),
            HelloParse::NotAHello
        );
        assert_eq!(
            parse_client_hello(b"POST / HTTP/1.1\r\n\r\n"),
            HelloParse::NotAHello
        );
        // A record longer than TLS allows.
        assert_eq!(
            parse_client_hello(&[22, 3, 1, 0xff, 0xff]),
            HelloParse::NotAHello
        );
    }
}
