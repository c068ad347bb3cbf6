//! The crate's top-level modules import each other without a cycle (issue 14
//! §2: json → protocol → handles → request/response → decoder).
//!
//! Reads the sources under `src/` (or the directory in `MODULE_GRAPH_SRC`, to
//! check another tree), collects for each top-level module the
//! `crate::<module>` paths its code names (comments ignored, `lib.rs` being
//! the root that names them all), and fails on a cycle, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// `crate::<module>` dependencies of each top-level module.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// Every `.rs` file under `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to: `src/a.rs` and `src/a/**` are `a`;
/// `None` for the crate root.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// `text` without `//` comments (doc comments included) and string literals'
/// contents, so that only code is read.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_str = false;
        let mut prev = '\0';
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if in_str {
                if c == '"' && prev != '\\' {
                    in_str = false;
                    out.push('"');
                }
                prev = if prev == '\\' && c == '\\' { '\0' } else { c };
                continue;
            }
            if c == '/' && chars.peek() == Some(&'/') {
                break;
            }
            if c == '"' {
                in_str = true;
                prev = '\0';
            }
            out.push(c);
        }
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The modules named right after each `crate::` in `code`, including every
/// first name of a `crate::{a, b::c}` group.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest.get(..at).and_then(|b| b.chars().last());
        rest = rest.get(at + "crate::".len()..).unwrap_or("");
        if before.is_some_and(is_ident) {
            continue; // e.g. `mcptap_crate::`
        }
        let trimmed = rest.trim_start();
        if let Some(group) = trimmed.strip_prefix('{') {
            // Top-level items of the group: split on commas at depth 0.
            let mut depth = 0usize;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        push_first(&item, &mut refs);
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            push_first(&item, &mut refs);
        } else {
            push_first(trimmed, &mut refs);
        }
    }
    refs
}

/// Adds the first identifier of `path` to `refs`.
fn push_first(path: &str, refs: &mut BTreeSet<String>) {
    let name: String = path
        .trim_start()
        .chars()
        .take_while(|&c| is_ident(c))
        .collect();
    if !name.is_empty() && name != "self" {
        refs.insert(name);
    }
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g = Graph::new();
    for f in files {
        let Some(m) = module_of(src, &f) else {
            continue;
        };
        let text = std::fs::read_to_string(&f).expect("source readable");
        let deps = g.entry(m.clone()).or_default();
        for r in crate_refs(&code_only(&text)) {
            if r != m {
                deps.insert(r);
            }
        }
    }
    g
}

/// One cycle of `g`, as the modules along it (first repeated at the end).
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Open,
        Done,
    }
    fn visit(
        g: &Graph,
        m: &str,
        marks: &mut BTreeMap<String, Mark>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match marks.get(m) {
            Some(Mark::Done) => return None,
            Some(Mark::Open) => {
                let from = path.iter().position(|p| p == m).unwrap_or(0);
                let mut cycle: Vec<String> = path.get(from..).unwrap_or_default().to_vec();
                cycle.push(m.to_string());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(m.to_string(), Mark::Open);
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, marks, path) {
                return Some(c);
            }
        }
        path.pop();
        marks.insert(m.to_string(), Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    for m in g.keys() {
        if let Some(c) = visit(g, m, &mut marks, &mut Vec::new()) {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = std::env::var_os("MODULE_GRAPH_SRC")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    let g = graph(&src);
    assert!(g.len() > 5, "no modules found under {}", src.display());
    for (m, deps) in &g {
        eprintln!(
            "{m} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    if let Some(cycle) = find_cycle(&g) {
        panic!("module cycle: {}", cycle.join(" -> "));
    }
}

/// The layering: each of these modules uses only modules of lower
/// rank among them (json → protocol → handles → request/response → decoder).
#[test]
fn layers_point_one_way() {
    let rank = |m: &str| match m {
        "json" => Some(0),
        "protocol" => Some(1),
        "handles" => Some(2),
        "request" | "response" => Some(3),
        "decoder" => Some(4),
        _ => None,
    };
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    for (m, deps) in &graph(&src) {
        let Some(rm) = rank(m) else { continue };
        for d in deps {
            if let Some(rd) = rank(d) {
                assert!(rd < rm, "{m} uses {d}, against the layering");
            }
        }
    }
}

#[test]
fn reference_extraction() {
    let code = code_only(
        "use crate::{attrs as a, json::{Key, Skip}, self};\n\
         // crate::decoder in a comment\n\
         let s = \"crate::routing\"; crate::ids::derive();\n",
    );
    let refs: Vec<String> = crate_refs(&code).into_iter().collect();
    assert_eq!(refs, ["attrs", "ids", "json"]);
    let g: Graph = [
        ("a".to_string(), ["b".to_string()].into()),
        ("b".to_string(), ["a".to_string()].into()),
    ]
    .into();
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".to_string(), "b".to_string(), "a".to_string()])
    );
}
