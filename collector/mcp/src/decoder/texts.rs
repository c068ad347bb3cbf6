//! Text forms of span attribute values made without the formatting machinery
//! or without allocating: JSON-RPC ids, integers in decimal, `'static` strings
//! for the known method names, protocol versions and other fixed values, the
//! request path, and endpoint address texts cached per address ([`AddrTexts`]).
//! The known MCP values themselves are [`crate::protocol`]'s.
//! Each fast form equals what `Display`/`to_string` writes; proptests check that.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use serde_json::Value;

use crate::json::cap;
use crate::span::Text;

/// String form of a JSON-RPC id: strings as-is, numbers as written, `null` → `None`,
/// anything else (invalid) as compact JSON.
pub(super) fn id_string(id: &Value) -> Option<String> {
    match id {
        Value::Null => None,
        Value::String(s) => Some(cap(s).to_string()),
        Value::Number(n) => Some(number_text(n)),
        other => Some(cap(&other.to_string()).to_string()),
    }
}

/// [`id_string`] of `id`, moving a string id out (leaving it empty) instead of
/// copying it when it is not cut, and small integer ids (what clients count
/// with) as fixed strings.
pub(super) fn take_id_string(id: &mut Value) -> Option<Text> {
    match id {
        Value::String(s) if cap(s).len() == s.len() => Some(Text::from(std::mem::take(s))),
        Value::Number(n) => match n
            .as_u64()
            .and_then(|u| SMALL_INTS.get(usize::try_from(u).ok()?))
        {
            Some(t) => Some(Text::Static(t)),
            None => Some(Text::from(number_text(n))),
        },
        other => id_string(other).map(Text::from),
    }
}

/// `n.to_string()` as a text: small non-negative integers (progress counts)
/// as fixed strings, other numbers by [`number_text`].
pub(super) fn number_attr_text(n: &serde_json::Number) -> Text {
    match n
        .as_u64()
        .and_then(|u| SMALL_INTS.get(usize::try_from(u).ok()?))
    {
        Some(t) => Text::Static(t),
        None => Text::from(number_text(n)),
    }
}

/// `0` … `127` in decimal.
pub(super) const SMALL_INTS: [&str; 128] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23", "24", "25", "26", "27", "28", "29", "30", "31", "32",
    "33", "34", "35", "36", "37", "38", "39", "40", "41", "42", "43", "44", "45", "46", "47", "48",
    "49", "50", "51", "52", "53", "54", "55", "56", "57", "58", "59", "60", "61", "62", "63", "64",
    "65", "66", "67", "68", "69", "70", "71", "72", "73", "74", "75", "76", "77", "78", "79", "80",
    "81", "82", "83", "84", "85", "86", "87", "88", "89", "90", "91", "92", "93", "94", "95", "96",
    "97", "98", "99", "100", "101", "102", "103", "104", "105", "106", "107", "108", "109", "110",
    "111", "112", "113", "114", "115", "116", "117", "118", "119", "120", "121", "122", "123",
    "124", "125", "126", "127",
];

/// `n.to_string()`: integers in decimal without the formatting machinery
/// (what `Number`'s `Display` writes for them), other numbers by `Display`.
pub(super) fn number_text(n: &serde_json::Number) -> String {
    if let Some(u) = n.as_u64() {
        let mut out = String::with_capacity(20);
        push_decimal_u64(&mut out, u);
        out
    } else if let Some(i) = n.as_i64() {
        let mut out = String::with_capacity(20);
        out.push('-');
        push_decimal_u64(&mut out, i.unsigned_abs());
        out
    } else {
        n.to_string()
    }
}

/// Appends `n` in decimal (what `Display` writes for an integer without a
/// width or precision).
pub(super) fn push_decimal_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut len = 0;
    loop {
        if let Some(d) = digits.get_mut(len) {
            *d = b'0' + (n % 10) as u8;
        }
        len += 1;
        n /= 10;
        if n == 0 || len == digits.len() {
            break;
        }
    }
    for d in digits.iter().take(len).rev() {
        out.push(char::from(*d));
    }
}

/// `s` borrowed as the `'static` string `known` returns for it, else copied.
pub(super) fn known_or_owned(s: &str, known: fn(&str) -> Option<&'static str>) -> Text {
    match known(s) {
        Some(k) => Text::Static(k),
        None => Text::from(s.to_owned()),
    }
}

