//! The log subscriber every `govern` command installs: tracing events to stderr, filtered by
//! `RUST_LOG` (default: warnings and errors), one readable line or one JSON object each
//! (`--log`).

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

use crate::out::Stderr;

/// The filter when `RUST_LOG` is unset: what needs a reader's attention, not every transition.
pub(crate) const DEFAULT_FILTER: &str = "warn";
/// The same for `govern simulate`, whose thousands of faults are injected on purpose (each
/// governor crash a warning, each failed sync and poisoned store an error): nothing, as
/// what it finds is in its own report (a broken invariant, with the replay command).
pub(crate) const SIMULATE_FILTER: &str = "off";

/// The log formats (`--log`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Pretty,
    /// One JSON object per event, with its span's fields.
    Json,
}

/// Installs the subscriber: events to stderr in `format`, filtered by `RUST_LOG`, else by
/// `default`. A `RUST_LOG` that does not parse is said on stderr and the default applies.
pub(crate) fn init(format: LogFormat, default: &str) {
    use std::io::IsTerminal as _;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(&directives)
            .unwrap_or_else(|e| {
                tell!("govern: RUST_LOG={directives:?} does not parse ({e}); logging at {default}");
                EnvFilter::new(default)
            }),
        _ => EnvFilter::new(default),
    };
    // `Stderr` takes a closed pipe as written; any other failure to write an event would be
    // reported by tracing-subscriber with `eprintln!` to the same failing stderr, which
    // panics: an event stderr cannot take is dropped instead.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(Stderr)
        .log_internal_errors(false)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Pretty => builder.with_target(false).try_init(),
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(true).try_init(),
    };
    // Only this binary installs one, once; were one there already, it would stay.
    let _ = installed;
}
