//! Tidy: every Rust source file says what it is for in its first line; the LICENSE file is the
//! declared licence; the declared `rust-version` covers every dependency's.

use std::path::Path;
use std::process::Command;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() && name != "target" && !name.starts_with('.') {
            rust_files(&path, out);
        } else if name.ends_with(".rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_starts_with_a_module_doc_line() {
    let mut files = Vec::new();
    for dir in ["crates", "tests", "examples"] {
        rust_files(&crate::repo_path(dir), &mut files);
    }
    assert!(files.len() > 10, "found the sources");
    let missing: Vec<_> =
        files.iter().filter(|f| !std::fs::read_to_string(f).unwrap().starts_with("//!")).collect();
    assert!(missing.is_empty(), "files without a leading //! line: {missing:?}");
}

/// `cargo metadata` of the workspace, as the lock file resolves it (every platform's
/// dependencies: the lock file holds them all).
fn metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked", "--manifest-path"])
        .arg(crate::repo_path("Cargo.toml"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `1.85`, `1.85.0` as comparable numbers.
fn rust_version(v: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = v.split('.').map(|p| p.parse().unwrap()).collect();
    parts.resize(3, 0);
    parts
}

/// Issue 10: the workspace's `rust-version` is one its dependency set builds with: no lower
/// than any resolved dependency's own `rust-version` (criterion 0.8 asks for 1.86; the
/// workspace's 1.89 is std's `File::try_lock`). Clippy's `incompatible_msrv` checks our own
/// use of std against it.
#[test]
fn the_declared_rust_version_covers_every_dependency() {
    let m = metadata();
    let members: Vec<&str> =
        m["workspace_members"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    let resolved: Vec<&str> = m["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap())
        .collect();
    let mut declared = Vec::new();
    let mut needed: Option<(Vec<u64>, String)> = None;
    for p in m["packages"].as_array().unwrap() {
        let id = p["id"].as_str().unwrap();
        let name = format!("{} {}", p["name"].as_str().unwrap(), p["version"].as_str().unwrap());
        let version = p["rust_version"].as_str();
        if members.contains(&id) {
            let version = version.unwrap_or_else(|| panic!("{name} declares no rust-version"));
            declared.push((rust_version(version), name));
        } else if resolved.contains(&id)
            && let Some(v) = version
            && needed.as_ref().is_none_or(|(max, _)| rust_version(v) > *max)
        {
            needed = Some((rust_version(v), name));
        }
    }
    let (needed, by) = needed.unwrap();
    assert!(declared.len() >= 6, "{declared:?}");
    for (version, member) in &declared {
        assert!(
            version >= &needed,
            "{member} declares rust-version {version:?}, but {by} needs {needed:?}"
        );
    }
}

/// Issue 10: the LICENSE file holds the licence every package declares, in full (the Apache
/// License 2.0 text as apache.org publishes it, 11 358 bytes).
#[test]
fn the_licence_file_is_the_declared_licence() {
    let m = metadata();
    let members: Vec<&str> =
        m["workspace_members"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    for p in m["packages"].as_array().unwrap() {
        if members.contains(&p["id"].as_str().unwrap()) {
            assert_eq!(p["license"].as_str(), Some("Apache-2.0"), "{}", p["name"]);
        }
    }
    let text = std::fs::read_to_string(crate::repo_path("LICENSE")).unwrap();
    assert!(text.starts_with("\n                                 Apache License\n                           Version 2.0, January 2004\n"));
    assert!(text.contains("TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION"));
    assert!(text.contains("9. Accepting Warranty or Additional Liability."));
    assert!(text.contains("END OF TERMS AND CONDITIONS"));
    assert!(text.contains("APPENDIX: How to apply the Apache License to your work."));
    assert_eq!(text.len(), 11_358, "not the whole licence text");
}

/// The walk through the code in docs/ARCHITECTURE.md names `file:line` (`item`) hops: each
/// line must still hold its item, so that the walk stays true as the code moves.
/// `UPDATE_DOCS=1` moves each stale hop to the line that now holds its item.
#[test]
fn the_architecture_walk_points_at_the_lines_it_names() {
    let original = std::fs::read_to_string(crate::repo_path("docs/ARCHITECTURE.md")).unwrap();
    // Joined lines: a hop may wrap.
    let doc = original.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut moves = Vec::new();
    let mut hops = 0;
    let mut stale = Vec::new();
    let mut rest = doc.as_str();
    while let Some(i) = rest.find("`crates/") {
        rest = &rest[i + 1..];
        let Some(end) = rest.find('`') else { break };
        let target = &rest[..end];
        rest = &rest[end + 1..];
        let Some((file, line)) = target.rsplit_once(':') else { continue };
        let Ok(line) = line.parse::<usize>() else { continue };
        // The item follows as ` (`item`)`.
        let Some(item) = rest.strip_prefix(" (`").and_then(|r| r.split('`').next()) else {
            stale.push(format!("{target}: no (`item`) after it"));
            continue;
        };
        hops += 1;
        let text = std::fs::read_to_string(crate::repo_path(file)).unwrap_or_default();
        let at = text.lines().nth(line.saturating_sub(1)).unwrap_or_default();
        if !at.contains(item) {
            let found = text
                .lines()
                .position(|l| l.contains(item) && (l.contains("fn ") || l.contains("=>")));
            stale.push(format!(
                "{file}:{line} does not hold `{item}` (it is at line {})",
                found.map_or("?".to_owned(), |n| (n + 1).to_string())
            ));
            if let Some(n) = found {
                moves.push((
                    format!("`{target}` (`{item}`)"),
                    format!("`{file}:{}` (`{item}`)", n + 1),
                ));
            }
        }
    }
    if std::env::var_os("UPDATE_DOCS").is_some() && !moves.is_empty() {
        let mut updated = original.clone();
        for (old, new) in &moves {
            updated = updated.replace(old.as_str(), new);
        }
        std::fs::write(crate::repo_path("docs/ARCHITECTURE.md"), updated).unwrap();
        return;
    }
    assert!(hops >= 15, "only {hops} hops found in the walk");
    assert!(stale.is_empty(), "docs/ARCHITECTURE.md's walk is stale:\n{}", stale.join("\n"));
}

/// Every text file under `dir` (skipping build output and hidden directories).
fn text_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" {
                text_files(&path, out);
            }
        } else if ["rs", "md", "toml", "json", "html", "js", "css", "py", "sh"]
            .iter()
            .any(|ext| path.extension().is_some_and(|e| e == *ext))
            || name == "run"
        {
            out.push(path);
        }
    }
}

#[test]
fn no_file_holds_a_merge_conflict_marker() {
    let mut files = Vec::new();
    for dir in ["crates", "docs", "tests", "examples", "sagas", "benches", ".ci"] {
        text_files(&crate::repo_path(dir), &mut files);
    }
    files.push(crate::repo_path("README.md"));
    files.push(crate::repo_path("Cargo.toml"));
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        for (i, line) in text.lines().enumerate() {
            if line.starts_with("<<<<<<< ") || line.starts_with(">>>>>>> ") {
                found.push(format!("{}:{}: {line}", file.display(), i + 1));
            }
        }
    }
    assert!(files.len() > 100, "the walk found the sources ({} files)", files.len());
    assert!(found.is_empty(), "merge conflict markers committed:\n{}", found.join("\n"));
}
