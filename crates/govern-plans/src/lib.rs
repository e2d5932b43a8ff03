//! The plan catalog: what a SaaS sells (plans with prices, features, limits, envelopes, a
//! refusal table, upgrade paths and evidence), read from TOML files and validated before
//! anything uses it.
//!
//! [`validate`] checks one file's text, [`validate_files`] several files taken together as one
//! catalog; both report every problem at once, each with file, line, column, the dotted field,
//! a message and a hint ([`Problem`]), found by seed 002's four validators ([`Check`]):
//! schema, consistency (envelopes and limits along upgrade paths), refusal codes that exist,
//! evidence present. The format and every rule: `docs/plans.md`.
//!
//! Pure: no clock, no I/O, except [`load`] and [`load_files`], which read files (bounded,
//! [`FILE_BYTES_MAX`]) and call the parser.
//!
//! The files are parsed with `toml_edit`, which keeps every key's and value's span, so that
//! each problem points at the line and column that causes it.

mod check;
mod ids;
mod model;
mod parse;
mod problem;
pub mod sla;
mod upgrade;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

pub use ids::{EvidenceId, Feature, ID_LEN_MAX, IdError, Meter, PlanId, RefusalCode};
pub use model::{
    Aggregation, Catalog, Envelope, Evidence, FeatureDef, Interval, Limit, LimitValue,
    MeterPricing, Plan, Price, Refusal, Reset, Status, Tier, TierMode, Upgrade,
};
pub use model::{ERROR_RATE_DECIMALS_MAX, ERROR_RATE_MAX_DEFAULT};
pub use problem::{Check, Problem};
pub use upgrade::{
    Certification, ChangeKind, ChangePath, Cooldown, DecidingRefusal, Gate, GateReport, Overage,
    PathRefusal, PlanChangeInput, ReceiptState, Simulation, SlaStatus, USAGE_METERS_MAX, Verdict,
    can_upgrade, certification_valid, clean_receipt_state, infrastructure_headroom,
    resource_availability, simulate, sla_compliance,
};

/// The largest catalog file read, in bytes.
pub const FILE_BYTES_MAX: usize = 1 << 20;
/// The most files validated together.
pub const FILES_MAX: usize = 256;
/// The most plans one file defines.
pub const PLANS_MAX: usize = 1_000;
/// The most entries of one table or array (features, refusals, evidence, a plan's features,
/// limits, upgrades, evidence).
pub const ENTRIES_MAX: usize = 1_000;
/// The most tiers of one meter's pricing.
pub const TIERS_MAX: usize = 100;
/// The most decimals of a tier's unit price (`"0.000001"` has 6).
pub const UNIT_DECIMALS_MAX: u32 = 12;
/// The longest name, title or version, in characters.
pub const NAME_LEN_MAX: usize = 200;
/// The longest description, message or document reference, in characters.
pub const DESCRIPTION_LEN_MAX: usize = 2_000;
/// The longest upgrade cooldown: ten years (3650 days).
pub const COOLDOWN_MAX: Duration = Duration::from_secs(3_650 * 86_400);
/// The shortest rolling window: one second.
pub const WINDOW_MIN: Duration = Duration::from_secs(1);
/// The longest rolling window: 366 days.
pub const WINDOW_MAX: Duration = Duration::from_secs(366 * 86_400);

/// Validates one catalog file's text; `file` names it in problems.
///
/// # Errors
/// Every problem found, in file order.
pub fn validate(text: &str, file: &str) -> Result<Catalog, Vec<Problem>> {
    validate_files(&[(file, text)])
}

