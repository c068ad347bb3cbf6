//! 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`, `Mcp-Param-*`,
//! `MCP-Protocol-Version`) and their agreement with the body
//! (spec `basic/transports/streamable-http.mdx` §"Request Metadata" and
//! §"Server Validation"; mcp-wire.md §2.4/§2.5), plus protocol-era classification.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use mcptap_wire::Headers;

/// Protocol versions that use the legacy (initialize/session) era. Any other
/// `MCP-Protocol-Version` header value is modern (py 2.3.0 server routing rule,
/// `mcp/server/streamable_http_manager.py`).
pub const LEGACY_VERSIONS: &[&str] = &["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];

/// Protocol era of one HTTP request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Initialize-based, session-header era (2025-11-25 and earlier).
    Legacy,
    /// Stateless era (2026-07-28 and later, including the RC's `DRAFT-2026-v1`).
    Modern,
}

impl Era {
    /// Classifies by the `MCP-Protocol-Version` header: absent or a legacy
    /// version → legacy; anything else → modern.
    pub fn classify(header: Option<&str>) -> Era {
        match header {
            None => Era::Legacy,
            Some(v) if LEGACY_VERSIONS.contains(&trim(v)) => Era::Legacy,
            Some(_) => Era::Modern,
        }
    }

    /// `legacy` / `modern`.
    pub fn as_str(self) -> &'static str {
        match self {
            Era::Legacy => "legacy",
            Era::Modern => "modern",
        }
    }
}

/// `s.trim()`, without the Unicode whitespace walk when `s` starts and ends
/// with visible ASCII (every Unicode whitespace is either ASCII at most
/// `' '` or starts with a byte of `0x80` or more), as header values do.
pub(crate) fn trim(s: &str) -> &str {
    let visible = |b: Option<&u8>| b.is_some_and(|&b| b > b' ' && b < 0x80);
    if visible(s.as_bytes().first()) && visible(s.as_bytes().last()) {
        s
    } else {
        s.trim()
    }
}

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

/// Which `params` member `Mcp-Name` must equal for `method`, if it is required:
/// `name` for `tools/call` and `prompts/get`, `uri` for `resources/read`,
/// `taskId` for `tasks/get|update|cancel` (Tasks extension).
pub fn name_param(method: &str) -> Option<&'static str> {
    match method {
        "tools/call" | "prompts/get" => Some("name"),
        "resources/read" => Some("uri"),
        "tasks/get" | "tasks/update" | "tasks/cancel" => Some("taskId"),
        _ => None,
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
    fn era_rule() {
        assert_eq!(Era::classify(None), Era::Legacy);
        assert_eq!(Era::classify(Some("2025-06-18")), Era::Legacy);
        assert_eq!(Era::classify(Some("2026-07-28")), Era::Modern);
        assert_eq!(Era::classify(Some("DRAFT-2026-v1")), Era::Modern);
    }

    proptest::proptest! {
        /// The ASCII shortcut trims exactly as `str::trim`.
        #[test]
        fn trim_is_str_trim(
            s in "[ \t\u{a0}\u{3000}\u{85}]{0,2}[a-z0-9.\u{e9} -]{0,6}[ \t\u{a0}\u{2028}]{0,2}",
        ) {
            proptest::prop_assert_eq!(trim(&s), s.trim());
        }
    }

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
