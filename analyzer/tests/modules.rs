//! The analyzer's module graph is acyclic (issue 14 §2): every `crate::<module>` path in
//! `analyzer/src` is an edge from the top-level module of the file that writes it to
//! `<module>`; a cycle (for example rules → engine → rules) fails the test with its path.
//!
//! `MCPTAP_MODULES_SRC` points the test at another source tree (to show it fails on an older
//! checkout without building it).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module graph: top-level module → the top-level modules it names through `crate::`.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The top-level module a file belongs to (`rules/foo.rs` → `rules`); `None` for the crate
/// roots (`lib.rs`, `main.rs`), which declare modules but are no module of their own.
fn top_module(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next()?.as_os_str().to_str()?.to_string();
    match first.as_str() {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Code without `//` comments (doc links such as ``[`crate::engine`]`` are no dependency).
fn code_lines(text: &str) -> String {
    text.lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Top-level modules named after `crate::` in `code` (`crate::a::X`, `crate::{a, b::Y}`).
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let id = ident_at(part.trim());
                if !id.is_empty() && id != "self" {
                    out.insert(id);
                }
            }
        } else {
            let id = ident_at(rest);
            if !id.is_empty() {
                out.insert(id);
            }
        }
    }
    out
}

fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut g = Graph::new();
    for f in files {
        let Some(from) = top_module(src, &f) else {
            continue;
        };
        let code = code_lines(&std::fs::read_to_string(&f).unwrap());
        let edges = g.entry(from.clone()).or_default();
        for to in named_modules(&code) {
            if to != from {
                edges.insert(to);
            }
        }
    }
    g
}

/// One cycle of `g` as a path `a → b → … → a`, if any (depth-first search).
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn dfs(
        g: &Graph,
        n: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|x| x == n) {
            let mut c = stack[at..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = dfs(g, m, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in g.keys() {
        if let Some(c) = dfs(g, n, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn analyzer_modules_have_no_cycle() {
    let src = std::env::var_os("MCPTAP_MODULES_SRC").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        PathBuf::from,
    );
    let g = graph(&src);
    // The graph is really read: the engine calls the rules and the readiness verdict.
    assert!(
        g["engine"].contains("rules") && g["engine"].contains("readiness"),
        "{g:?}"
    );
    if let Some(c) = find_cycle(&g) {
        panic!("module cycle in {}: {}", src.display(), c.join(" → "));
    }
}

#[test]
fn cycle_finder_sees_cycles_and_grouped_paths() {
    let code = code_lines("use crate::{a, b::X};\n// crate::c\nlet x = crate::d::f();");
    let want: BTreeSet<String> = ["a", "b", "d"].map(String::from).into();
    assert_eq!(named_modules(&code), want);
    let mut g = Graph::new();
    g.entry("x".into()).or_default().insert("y".into());
    g.entry("y".into()).or_default().insert("z".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("z".into()).or_default().insert("x".into());
    assert_eq!(find_cycle(&g).unwrap(), ["x", "y", "z", "x"]);
}