/// The conventional MCP endpoint path as a `'static` string.
pub(super) fn known_path(p: &str) -> Option<&'static str> {
    Some(match p {
        "/mcp" => "/mcp",
        "/" => "/",
        _ => return None,
    })
}

/// Path of a request target: origin-form up to `?`/`#`; absolute-form has its
/// scheme and authority removed.
pub(super) fn url_path(target: &str) -> &str {
    let mut t = target;
    for scheme in ["http://", "https://"] {
        if t.len() >= scheme.len()
            && t.get(..scheme.len())
                .is_some_and(|p| p.eq_ignore_ascii_case(scheme))
        {
            let rest = t.get(scheme.len()..).unwrap_or("");
            t = rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/");
            break;
        }
    }
    // Bytes, not chars: ASCII never occurs inside a multi-byte sequence.
    let end = t
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(t.len());
    t.get(..end).unwrap_or(t)
}

/// The text of the last header value converted (e.g. `User-Agent`, the same
/// on every request of a client), kept for the next identical value: equal
/// bytes share the text, without a second UTF-8 check or a copy. Holds one
/// value, as long as a header value can be.
#[derive(Debug)]
pub(super) struct LastText {
    raw: Vec<u8>,
    text: Arc<str>,
}

impl Default for LastText {
    fn default() -> LastText {
        LastText {
            raw: Vec::new(),
            text: Arc::from(""),
        }
    }
}

impl LastText {
    /// `String::from_utf8_lossy(v)`, shared.
    pub(super) fn text(&mut self, v: &[u8]) -> Arc<str> {
        if self.raw != v {
            self.raw.clear();
            self.raw.extend_from_slice(v);
            self.text = Arc::from(String::from_utf8_lossy(v));
        }
        Arc::clone(&self.text)
    }
}

/// Slots of [`AddrTexts`]' address table (a power of two).
pub(super) const ADDR_SLOTS: usize = 64;
/// Slots of [`AddrTexts`]' socket table (a power of two).
pub(super) const SOCKET_SLOTS: usize = 16;

/// Texts of endpoint addresses, formatted once and shared: `client.address`
/// and `server.address` ([`ip_text`]) and the derived `service.instance.id`
/// ([`socket_text_with`]). Two direct-mapped tables of fixed size (a slot
/// holds the last address that hashed to it), so memory is bounded and the
/// texts never depend on what the tables held before: a miss formats again.
#[derive(Debug)]
pub(super) struct AddrTexts {
    ips: Vec<Option<(IpAddr, Arc<str>)>>,
    sockets: Vec<Option<(SocketAddr, Arc<str>)>>,
}

impl AddrTexts {
    pub(super) fn new() -> Self {
        AddrTexts {
            ips: vec![None; ADDR_SLOTS],
            sockets: vec![None; SOCKET_SLOTS],
        }
    }

