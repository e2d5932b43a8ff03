//! Architecture invariants: the pure crates never depend on tokio, ractor or tracing; the
//! ledger crate (which does file I/O and logs) never depends on tokio or ractor.

use std::collections::BTreeSet;
use std::process::Command;

const PURE: [&str; 2] = ["govern-governors", "govern-receipt"];
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
