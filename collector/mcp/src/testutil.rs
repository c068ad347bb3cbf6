//! Test-only generators shared by the property tests of the JSON readers
//! (`handles.rs`, `request.rs`, `response.rs`).

use proptest::prelude::*;

/// Well-formed JSON texts: `leaf` values nested in objects (0 to
/// `max_members - 1` members, names drawn from `keys`, duplicates allowed)
/// and arrays (0 to 2 items), at most `depth` levels deep and about `size`
/// nodes in all (proptest's `prop_recursive` parameters).
pub(crate) fn json_text(
    leaf: impl Strategy<Value = String> + 'static,
    keys: Vec<&'static str>,
    depth: u32,
    size: u32,
    max_members: usize,
) -> impl Strategy<Value = String> {
    let key = prop::sample::select(keys);
    leaf.prop_recursive(depth, size, max_members as u32, move |inner| {
        prop_oneof![
            prop::collection::vec((key.clone(), inner.clone()), 0..max_members).prop_map(|kv| {
                let members: Vec<String> = kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", members.join(","))
            }),
            prop::collection::vec(inner, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
        ]
    })
}