    /// Fibonacci hash of an address, reduced to `slots` (a power of two).
    fn slot(ip: IpAddr, extra: u16, slots: usize) -> usize {
        let folded = match ip {
            IpAddr::V4(v4) => u64::from(u32::from(v4)),
            IpAddr::V6(v6) => {
                let b = u128::from(v6);
                (b as u64) ^ ((b >> 64) as u64)
            }
        };
        let h = (folded ^ (u64::from(extra) << 32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize & (slots - 1)
    }

    /// [`ip_text`] of `ip` (inlined: two look-ups per exchange, nearly
    /// always hits).
    #[inline]
    pub(super) fn ip(&mut self, ip: IpAddr) -> Arc<str> {
        if let Some(Some((k, t))) = self.ips.get(Self::slot(ip, 0, ADDR_SLOTS))
            && *k == ip
        {
            return Arc::clone(t);
        }
        self.ip_miss(ip)
    }

    /// [`AddrTexts::ip`] when `ip`'s slot holds another address (or none).
    #[cold]
    #[inline(never)]
    fn ip_miss(&mut self, ip: IpAddr) -> Arc<str> {
        let t: Arc<str> = Arc::from(ip_text(ip));
        if let Some(slot) = self.ips.get_mut(Self::slot(ip, 0, ADDR_SLOTS)) {
            *slot = Some((ip, Arc::clone(&t)));
        }
        t
    }

    /// [`socket_text_with`] of `addr` (`ip` is the text of its address).
    pub(super) fn socket(&mut self, addr: SocketAddr, ip: &str) -> Arc<str> {
        let i = Self::slot(addr.ip(), addr.port(), SOCKET_SLOTS);
        let Some(slot) = self.sockets.get_mut(i) else {
            return Arc::from(socket_text_with(addr, ip));
        };
        match slot {
            Some((k, t)) if *k == addr => Arc::clone(t),
            _ => {
                let t: Arc<str> = Arc::from(socket_text_with(addr, ip));
                *slot = Some((addr, Arc::clone(&t)));
                t
            }
        }
    }
}

/// `ip.to_string()` without the formatting machinery for IPv4 (dotted decimal,
/// RFC 791 notation as `Ipv4Addr`'s `Display` writes it); IPv6 uses `Display`.
pub(super) fn ip_text(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(v4) => {
            // At most "255.255.255.255": 15 bytes, written on the stack and
            // copied once.
            let mut buf = [0u8; 15];
            let mut len = 0usize;
            let mut put = |b: u8| {
                if let Some(d) = buf.get_mut(len) {
                    *d = b;
                    len += 1;
                }
            };
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    put(b'.');
                }
                if o >= 100 {
                    put(b'0' + o / 100);
                }
                if o >= 10 {
                    put(b'0' + (o / 10) % 10);
                }
                put(b'0' + o % 10);
            }
            let digits = buf.get(..len).unwrap_or(&[]);
            // Only ASCII digits and dots were written.
            std::str::from_utf8(digits).unwrap_or("").to_owned()
        }
        std::net::IpAddr::V6(v6) => v6.to_string(),
    }
}

/// `addr.to_string()` (`a.b.c.d:port` for IPv4) with [`ip_text`]; IPv6 uses `Display`.
#[cfg(test)]
fn socket_text(addr: std::net::SocketAddr) -> String {
    socket_text_with(addr, &ip_text(addr.ip()))
}

/// [`socket_text`] of `addr`, given `ip` = [`ip_text`] of its address.
pub(super) fn socket_text_with(addr: std::net::SocketAddr, ip: &str) -> String {
    match addr {
        std::net::SocketAddr::V4(v4) => {
            let mut out = String::with_capacity(ip.len() + 6);
            out.push_str(ip);
            out.push(':');
            push_decimal_u64(&mut out, u64::from(v4.port()));
            out
        }
        std::net::SocketAddr::V6(_) => addr.to_string(),
    }
}

#[cfg(test)]
mod text_tests {
    use super::{AddrTexts, ip_text, socket_text};
    use proptest::prelude::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    proptest! {
        /// The cached texts equal fresh ones whatever the tables held before
        /// (few distinct addresses, so slots are both reused and contended).
        #[test]
        fn addr_texts_match_fresh_texts(
            addrs in proptest::collection::vec((0u32..200, any::<bool>(), 0u16..4), 1..300)
        ) {
            let mut t = AddrTexts::new();
            for (bits, v6, port) in addrs {
                let ip = if v6 {
                    IpAddr::V6(Ipv6Addr::from(u128::from(bits) << 64 | u128::from(bits)))
                } else {
                    IpAddr::V4(Ipv4Addr::from(bits.wrapping_mul(0x0101_0101)))
                };
                let text = t.ip(ip);
                prop_assert_eq!(text.to_string(), ip.to_string());
                let sa = SocketAddr::new(ip, 8000 + port);
                prop_assert_eq!(t.socket(sa, &text).to_string(), sa.to_string());
            }
        }

        #[test]
        fn ip_and_socket_text_match_display(bits in any::<u32>(), port in any::<u16>(), v6 in any::<u128>()) {
            let ip = IpAddr::V4(Ipv4Addr::from(bits));
            prop_assert_eq!(ip_text(ip), ip.to_string());
            let sa = SocketAddr::new(ip, port);
            prop_assert_eq!(socket_text(sa), sa.to_string());
            let ip6 = IpAddr::V6(Ipv6Addr::from(v6));
            prop_assert_eq!(ip_text(ip6), ip6.to_string());
            let sa6 = SocketAddr::new(ip6, port);
            prop_assert_eq!(socket_text(sa6), sa6.to_string());
        }
    }

