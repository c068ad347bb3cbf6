//! Redaction of captured JSON bodies and the credential-looking-string check.
//!
//! Rule (also in `docs/attributes.md`):
//! - an object member whose key contains, case-insensitively, one of
//!   [`SECRET_KEY_PARTS`] has its value (whatever its type) replaced by the string
//!   `"[REDACTED]"`, unless the key is a handle key under the configured
//!   [`HandleRule`];
//! - any string value that [`looks_like_credential`] is replaced by `"[REDACTED]"`;
//! - the result is serialised compactly and cut to the byte cap on a UTF-8 boundary.

use serde_json::Value;

use crate::config::HandleRule;

/// Replacement text for redacted values.
pub const REDACTED: &str = "[REDACTED]";

/// Key fragments (lowercase) that mark a member as secret.
pub const SECRET_KEY_PARTS: &[&str] = &[
    "authorization",
    "cookie",
    "set-cookie",
    "token",
    "secret",
    "password",
    "passwd",
    "api_key",
    "apikey",
    "api-key",
    "credential",
    "private_key",
    "session",
];

/// Deepest nesting redacted; anything deeper is replaced by `"[REDACTED]"`.
const MAX_DEPTH: usize = 64;

/// `true` when `key` (any case) contains a secret fragment.
pub fn is_secret_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SECRET_KEY_PARTS.iter().any(|p| lower.contains(p))
}

/// `true` when a string looks like a credential: it contains `Bearer ` (any case),
/// or one of its words starts with `sk-`, `ghp_`, `github_pat_`, `xox` or is a
/// JWT (`eyJ…​.eyJ…​.`). Words are separated by whitespace (`char::is_whitespace`),
/// `"`, `'`, `=` and `:`.
///
/// One pass over the bytes: only a byte that can start `bearer ` or one of the
/// prefixes is looked at further (same result as splitting into words, tested
/// against that below).
pub fn looks_like_credential(s: &str) -> bool {
    let bytes = s.as_bytes();
    for (p, &c) in bytes.iter().enumerate() {
        // Most bytes start nothing: one table look-up each.
        if !CANDIDATE_START[usize::from(c)] {
            continue;
        }
        // Every pattern below needs this second byte: most candidates end
        // here, before any slicing.
        let d = bytes.get(p + 1).copied().unwrap_or(0);
        let second = match c {
            b'b' | b'B' => (d | 0x20) == b'e',
            b's' => d == b'k',
            b'g' => d == b'h' || d == b'i',
            b'x' => d == b'o',
            _ => d == b'y',
        };
        if !second {
            continue;
        }
        let rest = bytes.get(p..).unwrap_or_default();
        let prefix = match c {
            b'b' | b'B' => {
                if rest
                    .get(..7)
                    .is_some_and(|w| w.eq_ignore_ascii_case(b"bearer "))
                {
                    return true;
                }
                false
            }
            b's' => rest.starts_with(b"sk-"),
            b'g' => rest.starts_with(b"ghp_") || rest.starts_with(b"github_pat_"),
            b'x' => rest.starts_with(b"xox"),
            _ => rest.starts_with(b"eyJ"),
        };
        // A word starts here: at the start or after a separator (`p` is a
        // char boundary: `c` is ASCII).
        if prefix
            && s.get(..p)
                .unwrap_or_default()
                .chars()
                .next_back()
                .is_none_or(is_word_separator)
        {
            if c != b'e' {
                return true;
            }
            let word = s.get(p..).unwrap_or_default();
            let word = word.split(is_word_separator).next().unwrap_or_default();
            if looks_like_jwt(word) {
                return true;
            }
        }
    }
    false
}

/// Bytes that can start `bearer ` (any case) or a credential prefix.
const CANDIDATE_START: [bool; 256] = {
    let mut t = [false; 256];
    t[b'b' as usize] = true;
    t[b'B' as usize] = true;
    t[b's' as usize] = true;
    t[b'g' as usize] = true;
    t[b'x' as usize] = true;
    t[b'e' as usize] = true;
    t
};

/// Separators between the words [`looks_like_credential`] checks.
fn is_word_separator(c: char) -> bool {
    c.is_whitespace() || c == '"' || c == '\'' || c == '=' || c == ':'
}

