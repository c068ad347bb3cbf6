//! 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`,
//! `MCP-Protocol-Version`) and their agreement with the body
//! (spec `basic/transports/streamable-http.mdx` §"Request Metadata" and
//! §"Server Validation"; mcp-wire.md §2.4/§2.5). The era rule and the
//! methods' `Mcp-Name` members are [`crate::protocol`]'s.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcptap_wire::Headers;

/// Agreement between a routing header and the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Header present and equal to the body value.
    Match,
    /// Header present and different (after base64 decoding).
    Mismatch,
    /// Header required but absent.
    Missing,
    /// Header not required (legacy era, or a method without that header).
    NotRequired,
}

impl Check {
    /// `match` / `mismatch` / `missing` / `not_required`.
    pub fn as_str(self) -> &'static str {
        match self {
            Check::Match => "match",
            Check::Mismatch => "mismatch",
            Check::Missing => "missing",
            Check::NotRequired => "not_required",
        }
    }
}

/// A decoded `Mcp-Name` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpName {
    /// Decoded text (the raw value when it was not encoded or did not decode).
    pub value: String,
    /// Raw header text when it used the `=?base64?…?=` sentinel.
    pub raw_if_encoded: Option<String>,
    /// The sentinel was present but the payload was not base64 of UTF-8.
    pub decode_error: bool,
}

/// Decodes a header value that may use the `=?base64?<b64>?=` sentinel (markers
/// lowercase and case-sensitive; standard alphabet with padding, also accepted
/// without padding).
pub fn decode_header_value(raw: &[u8]) -> McpName {
    let text = String::from_utf8_lossy(raw).into_owned();
    let Some(inner) = text
        .strip_prefix("=?base64?")
        .and_then(|r| r.strip_suffix("?="))
    else {
        return McpName {
            value: text,
            raw_if_encoded: None,
            decode_error: false,
        };
    };
    let decoded = STANDARD
        .decode(inner)
        .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(inner))
        .ok()
        .and_then(|b| String::from_utf8(b).ok());
    match decoded {
        Some(v) => McpName {
            value: v,
            raw_if_encoded: Some(text),
            decode_error: false,
        },
        None => McpName {
            value: text.clone(),
            raw_if_encoded: Some(text),
            decode_error: true,
        },
    }
}

/// Names (as sent) of `Mcp-Param-*` headers, at most 32.
pub fn param_header_names(headers: &Headers) -> Vec<String> {
    headers
        .iter()
        .filter(|h| {
            h.name
                .get(..10)
                .is_some_and(|p| p.eq_ignore_ascii_case("mcp-param-"))
        })
        .map(|h| h.name.to_owned())
        .take(32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_sentinel() {
        let n = decode_header_value(b"=?base64?w6lww6k=?=");
        assert_eq!(n.value, "épé");
        assert_eq!(n.raw_if_encoded.as_deref(), Some("=?base64?w6lww6k=?="));
        let n = decode_header_value(b"get_weather");
        assert_eq!(n.value, "get_weather");
        assert!(n.raw_if_encoded.is_none());
        let n = decode_header_value(b"=?base64?!!!?=");
        assert!(n.decode_error);
    }
}
