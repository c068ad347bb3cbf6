//! Which socket peers and forwarding hops are proxies of ours: a set of CIDR
//! blocks, parsed from the `--trusted-proxies CIDR,...` flag.

use ipnet::IpNet;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// The usual in-cluster hops: private (RFC 1918, RFC 4193 unique local),
/// loopback and link-local ranges, IPv4 and IPv6.
const DEFAULT_CIDRS: [&str; 8] = [
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
    "127.0.0.0/8",
    "::1/128",
    "169.254.0.0/16",
    "fe80::/10",
];

/// A set of trusted proxy addresses as CIDR blocks (IPv4 and IPv6), the
/// configuration of [`resolve_client`](super::resolve_client) and
/// [`workload_identity`](super::workload_identity).
///
/// A forwarding header (`Forwarded`, `X-Forwarded-For`, `X-Real-IP`,
/// `x-forwarded-client-cert`, `l5d-client-id`) is believed only when the
/// socket peer is in the set, and a chain of hops is walked from the right
/// past every address in the set.
///
/// IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`, RFC 4291 §2.5.5.2) are
/// matched as the IPv4 address they carry, so an IPv4 block also covers
/// them. [`TrustedProxies::default`] trusts private (10/8, 172.16/12,
/// 192.168/16, fc00::/7), loopback (127/8, ::1) and link-local (169.254/16,
/// fe80::/10) addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

/// A `--trusted-proxies` text that does not parse: which item (1-based,
/// counted in the comma-separated list), its text, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedProxiesError {
    /// Position of the bad item in the list, from 1 (0: the whole text).
    pub position: usize,
    /// The item as given (trimmed).
    pub item: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for TrustedProxiesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position == 0 {
            write!(f, "trusted proxies {:?}: {}", self.item, self.reason)
        } else {
            write!(
                f,
                "trusted proxies item {} {:?}: {}",
                self.position, self.item, self.reason
            )
        }
    }
}

impl std::error::Error for TrustedProxiesError {}

impl Default for TrustedProxies {
    /// Private, loopback and link-local ranges (see the type's docs).
    fn default() -> Self {
        TrustedProxies {
            nets: DEFAULT_CIDRS
                .iter()
                .filter_map(|c| c.parse().ok())
                .collect(),
        }
    }
}

impl TrustedProxies {
    /// Trusts nothing: every socket peer is the client, forwarding headers
    /// are never read (the flag value `none`).
    pub fn none() -> Self {
        TrustedProxies { nets: Vec::new() }
    }

    /// Exactly these blocks.
    pub fn from_nets(nets: impl IntoIterator<Item = IpNet>) -> Self {
        TrustedProxies {
            nets: nets.into_iter().map(|n| n.trunc()).collect(),
        }
    }

    /// Parses the `--trusted-proxies` value: a comma-separated list of items,
    /// whitespace around each ignored. An item is a CIDR block
    /// (`10.0.0.0/8`, `2001:db8::/32`), a single address (`192.0.2.7`, taken
    /// as /32 or /128), or `default` (the default ranges, to extend them:
    /// `default,203.0.113.0/24`). `none` alone trusts nothing. Host bits
    /// below the prefix are ignored (`10.1.2.3/8` is `10.0.0.0/8`).
    ///
    /// # Errors
    /// An empty text, an empty item, `none` next to other items, or an item
    /// that is neither a CIDR block nor an address; the error names the
    /// item and its position.
    pub fn parse(text: &str) -> Result<Self, TrustedProxiesError> {
        let whole = text.trim();
        if whole.is_empty() {
            return Err(TrustedProxiesError {
                position: 0,
                item: String::new(),
                reason: "empty (use `none` to trust nothing)",
            });
        }
        if whole.eq_ignore_ascii_case("none") {
            return Ok(Self::none());
        }
        let mut nets = Vec::new();
        for (i, raw) in whole.split(',').enumerate() {
            let item = raw.trim();
            let err = |reason| TrustedProxiesError {
                position: i + 1,
                item: item.to_owned(),
                reason,
            };
            if item.is_empty() {
                return Err(err("empty item"));
            } else if item.eq_ignore_ascii_case("none") {
                return Err(err("`none` must be the only item"));
            } else if item.eq_ignore_ascii_case("default") {
                nets.extend(Self::default().nets);
            } else if item.contains('/') {
                let net: IpNet = item
                    .parse()
                    .map_err(|_| err("not a CIDR block (address/prefix length)"))?;
                nets.push(net.trunc());
            } else {
                let ip: IpAddr = item
                    .parse()
                    .map_err(|_| err("not an IP address or CIDR block"))?;
                nets.push(IpNet::from(ip));
            }
        }
        nets.dedup();
        Ok(TrustedProxies { nets })
    }

    /// Whether `ip` is in one of the blocks (IPv4-mapped IPv6 matched as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = unmap(ip);
        self.nets.iter().any(|n| n.contains(&ip))
    }

    /// The blocks, in the order given.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// `true` when nothing is trusted (`none`).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }
}

impl FromStr for TrustedProxies {
    type Err = TrustedProxiesError;

    /// [`TrustedProxies::parse`] (for clap's `value_parser`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for TrustedProxies {
    /// The blocks comma-separated (`none` when empty): text that
    /// [`TrustedProxies::parse`] reads back to the same set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.nets.is_empty() {
            return f.write_str("none");
        }
        for (i, n) in self.nets.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{n}")?;
        }
        Ok(())
    }
}

/// The IPv4 address inside an IPv4-mapped IPv6 address (RFC 4291 §2.5.5.2),
/// else `ip` unchanged.
pub(crate) fn unmap(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