fn looks_like_jwt(w: &str) -> bool {
    let Some(rest) = w.strip_prefix("eyJ") else {
        return false;
    };
    let is_b64url = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let Some(dot) = rest.find('.') else {
        return false;
    };
    let (head, tail) = rest.split_at(dot);
    if !head.chars().all(is_b64url) {
        return false;
    }
    let Some(tail) = tail.strip_prefix(".eyJ") else {
        return false;
    };
    match tail.find('.') {
        Some(d) => tail.get(..d).is_some_and(|p| p.chars().all(is_b64url)),
        None => false,
    }
}

/// A redacted copy of `v`.
pub fn redact(v: &Value, rule: &HandleRule) -> Value {
    redact_depth(v, rule, 0)
}

fn redact_depth(v: &Value, rule: &HandleRule, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::String(REDACTED.into());
    }
    match v {
        Value::String(s) if looks_like_credential(s) => Value::String(REDACTED.into()),
        Value::Array(a) => {
            Value::Array(a.iter().map(|x| redact_depth(x, rule, depth + 1)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let nv = if is_secret_key(k) && !rule.matches(k) {
                        Value::String(REDACTED.into())
                    } else {
                        redact_depth(x, rule, depth + 1)
                    };
                    (k.clone(), nv)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Redacts `v`, serialises it and cuts it to `max_bytes` on a UTF-8 boundary.
/// Returns the text and whether it was cut.
pub fn capture(v: &Value, rule: &HandleRule, max_bytes: usize) -> (String, bool) {
    let s = redact(v, rule).to_string();
    cap_utf8(s, max_bytes)
}

/// Cuts `s` to at most `max_bytes` bytes on a char boundary; `true` if cut.
pub fn cap_utf8(mut s: String, max_bytes: usize) -> (String, bool) {
    if s.len() <= max_bytes {
        return (s, false);
    }
    let mut end = max_bytes;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_detected() {
        for s in [
            "Bearer abc",
            "token: bearer abc",
            "sk-test-SECRET123",
            "my key is sk-proj-1",
            "ghp_abcdef",
            "xoxb-123",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
        ] {
            assert!(looks_like_credential(s), "{s}");
        }
        for s in ["basket-42", "risk-free", "hello world", "eyJ-not-a-jwt"] {
            assert!(!looks_like_credential(s), "{s}");
        }
    }

    #[test]
    fn redacts_keys_and_values_but_not_handles() {
        let rule = HandleRule::default();
        let v = json!({
            "api_key": "SECRET123",
            "Authorization": {"nested": 1},
            "session_id": "s-1",
            "note": "Bearer sk-test-SECRET123",
            "list": ["ok", "ghp_x"],
            "count": 3
        });
        let (s, cut) = capture(&v, &rule, 10_000);
        assert!(!cut);
        assert!(!s.contains("SECRET123"), "{s}");
        assert!(!s.contains("ghp_x"));
        assert!(s.contains("\"session_id\":\"s-1\""), "{s}");
        assert!(s.contains("\"count\":3"));
        assert_eq!(s.matches(REDACTED).count(), 4, "{s}");
    }

    /// The rule as first written: split into words, check each.
    fn looks_like_credential_by_words(s: &str) -> bool {
        if s.len() >= 7
            && s.as_bytes()
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"bearer "))
        {
            return true;
        }
        s.split(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '=' || c == ':')
            .any(|w| {
                w.starts_with("sk-")
                    || w.starts_with("ghp_")
                    || w.starts_with("github_pat_")
                    || w.starts_with("xox")
                    || looks_like_jwt(w)
            })
    }

    proptest::proptest! {
        #[test]
        fn one_pass_matches_word_split(parts in proptest::collection::vec(
            proptest::sample::select(vec![
                "sk-", "sk", "-", "ghp_", "github_pat_", "github", "xox", "xo", "eyJ", "eyJhbGci",
                ".", "_", "a", "Z", "9", " ", "\t", "\u{a0}", "\u{2003}", "\u{85}", "\"", "'", "=",
                ":", "Bearer ", "bEaReR ", "bearer", "é", "€", "x", "e", "s", "g", "B",
            ]),
            0..16,
        )) {
            let s = parts.concat();
            proptest::prop_assert_eq!(looks_like_credential(&s), looks_like_credential_by_words(&s), "{:?}", s);
        }
    }

    #[test]
    fn cap_on_char_boundary() {
        let (s, cut) = cap_utf8("aé".to_string(), 2);
        assert_eq!(s, "a");
        assert!(cut);
    }
}
