//! Fuzz target bodies: one function per target, taking the engine's bytes and panicking only
//! when a property fails (a panic inside the code under test is a failure too).
//!
//! `fuzz/` (its own workspace, outside the default build) links each body to libFuzzer
//! (`cargo fuzz run <target>`, `just fuzz`); `tests/smoke.rs` runs every body over its seed
//! corpus (`fuzz/corpus/<target>/`, plus seeds built here from the real writers) and a bounded
//! number of inputs mutated from them with a fixed-seed generator, in `cargo test`.
//! `docs/reliability.md`, "Fuzzing", lists the targets and what each checks.

pub mod http;
pub mod mem_io;
pub mod mutate;
pub mod plans;
pub mod receipt;
pub mod scenario;
pub mod seeds;
pub mod segment;
pub mod segment_records;
pub mod webhook;

/// A target: its name (the directory of its corpus, the `fuzz/fuzz_targets/` file) and body.
#[derive(Clone, Copy, Debug)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// Its body.
    pub run: fn(&[u8]),
}

/// Every target, in the order `docs/reliability.md` lists them.
pub const TARGETS: [Target; 7] = [
    Target { name: "scenario", run: scenario::run },
    Target { name: "plans", run: plans::run },
    Target { name: "segment", run: segment::run },
    Target { name: "segment_records", run: segment_records::run },
    Target { name: "receipt", run: receipt::run },
    Target { name: "webhook", run: webhook::run },
    Target { name: "http", run: http::run },
];

/// Asserts that a problem's position is a real place in `text`: line and column from 1, the
/// line at most one past the text's last (a problem "at the end"), the column at most one past
/// that line's last character.
///
/// # Panics
/// When it is not: the property this checks.
pub fn assert_position(text: &str, line: usize, column: usize, what: &str) {
    assert!(line >= 1 && column >= 1, "{what}: position {line}:{column} is not from 1");
    let lines: Vec<&str> = text.split('\n').collect();
    assert!(line <= lines.len(), "{what}: line {line} past the text's {} lines", lines.len());
    let chars = lines.get(line - 1).map_or(0, |l| l.chars().count());
    assert!(column <= chars + 1, "{what}: column {column} past line {line}'s {chars} characters");
}
