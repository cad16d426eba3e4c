//! The runtime is layers that only look down. This test reads every `use crate::…` /
//! `crate::…` / `super::…` path in `src/` and fails when a module reaches a layer it may not,
//! or when files import each other in a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers: each one's folder, what it holds, and the layers it may import (besides
/// itself). This table is the one source of the rules: the crate's docs and CONTRIBUTING
/// point here.
const RULES: &[(&str, &str, &[&str])] = &[
    (
        "core",
        "clock, ids, attribute values, call sites, the span record, span context, propagation, on/off state, secrets hidden in text",
        &[],
    ),
    (
        "collect",
        "per-thread rings, the export worker and flush, bridged events, observers and exporters, `FinishedSpan`",
        &["core"],
    ),
    (
        "metrics",
        "the recorder, histograms, metric names, step metrics",
        &["core", "collect"],
    ),
    (
        "run",
        "the run scope, `ContextHandle`, usage limits",
        &["core"],
    ),
    (
        "step",
        "the step call object and the retry policy",
        &["core", "collect", "run"],
    ),
    (
        "accounting",
        "the prices in force (data, price file, rows from code) and the budgets calls are admitted against",
        &["core", "run"],
    ),
    (
        "ledger",
        "cost records, the stores (memory, SQLite, PostgreSQL) and their writer, reports, queries",
        &["core", "collect", "accounting"],
    ),
    (
        "calls",
        "`ModelCall`, streams, usage from responses, content capture, the cost observer",
        &[
            "core",
            "collect",
            "metrics",
            "run",
            "step",
            "accounting",
            "ledger",
        ],
    ),
    (
        "config",
        "settings, `Secret`, `TelemetryError`",
        &["core", "accounting", "ledger", "calls"],
    ),
    (
        "pipeline",
        "`Pipeline`, the runner, hooks, quality",
        &["core", "metrics", "run", "step"],
    ),
    (
        "sinks",
        "OpenTelemetry destinations, OTLP, Prometheus, Logfire",
        &["core", "collect", "metrics", "config"],
    ),
    (
        "bridge",
        "the `tracing` layer, stderr logs, the `logfire` macros",
        &["core", "collect", "run", "config"],
    ),
];

/// Modules that may use anything: the composition root, the crate root and test helpers.
const UNRESTRICTED: &[&str] = &["runtime", "testing", "lib"];

type Module = Vec<String>;

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn modules(dir: &Path, prefix: &Module, out: &mut BTreeMap<Module, PathBuf>) {
    for entry in fs::read_dir(dir).expect("src is readable") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            let mut inner = prefix.clone();
            inner.push(name);
            modules(&path, &inner, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut module = prefix.clone();
            if name != "mod" {
                module.push(name);
            }
            out.insert(module, path);
        }
    }
}

/// The code without comments (doc links name modules that the code does not import) and
/// without its unit-test module (whose `super` is the file itself), which ends each file.
fn code_of(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod ").next().unwrap_or(text);
    text.lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every `crate::a::b` and `super::x` path, with `use` trees (`use crate::{a, b::{c}}`) flattened.
fn paths(code: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let after = &rest[at + 4..];
        let Some(end) = after.find(';') else { break };
        let tree: String = after[..end]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if tree.starts_with("crate::") || tree.starts_with("super::") || tree.starts_with("self::")
        {
            flatten(&tree, &mut found);
        }
        rest = &after[end..];
    }
    let bytes = code.as_bytes();
    for keyword in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(at) = code[from..].find(keyword) {
            let start = from + at;
            let boundary = start == 0
                || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
            let end = code[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(code.len(), |e| start + e);
            if boundary {
                found.push(code[start..end].trim_end_matches(':').to_owned());
            }
            from = end.max(start + keyword.len());
        }
    }
    found
}

fn flatten(tree: &str, out: &mut Vec<String>) {
    let Some(open) = tree.find('{') else {
        out.push(tree.to_owned());
        return;
    };
    let (prefix, body) = (
        &tree[..open],
        &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())],
    );
    let mut depth = 0;
    let mut part = String::new();
    for c in body.chars() {
        match c {
            ',' if depth == 0 => {
                flatten(&format!("{prefix}{part}"), out);
                part.clear();
                continue;
            }
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        part.push(c);
    }
    if !part.is_empty() {
        flatten(&format!("{prefix}{part}"), out);
    }
}

/// The module file a path lands in: the longest prefix that is a module.
fn resolve(path: &str, here: &Module, files: &BTreeMap<Module, PathBuf>) -> Option<Module> {
    let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    let mut base: Module = match segments.first() {
        Some(&"crate") => {
            segments.remove(0);
            Vec::new()
        }
        Some(&"super") | Some(&"self") => {
            // `here` is the module itself (a `mod.rs` is its directory's module).
            let mut base = here.clone();
            while segments.first() == Some(&"super") {
                segments.remove(0);
                base.pop();
            }
            if segments.first() == Some(&"self") {
                segments.remove(0);
            }
            base
        }
        _ => return None,
    };
    let start = base.len();
    for segment in &segments {
        base.push((*segment).to_owned());
    }
    while base.len() > start {
        if files.contains_key(&base) {
            return Some(base);
        }
        base.pop();
    }
    files.contains_key(&base).then_some(base)
}