    proptest! {
        /// The kept text is the lossy text of the value, whatever came before.
        #[test]
        fn last_text_is_the_lossy_text(
            vs in proptest::collection::vec(prop_oneof![
                Just(b"python-httpx/0.28".to_vec()),
                Just(b"ua\xff".to_vec()),
                Just(b"d7db4a5d90ff46159f61c7f4d3fe0660".to_vec()),
                Just(b"d7db4a5d90ff46159f61c7f4d3fe0661".to_vec()),
                Just(Vec::new()),
                proptest::collection::vec(any::<u8>(), 0..6),
            ], 0..20)
        ) {
            let mut last = super::LastText::default();
            for v in vs {
                prop_assert_eq!(last.text(&v).to_string(), String::from_utf8_lossy(&v).into_owned());
            }
        }
    }

    proptest! {
        /// Integer ids and error codes in decimal as `Number`'s `Display` writes them.
        #[test]
        fn number_text_matches_display(u in any::<u64>(), i in any::<i64>(), f in any::<f64>(), small in 0u64..200) {
            let n = serde_json::Number::from(small);
            prop_assert_eq!(super::number_attr_text(&n).into_string(), n.to_string());
            let n = serde_json::Number::from(u);
            prop_assert_eq!(super::number_text(&n), n.to_string());
            prop_assert_eq!(super::number_attr_text(&n).into_string(), n.to_string());
            let n = serde_json::Number::from(i);
            prop_assert_eq!(super::number_text(&n), n.to_string());
            if let Some(n) = serde_json::Number::from_f64(f) {
                prop_assert_eq!(super::number_text(&n), n.to_string());
                prop_assert_eq!(super::number_attr_text(&n).into_string(), n.to_string());
            }
        }

        /// A known-value table only changes how a value is held, never its text.
        #[test]
        fn known_or_owned_keeps_the_text(s in "[a-z/_-]{0,12}|tools/call|2025-11-25|/mcp|complete|private") {
            for known in [
                crate::protocol::known_method,
                crate::protocol::known_version,
                super::known_path,
                crate::protocol::known_result_type,
                crate::protocol::known_cache_scope,
            ] {
                let held = super::known_or_owned(&s, known);
                prop_assert_eq!(held.as_ref(), s.as_str());
            }
        }

        /// The byte scan for `?`/`#` cuts where the char search did.
        #[test]
        fn url_path_cuts_like_char_search(t in "(https?://[a-z.]{0,6})?[/a-zé?#=&]{0,16}") {
            let got = super::url_path(&t);
            let mut model: &str = &t;
            for scheme in ["http://", "https://"] {
                if model.len() >= scheme.len()
                    && model.get(..scheme.len()).is_some_and(|p| p.eq_ignore_ascii_case(scheme))
                {
                    let rest = model.get(scheme.len()..).unwrap_or("");
                    model = rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("/");
                    break;
                }
            }
            let end = model.find(['?', '#']).unwrap_or(model.len());
            prop_assert_eq!(got, &model[..end]);
        }

        /// Ids as `id_string` writes them, whichever way they are held.
        #[test]
        fn take_id_string_matches_id_string(u in 0u64..300, i in any::<i64>(), s in ".{0,8}") {
            for v in [serde_json::json!(u), serde_json::json!(i), serde_json::json!(s), serde_json::json!(null), serde_json::json!([u])] {
                let want = super::id_string(&v);
                let mut held = v.clone();
                let got = super::take_id_string(&mut held);
                prop_assert_eq!(got.as_deref(), want.as_deref());
            }
        }
    }

    #[test]
    fn edge_values() {
        for (ip, text) in [
            (Ipv4Addr::new(0, 0, 0, 0), "0.0.0.0"),
            (Ipv4Addr::new(255, 255, 255, 255), "255.255.255.255"),
            (Ipv4Addr::new(10, 0, 100, 9), "10.0.100.9"),
        ] {
            assert_eq!(ip_text(IpAddr::V4(ip)), text);
        }
        assert_eq!(
            socket_text("10.1.2.3:65535".parse().expect("addr")),
            "10.1.2.3:65535"
        );
        assert_eq!(
            socket_text("10.1.2.3:0".parse().expect("addr")),
            "10.1.2.3:0"
        );
    }
}