/// Validates several files as one catalog: `(name, text)` each. Features, refusals and
/// evidence may be defined in any of them (twice only identically); a plan id defined twice
/// is a problem at both places; references resolve across files; every file carries the same
/// `version`.
///
/// # Errors
/// Every problem found, sorted by file (in the order given), line and column.
pub fn validate_files(files: &[(&str, &str)]) -> Result<Catalog, Vec<Problem>> {
    let mut problems = Vec::new();
    let names: Vec<String> = files.iter().map(|(name, _)| (*name).to_owned()).collect();
    if files.is_empty() {
        problems.push(whole_file(
            "",
            "no catalog file given".into(),
            "name at least one file".into(),
        ));
        return Err(problems);
    }
    if files.len() > FILES_MAX {
        problems.push(whole_file(
            &names[0],
            format!("{} files given together", files.len()),
            format!("at most {FILES_MAX}"),
        ));
        return Err(problems);
    }
    let mut parsed = Vec::with_capacity(files.len());
    for (i, (name, text)) in files.iter().enumerate() {
        if text.len() > FILE_BYTES_MAX {
            problems.push(whole_file(
                name,
                format!("is {} bytes", text.len()),
                format!("a catalog file is at most {FILE_BYTES_MAX} bytes"),
            ));
            continue;
        }
        let mut cx = parse::Cx::new(i, name, text, &mut problems);
        if let Some(src) = parse::parse(&mut cx) {
            parsed.push(src);
        }
    }
    let catalog = check::check(&names, parsed, &mut problems);
    match catalog {
        Some(c) if problems.is_empty() => Ok(c),
        _ => {
            let order = |p: &Problem| names.iter().position(|n| *n == p.file).unwrap_or(usize::MAX);
            problems.sort_by(|a, b| {
                (order(a), a.line, a.column, &a.field, &a.message).cmp(&(
                    order(b),
                    b.line,
                    b.column,
                    &b.field,
                    &b.message,
                ))
            });
            problems.dedup();
            Err(problems)
        }
    }
}

fn whole_file(file: &str, message: String, hint: String) -> Problem {
    Problem {
        file: file.to_owned(),
        line: 1,
        column: 1,
        field: String::new(),
        message,
        hint,
        check: Check::Schema,
    }
}

/// Reads the catalog file at `path` (a regular file of at most [`FILE_BYTES_MAX`] bytes of
/// UTF-8) and validates it.
///
/// # Errors
/// Every problem; a file that cannot be read is one problem at 1:1.
pub fn load(path: &Path) -> Result<Catalog, Vec<Problem>> {
    load_files(&[path])
}

/// Reads the catalog files at `paths` and validates them together ([`validate_files`]).
///
/// # Errors
/// Every problem; each file that cannot be read is one problem at 1:1 (and the others are
/// still checked).
pub fn load_files(paths: &[&Path]) -> Result<Catalog, Vec<Problem>> {
    let mut texts = Vec::with_capacity(paths.len());
    let mut unreadable = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match read(path) {
            Ok(text) => texts.push((name, text)),
            Err(message) => unreadable.push(whole_file(
                &name,
                message,
                "name a readable catalog file (TOML, UTF-8)".into(),
            )),
        }
    }
    let files: Vec<(&str, &str)> = texts.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    // With no readable file there is nothing to check, but the unreadable ones; with no file
    // named at all, `validate_files` says so.
    let result = if files.is_empty() && !unreadable.is_empty() {
        Err(Vec::new())
    } else {
        validate_files(&files)
    };
    if unreadable.is_empty() {
        return result;
    }
    let mut problems = result.err().unwrap_or_default();
    problems.extend(unreadable);
    Err(problems)
}

/// The text of the regular file at `path`, at most [`FILE_BYTES_MAX`] bytes, or why not. The
/// file must be regular before it is opened (opened without blocking on Unix) and after.
fn read(path: &Path) -> Result<String, String> {
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // A FIFO swapped in after the check above must not block the open.
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| format!("cannot read the file: {e}"))?;
    if !file.metadata().is_ok_and(|m| m.is_file()) {
        return Err("not a regular file".into());
    }
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the file: {e}"))?;
    if bytes.len() > FILE_BYTES_MAX {
        return Err(format!(
            "the file is more than {FILE_BYTES_MAX} bytes, the most a catalog file may be"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "the file is not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}