fn layer_of(module: &Module) -> &str {
    module.first().map_or("lib", String::as_str)
}

fn import_graph() -> BTreeMap<Module, BTreeSet<Module>> {
    let mut files = BTreeMap::new();
    modules(&src_dir(), &Vec::new(), &mut files);
    let mut graph = BTreeMap::new();
    for (module, file) in &files {
        let text = fs::read_to_string(file).expect("readable");
        let targets: BTreeSet<Module> = paths(&code_of(&text))
            .iter()
            .filter_map(|path| resolve(path, module, &files))
            .filter(|target| target != module && !target.is_empty())
            .collect();
        graph.insert(module.clone(), targets);
    }
    graph
}

#[test]
fn every_layer_imports_only_the_layers_below_it() {
    let graph = import_graph();
    assert!(
        graph.len() > 30,
        "the crate's modules were found: {}",
        graph.len()
    );
    let rules: BTreeMap<&str, &[&str]> = RULES
        .iter()
        .map(|(layer, _, imports)| (*layer, *imports))
        .collect();
    let mut broken = Vec::new();
    for (module, targets) in &graph {
        let layer = layer_of(module);
        if UNRESTRICTED.contains(&layer) {
            continue;
        }
        let allowed = rules.get(layer).unwrap_or_else(|| {
            panic!(
                "module {} is in no layer: add it to RULES",
                module.join("::")
            )
        });
        for target in targets {
            let to = layer_of(target);
            if to != layer && !allowed.contains(&to) {
                broken.push(format!(
                    "{} uses {} ({layer} may not import {to})",
                    module.join("::"),
                    target.join("::")
                ));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "layering rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn no_files_import_each_other_in_a_circle() {
    let graph = import_graph();
    // Tarjan's strongly connected components.
    struct Search<'a> {
        graph: &'a BTreeMap<Module, BTreeSet<Module>>,
        index: BTreeMap<&'a Module, usize>,
        low: BTreeMap<&'a Module, usize>,
        stack: Vec<&'a Module>,
        on_stack: BTreeSet<&'a Module>,
        cycles: Vec<Vec<String>>,
    }
    impl<'a> Search<'a> {
        fn visit(&mut self, module: &'a Module) {
            let n = self.index.len();
            self.index.insert(module, n);
            self.low.insert(module, n);
            self.stack.push(module);
            self.on_stack.insert(module);
            for target in &self.graph[module] {
                let Some((target, _)) = self.graph.get_key_value(target) else {
                    continue;
                };
                if !self.index.contains_key(target) {
                    self.visit(target);
                    let low = self.low[module].min(self.low[target]);
                    self.low.insert(module, low);
                } else if self.on_stack.contains(target) {
                    let low = self.low[module].min(self.index[target]);
                    self.low.insert(module, low);
                }
            }
            if self.low[module] == self.index[module] {
                let mut component = Vec::new();
                while let Some(top) = self.stack.pop() {
                    self.on_stack.remove(top);
                    component.push(top.join("::"));
                    if top == module {
                        break;
                    }
                }
                if component.len() > 1 {
                    self.cycles.push(component);
                }
            }
        }
    }
    let mut search = Search {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        cycles: Vec::new(),
    };
    for module in graph.keys() {
        if !search.index.contains_key(module) {
            search.visit(module);
        }
    }
    assert!(
        search.cycles.is_empty(),
        "import cycles: {:?}",
        search.cycles
    );
}

#[test]
fn the_checker_sees_an_upward_import_and_a_circle() {
    // The checker itself must be able to fail: a `use` tree and a path expression are found
    // and resolved.
    let found = paths(
        "use crate::{core::state, cost::{ledger::CostRecord, budget}};\nfn f() { super::x::y(); }",
    );
    assert!(found.contains(&"crate::core::state".to_owned()));
    assert!(found.contains(&"crate::cost::ledger::CostRecord".to_owned()));
    assert!(found.contains(&"crate::cost::budget".to_owned()));
    assert!(found.iter().any(|p| p.starts_with("super::x::y")));
    let mut files = BTreeMap::new();
    modules(&src_dir(), &Vec::new(), &mut files);
    let here: Module = vec!["collect".into(), "ring".into()];
    let target = resolve("crate::ledger::record::CostRecord", &here, &files).expect("resolves");
    assert_eq!(
        layer_of(&target),
        "ledger",
        "collect -> ledger would be reported as upward"
    );
}
