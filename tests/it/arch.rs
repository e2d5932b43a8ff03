//! Architecture invariants: the pure crates never depend on tokio, ractor or tracing; the
//! ledger crate (which does file I/O and logs) never depends on tokio or ractor.

use std::collections::BTreeSet;
use std::process::Command;

const PURE: [&str; 6] = [
    "govern-governors",
    "govern-licence",
    "govern-policy",
    "govern-receipt",
    "govern-usage",
    "govern-webhooks",
];
const FORBIDDEN: [&str; 3] = ["tokio", "ractor", "tracing"];
const NO_ACTORS: [&str; 1] = ["govern-ledger"];
const ACTOR_STACK: [&str; 2] = ["tokio", "ractor"];

/// The names of every package that `root` depends on through normal dependencies, on the
/// host platform, as `cargo tree` resolves them.
fn normal_closure(root: &str) -> BTreeSet<String> {
    let out = Command::new(env!("CARGO"))
        .args(["tree", "-p", root, "-e", "normal", "--prefix", "none", "--format", "{p}"])
        .current_dir(crate::repo_path(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != root)
        .map(str::to_owned)
        .collect()
}

#[test]
fn pure_crates_do_not_depend_on_the_runtime_stack() {
    for root in PURE {
        let deps = normal_closure(root);
        assert!(deps.contains("thiserror"), "{root}: the walk found its dependencies: {deps:?}");
        let bad: Vec<_> = deps.iter().filter(|d| FORBIDDEN.contains(&d.as_str())).collect();
        assert!(
            bad.is_empty(),
            "{root} depends on {bad:?}: the pure crates must stay free of the runtime"
        );
    }
}

#[test]
fn the_ledger_crate_does_not_depend_on_the_actor_stack() {
    for root in NO_ACTORS {
        let deps = normal_closure(root);
        assert!(
            deps.contains("govern-receipt"),
            "{root}: the walk found its dependencies: {deps:?}"
        );
        let bad: Vec<_> = deps.iter().filter(|d| ACTOR_STACK.contains(&d.as_str())).collect();
        assert!(
            bad.is_empty(),
            "{root} depends on {bad:?}: the runtime drives the ledger, not the reverse"
        );
    }
}

/// The crates under the facade, as Rust paths and as package names.
const UNDER_THE_FACADE: [&str; 4] =
    ["govern_runtime", "govern_governors", "govern_receipt", "govern_ledger"];

#[test]
fn examples_and_the_readme_use_only_the_govern_crate() {
    let mut sources = vec![crate::repo_path("README.md"), crate::repo_path("examples/Cargo.toml")];
    for dir in ["examples", "examples/tests"] {
        for entry in std::fs::read_dir(crate::repo_path(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") {
                sources.push(path);
            }
        }
    }
    assert!(sources.len() >= 5, "found the examples: {sources:?}");
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        for name in UNDER_THE_FACADE {
            let package = name.replace('_', "-");
            let named = text.contains(&format!("{name}::"))
                || text.lines().any(|l| l.trim_start().starts_with(&format!("{package}.")));
            assert!(!named, "{} names {name}: hosts use `govern::` only", path.display());
        }
    }
}

/// The source files of govern-runtime, each with its top-level module (a file under
/// `src/x/` belongs to module `x`).
fn runtime_sources() -> Vec<(String, std::path::PathBuf)> {
    let root = crate::repo_path("crates/govern-runtime/src");
    let mut out = Vec::new();
    let mut dirs = vec![root.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(&root).unwrap();
                let first = rel.components().next().unwrap().as_os_str().to_string_lossy();
                let module = first.trim_end_matches(".rs").to_owned();
                out.push((module, path));
            }
        }
    }
    out.sort();
    out
}

/// The `crate::x` modules a source file imports or names.
fn crate_refs(text: &str) -> BTreeSet<String> {
    let mut refs = BTreeSet::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let name: String =
            rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
        // `use crate::{a, b}` names several.
        if name.is_empty() && rest.starts_with('{') {
            let group = &rest[1..rest.find('}').unwrap_or(rest.len())];
            for part in group.split(',') {
                let m: String = part
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                refs.insert(m);
            }
        } else {
            refs.insert(name);
        }
    }
    refs
}

#[test]
fn govern_runtime_has_no_import_cycle_between_its_modules() {
    let sources = runtime_sources();
    let modules: BTreeSet<String> = sources.iter().map(|(m, _)| m.clone()).collect();
    assert!(modules.contains("receipts") && modules.contains("governor"), "{modules:?}");
    let mut edges: std::collections::BTreeMap<String, BTreeSet<String>> = Default::default();
    for (module, path) in &sources {
        let text = std::fs::read_to_string(path).unwrap();
        // Unit tests may reach anywhere; comments name modules without importing them.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        for r in crate_refs(&code) {
            if modules.contains(&r) && r != *module && module != "lib" {
                edges.entry(module.clone()).or_default().insert(r);
            }
        }
    }
    // Depth-first search for a cycle, reporting its path.
    fn visit(
        m: &str,
        edges: &std::collections::BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == m) {
            let mut cycle = path[at..].to_vec();
            cycle.push(m.to_owned());
            return Some(cycle);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_owned());
        for next in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for m in &modules {
        let cycle = visit(m, &edges, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "import cycle in govern-runtime: {}", cycle.unwrap().join(" → "));
    }
}

#[test]
fn no_ractor_type_appears_in_govern_runtimes_public_api() {
    const ACTOR_TYPES: [&str; 6] =
        ["ractor", "ActorRef", "ActorCell", "ActorId", "ActorProcessingErr", "RpcReplyPort"];
    let mut checked = 0;
    for (_, path) in runtime_sources() {
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            // `pub` items, methods and fields; `pub(crate)` and narrower are not the API.
            if !t.starts_with("pub ") {
                continue;
            }
            // The whole signature: up to the body or the end of the item.
            let mut sig = String::new();
            for l in &lines[i..] {
                sig.push_str(l);
                sig.push(' ');
                if l.contains('{') || l.trim_end().ends_with(';') || l.trim_end().ends_with(',') {
                    break;
                }
            }
            let sig = sig.split('{').next().unwrap_or_default();
            checked += 1;
            for ty in ACTOR_TYPES {
                assert!(
                    !sig.contains(ty),
                    "{}:{}: a public item names {ty}: {sig}",
                    path.display(),
                    i + 1
                );
            }
        }
    }
    assert!(checked > 50, "only {checked} public items found");
}

#[test]
fn webhook_commands_carry_the_runtime_idempotency_key() {
    // govern-webhooks is pure and cannot name the runtime's constant: hold them equal here.
    assert_eq!(govern_webhooks::event::IDEMPOTENCY_METADATA_KEY, govern_runtime::IDEMPOTENCY_KEY);
}
