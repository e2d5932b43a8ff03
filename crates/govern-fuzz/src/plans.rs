//! Target `plans`: the plan catalog's validators (`govern_plans::validate_files`) on arbitrary
//! text, as one file or several (the input split at NUL characters, at most
//! [`FILES_IN_INPUT_MAX`] files).
//!
//! Properties: no panic; every problem names one of the files given and a real line:column of
//! it (a whole-file problem is at 1:1); problems come sorted by file, line and column.

use govern_plans::{FILE_BYTES_MAX, validate_files};

/// The most files one input is split into (the validator's own bound, `FILES_MAX`, is far
/// above; cross-file references need only a few).
pub const FILES_IN_INPUT_MAX: usize = 4;

/// The target's body.
///
/// # Panics
/// When a property fails.
pub fn run(data: &[u8]) {
    // One byte over the validator's bound still exercises its refusal.
    if data.len() > FILE_BYTES_MAX + 1 {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let names = ["a.toml", "b.toml", "c.toml", "d.toml"];
    let files: Vec<(&str, &str)> =
        names.iter().copied().zip(text.splitn(FILES_IN_INPUT_MAX, '\0')).collect();
    let Err(problems) = validate_files(&files) else { return };
    assert!(!problems.is_empty(), "a refusal with no problem");
    let mut last = (0, 0, 0);
    for p in &problems {
        let index = names.iter().position(|n| *n == p.file);
        let Some((index, (_, body))) = index.and_then(|i| files.get(i).map(|f| (i, f))) else {
            panic!("problem names file `{}`, not one given: {p}", p.file);
        };
        crate::assert_position(body, p.line, p.column, &p.to_string());
        let here = (index, p.line, p.column);
        assert!(here >= last, "problems out of order: {p} after {last:?}");
        last = here;
    }
}
