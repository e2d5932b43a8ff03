//! `govern run FILE...`: validates every scenario file first (nothing runs while any file
//! has a problem: exit 2, every problem with file, line and column), then runs each through
//! the real runtime on virtual time, printing a transcript and a summary (exit 0 when every
//! expectation held, 1 otherwise).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use govern_scenario::{LoadError, Progress, Scenario, load_file, run_blocking, transcript};

/// Options of `govern run`.
#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Scenario files (TOML, see docs/scenarios.md).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Keep the ledger in this data directory (which must hold none yet), to inspect it
    /// afterwards with `govern verify` or `govern receipts`. With several files, each gets
    /// DIR/<file name without .toml> (two files with the same name are refused). Default: a
    /// fresh temporary directory, removed after the run.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

/// Exit code when a file is invalid.
const INVALID: u8 = 2;

/// Runs the command; the exit code says how it went.
pub(crate) fn run(args: &RunArgs) -> ExitCode {
    quiet_injected_crashes();
    let mut scenarios: Vec<(String, Scenario)> = Vec::new();
    let mut invalid: Vec<LoadError> = Vec::new();
    for file in &args.files {
        match load_file(file) {
            Ok(s) => scenarios.push((file.display().to_string(), s)),
            Err(e) => invalid.push(e),
        }
    }
    if !invalid.is_empty() {
        for e in &invalid {
            tell!("{e}");
        }
        let problems: usize = invalid.iter().map(|e| e.problems.len()).sum();
        tell!("govern: {problems} problem(s) in {} file(s); nothing was run", invalid.len());
        return ExitCode::from(INVALID);
    }
    let dirs = match data_dirs(args.data_dir.as_deref(), &scenarios) {
        Ok(dirs) => dirs,
        Err(clash) => {
            tell!("govern: {clash}; nothing was run");
            return ExitCode::from(INVALID);
        }
    };
    let mut all_passed = true;
    // A closed stdout (`| head`) stops nothing: every scenario still runs, and the exit
    // status is theirs (see `out`).
    for (i, ((file, scenario), dir)) in scenarios.iter().zip(&dirs).enumerate() {
        match run_one(i > 0, dir.as_deref(), file, scenario) {
            Ok(passed) => all_passed &= passed,
            Err(e) => {
                tell!("govern: {file}: {e}");
                all_passed = false;
            }
        }
    }
    if all_passed { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The data directory of each scenario under `--data-dir` (None: a temporary one): DIR itself
/// for one file, DIR/<file name without .toml> for several. Two files that would share one
/// (`a/x.toml` and `b/x.toml`) are refused: the second would find the first's ledger.
fn data_dirs(
    data_dir: Option<&Path>,
    scenarios: &[(String, Scenario)],
) -> Result<Vec<Option<PathBuf>>, String> {
    let Some(root) = data_dir else { return Ok(vec![None; scenarios.len()]) };
    if let [_] = scenarios {
        return Ok(vec![Some(root.to_path_buf())]);
    }
    let mut taken: BTreeMap<PathBuf, &str> = BTreeMap::new();
    let mut dirs = Vec::with_capacity(scenarios.len());
    for (file, scenario) in scenarios {
        let stem = Path::new(file)
            .file_stem()
            .map_or_else(|| scenario.name.clone(), |s| s.to_string_lossy().into_owned());
        let dir = root.join(stem);
        if let Some(first) = taken.insert(dir.clone(), file) {
            return Err(format!(
                "{first} and {file} would share the data directory {}; rename one, or run them \
                 separately",
                dir.display()
            ));
        }
        dirs.push(Some(dir));
    }
    Ok(dirs)
}

/// Runs one scenario with its ledger in `data_dir` (None: a temporary directory), after a
/// blank line when it is not the first; Ok(whether every expectation held), Err when it could
/// not run or stdout failed (otherwise than by being closed).
fn run_one(
    blank_line: bool,
    data_dir: Option<&Path>,
    file: &str,
    scenario: &Scenario,
) -> Result<bool, String> {
    let temp;
    let dir = match data_dir {
        Some(dir) => dir.to_path_buf(),
        None => {
            temp = tempfile::Builder::new()
                .prefix("govern-run-")
                .tempdir()
                .map_err(|e| format!("creating a temporary data directory: {e}"))?;
            temp.path().to_path_buf()
        }
    };
    if blank_line {
        say!("");
    }
    say!("{}", transcript::heading(scenario, file));
    let mut printed: Result<(), String> = Ok(());
    let report = run_blocking(scenario, &dir, &mut |progress| {
        if printed.is_err() {
            return;
        }
        printed = match progress {
            Progress::Provisioned(tenants) => match transcript::provisioned(tenants) {
                Some(line) => crate::out::line(format_args!("{line}")),
                None => Ok(()),
            },
            Progress::Step(step) => {
                crate::out::line(format_args!("{}", transcript::step_lines(step)))
            }
            _ => Ok(()),
        };
    })
    .map_err(|e| e.to_string())?;
    printed?;
    say!("{}", transcript::summary(&report));
    if data_dir.is_some() {
        say!("ledger kept in {} (govern verify {0})", dir.display());
    }
    Ok(report.passed())
}

/// A crash a scenario injects panics on purpose: the transcript and the `warn` log line of
/// the restart say so; the panic message and backtrace would only bury them. Every other
/// panic still goes to the default hook.
fn quiet_injected_crashes() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !govern_runtime::is_injected_crash(info.payload()) {
            default(info);
        }
    }));
}
