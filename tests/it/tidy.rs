//! Tidy: every Rust source file says what it is for in its first line.

use std::path::Path;

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
