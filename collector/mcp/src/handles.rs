//! Handle extraction: `key=value` strings for arguments and results whose key
//! matches the [`HandleRule`].
//!
//! Walks objects and arrays recursively up to [`MAX_DEPTH`] levels; string and
//! integer values of matching keys are collected, in document order (serde_json
//! object members iterate in key order), de-duplicated, at most [`MAX_HANDLES`]
//! per list, each value cut to [`MAX_VALUE_BYTES`]. Values that look like
//! credentials become `[REDACTED]`.

use serde_json::Value;

use crate::config::HandleRule;
use crate::redact::{REDACTED, cap_utf8, looks_like_credential};

/// Deepest level walked (the root object is level 1).
pub const MAX_DEPTH: usize = 8;
/// Most handles kept per list.
pub const MAX_HANDLES: usize = 32;
/// Longest value kept, in bytes.
pub const MAX_VALUE_BYTES: usize = 256;
/// Longest `content[*].text` parsed as JSON in search of handles, in bytes.
pub const MAX_TEXT_JSON_BYTES: usize = 64 * 1024;

/// Collected handles plus how many were dropped by the caps.
#[derive(Debug, Default)]
pub struct Handles {
    /// `key=value` strings.
    pub list: Vec<String>,
    /// Dropped by the count cap or the depth limit.
    pub dropped: u64,
}

impl Handles {
    /// Adds one `key=value` unless present or full.
    pub fn push(&mut self, key: &str, value: &Value) {
        let text = match value {
            Value::String(s) if looks_like_credential(s) => REDACTED.to_string(),
            Value::String(s) => cap_utf8(s.clone(), MAX_VALUE_BYTES).0,
            Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
            _ => return,
        };
        let entry = format!("{key}={text}");
        if self.list.contains(&entry) {
            return;
        }
        if self.list.len() >= MAX_HANDLES {
            self.dropped += 1;
            return;
        }
        self.list.push(entry);
    }

    /// Walks `v` and collects matching members.
    pub fn walk(&mut self, v: &Value, rule: &HandleRule) {
        self.walk_depth(v, rule, 1);
    }

    fn walk_depth(&mut self, v: &Value, rule: &HandleRule, depth: usize) {
        if depth > MAX_DEPTH {
            if matches!(v, Value::Object(_) | Value::Array(_)) {
                self.dropped += 1;
            }
            return;
        }
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if rule.matches(k) {
                        self.push(k, x);
                    }
                    if matches!(x, Value::Object(_) | Value::Array(_)) {
                        self.walk_depth(x, rule, depth + 1);
                    }
                }
            }
            Value::Array(a) => {
                for x in a {
                    self.walk_depth(x, rule, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// Walks the JSON objects among `texts`: the `content[*].text` strings of a
    /// tool result that start with `{` (py servers serialise structured
    /// output there too), as collected by the response parser (at most 64
    /// items, each at most [`MAX_TEXT_JSON_BYTES`]). Texts that are not a JSON
    /// object are skipped.
    pub fn walk_json_texts(&mut self, texts: &[String], rule: &HandleRule) {
        for t in texts {
            if let Ok(v @ Value::Object(_)) = serde_json::from_str::<Value>(t) {
                self.walk(&v, rule);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_handles() {
        let rule = HandleRule::default();
        let mut h = Handles::default();
        h.walk(
            &json!({"basket_id":"b-1","items":[{"sku_id":7,"qty":2}],"deep":{"file_handle":"fh","fileHandle":"no"},"name":"x","taskId":"t1","price_id":1.5}),
            &rule,
        );
        assert_eq!(
            h.list,
            vec!["basket_id=b-1", "file_handle=fh", "sku_id=7", "taskId=t1"]
        );
    }
}
