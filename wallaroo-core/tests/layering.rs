//! The crate's modules import one way, following the data: no module imports a module that
//! imports it, directly or through others. Every `crate::` and `super::` path outside the
//! unit tests counts as an import (a documentation link too: it names what it depends on).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every module of `src`, by path (`source::connector`), with its text.
fn modules(src: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let relative = path.strip_prefix(src).unwrap().with_extension("");
                let mut name = relative.to_string_lossy().replace('/', "::");
                if let Some(parent) = name.strip_suffix("::mod") {
                    name = parent.to_string();
                }
                let text = std::fs::read_to_string(&path).unwrap();
                // The unit tests may reach anywhere.
                let text = text
                    .split("#[cfg(test)]\nmod tests")
                    .next()
                    .unwrap()
                    .to_string();
                out.insert(name, text);
            }
        }
    }
    out
}

/// The module a path (`source::connector::SourceInput`) names: its longest prefix that is
/// a module.
fn resolve(path: &str, names: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len())
        .rev()
        .map(|n| parts[..n].join("::"))
        .find(|candidate| names.contains(candidate))
}

/// The `a::b::c` path that starts at `at` in `text`.
fn path_at(text: &str, at: usize) -> String {
    text[at..]
        .chars()
        .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == ':')
        .collect::<String>()
        .trim_end_matches(':')
        .to_string()
}

/// What each module imports.
fn imports(modules: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges = BTreeMap::new();
    for (module, text) in modules {
        let mut to = BTreeSet::new();
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for (at, _) in text.match_indices("crate::") {
            if let Some(target) = resolve(&path_at(text, at + 7), &names) {
                to.insert(target);
            }
        }
        for (at, _) in text.match_indices("super::") {
            let path = path_at(text, at + 7);
            let full = if parent.is_empty() {
                path
            } else {
                format!("{parent}::{path}")
            };
            if let Some(target) = resolve(&full, &names) {
                to.insert(target);
            }
        }
        // A module may use its parents (a parent only declares it) and itself.
        to.retain(|t| t != module && !module.starts_with(&format!("{t}::")));
        edges.insert(module.clone(), to);
    }
    edges
}

/// The modules reachable from `from`.
fn reachable(from: &str, edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut stack: Vec<&String> = edges[from].iter().collect();
    while let Some(next) = stack.pop() {
        if seen.insert(next.clone()) {
            stack.extend(edges[next].iter());
        }
    }
    seen
}

#[test]
fn no_module_imports_a_module_that_imports_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let edges = imports(&modules(&src));
    assert!(edges.len() > 30, "the modules were not found: {edges:?}");
    let mut circles = Vec::new();
    for (module, to) in &edges {
        for target in to {
            if reachable(target, &edges).contains(module) {
                circles.push(format!("{module} -> {target} -> … -> {module}"));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "modules in a circle:\n{}",
        circles.join("\n")
    );
}

#[test]
fn the_check_sees_a_circle() {
    let text = |s: &str| s.to_string();
    let modules = BTreeMap::from([
        (text("a"), text("use crate::b::Thing;")),
        (text("b"), text("use super::c;")),
        (text("c"), text("/// [`crate::a::Other`]")),
        (text("d"), text("use crate::a;")),
    ]);
    let edges = imports(&modules);
    assert!(reachable("a", &edges).contains("a"));
    assert!(!reachable("d", &edges).contains("d"));
}
