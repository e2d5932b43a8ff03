//! Architecture invariant: the pure crates never depend on tokio, ractor or tracing.

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

const PURE: [&str; 2] = ["govern-governors", "govern-receipt"];
const FORBIDDEN: [&str; 3] = ["tokio", "ractor", "tracing"];

/// The names of every package that `root` depends on through normal dependencies.
fn normal_closure(meta: &Value, root: &str) -> BTreeSet<String> {
    let packages = meta["packages"].as_array().unwrap();
    let name_of = |id: &str| -> String {
        packages.iter().find(|p| p["id"] == id).unwrap()["name"].as_str().unwrap().to_owned()
    };
    let nodes = meta["resolve"]["nodes"].as_array().unwrap();
    let root_id = packages.iter().find(|p| p["name"] == root).unwrap()["id"].as_str().unwrap().to_owned();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        let node = nodes.iter().find(|n| n["id"] == id.as_str()).unwrap();
        for dep in node["deps"].as_array().unwrap() {
            let normal = dep["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"].is_null());
            let dep_id = dep["pkg"].as_str().unwrap().to_owned();
            if normal && seen.insert(name_of(&dep_id)) {
                stack.push(dep_id);
            }
        }
    }
    seen
}

#[test]
fn pure_crates_do_not_depend_on_the_runtime_stack() {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--offline"])
        .current_dir(crate::repo_path(""))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    for root in PURE {
        let deps = normal_closure(&meta, root);
        assert!(deps.contains("sha2") || deps.contains("rust_decimal"), "{root}: the walk found its dependencies");
        let bad: Vec<_> = deps.iter().filter(|d| FORBIDDEN.contains(&d.as_str())).collect();
        assert!(bad.is_empty(), "{root} depends on {bad:?}: the pure crates must stay free of the runtime");
    }
}
