//! Drift test between `collector/mcp/src/attrs.rs` and `docs/attributes.md`:
//! every attribute constant is documented in the attribute tables (span and
//! span event attributes), and every name those tables document is a constant.
//!
//! Both files are read as text at test time (not through `mcptap_mcp::attrs`),
//! so a rename done in both files (say `mcp.progress` → `mcptap.progress`)
//! keeps the test green, and a rename done in one of them fails it with the
//! name that is missing on the other side.

mod support;

use std::collections::BTreeSet;

/// The values of `pub const NAME: &str = "value";` items of an `attrs.rs` text
/// (the `ALL` slice and anything that is not a `&str` constant are skipped).
fn constants(attrs_rs: &str) -> BTreeSet<String> {
    attrs_rs
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub const "))
        .filter_map(|rest| rest.split_once(": &str = \""))
        .filter_map(|(_, v)| v.strip_suffix("\";"))
        .map(str::to_owned)
        .collect()
}

/// The attribute names of the table rows between the `## Attribute table`
/// heading and the next level-2 heading (the resource attributes, set by the
/// binary, are not span attributes): the backticked names of each row's first
/// cell (`` `client.address` / `client.port` `` gives two). Panics on a row
/// whose first cell names none, or whose type is not one of attrs.rs's.
fn documented(md: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut inside = false;
    for line in md.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            inside = h.trim() == "Attribute table";
            continue;
        }
        let Some(row) = line.strip_prefix('|').filter(|_| inside) else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let first = cells.first().copied().unwrap_or_default();
        if first == "Name" || first.starts_with("---") {
            continue;
        }
        let names: Vec<&str> = first.split('`').skip(1).step_by(2).collect();
        assert!(!names.is_empty(), "table row names no attribute: {line}");
        for ty in cells.get(1).copied().unwrap_or_default().split('/') {
            assert!(
                ["Str", "Int", "Bool", "StrArray"].contains(&ty.trim()),
                "unknown type {ty:?} in: {line}"
            );
        }
        out.extend(names.into_iter().map(str::to_owned));
    }
    out
}

/// (constants missing from the doc, documented names that are no constant).
fn drift(attrs_rs: &str, md: &str) -> (Vec<String>, Vec<String>) {
    let c = constants(attrs_rs);
    let d = documented(md);
    (
        c.difference(&d).cloned().collect(),
        d.difference(&c).cloned().collect(),
    )
}

#[test]
fn every_attribute_is_documented_and_every_documented_one_exists() {
    let root = support::repo_root();
    let attrs_rs = std::fs::read_to_string(root.join("collector/mcp/src/attrs.rs"))
        .expect("collector/mcp/src/attrs.rs");
    let md = std::fs::read_to_string(root.join("docs/attributes.md")).expect("docs/attributes.md");
    let n = constants(&attrs_rs).len();
    assert!(
        n >= 70,
        "only {n} constants read from attrs.rs: parser broken?"
    );
    let (undocumented, unknown) = drift(&attrs_rs, &md);
    assert!(
        undocumented.is_empty(),
        "constants of collector/mcp/src/attrs.rs missing from docs/attributes.md: {undocumented:?}"
    );
    assert!(
        unknown.is_empty(),
        "docs/attributes.md documents names that are no constant of attrs.rs: {unknown:?}"
    );
    // A resource attribute documented below the tables is not a span attribute.
    assert!(!documented(&md).contains("service.name"));
}

#[test]
fn drift_is_reported_by_name_both_ways() {
    let attrs_rs = r#"
/// doc
pub const MCP_METHOD_NAME: &str = "mcp.method.name";
pub const CLIENT_ADDRESS: &str = "client.address";
pub const CLIENT_PORT: &str = "client.port";
pub const MCP_PROGRESS: &str = "mcptap.progress";
pub const ALL: &[&str] = &[MCP_METHOD_NAME];
"#;
    let md = "# Span attributes\n\n## Attribute table\n\n\
        | Name | Type | When set | Source |\n|---|---|---|---|\n\
        | `mcp.method.name` | Str | always | MCP |\n\
        | `client.address` / `client.port` | Str / Int | always | HTTP |\n\n\
        ### Span event attributes\n\n| Name | Type | When set |\n|---|---|---|\n\
        | `mcp.progress` | Str | progress |\n\n\
        ## Resource attributes\n\n| Name | Value |\n|---|---|\n| `service.name` | x |\n";
    let (undocumented, unknown) = drift(attrs_rs, md);
    assert_eq!(undocumented, ["mcptap.progress"]);
    assert_eq!(unknown, ["mcp.progress"]);
    let renamed = md.replace("`mcp.progress`", "`mcptap.progress`");
    assert_eq!(drift(attrs_rs, &renamed), (vec![], vec![]));
}
