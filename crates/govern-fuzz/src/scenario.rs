//! Target `scenario`: the scenario loader (`govern_scenario::load_str`) on arbitrary text.
//!
//! Properties: no panic; text over `FILE_BYTES_MAX` is not offered (`load_file` reads no
//! more); every problem of a refused file is at a real line:column of it.

use govern_scenario::{FILE_BYTES_MAX, load_str};

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    if data.len() > FILE_BYTES_MAX {
        return;
    }
    // `load_file` refuses a file that is not UTF-8 before parsing it.
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(e) = load_str("fuzz.toml", text) {
        assert!(!e.problems.is_empty(), "a refusal with no problem");
        for p in &e.problems {
            crate::assert_position(text, p.at.line, p.at.column, &p.message);
        }
    }
}
