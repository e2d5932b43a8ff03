//! Test support: drive a governor through timed commands and print a transcript.

use std::fmt::Write as _;

use crate::args::CommandSpec;
use crate::governor::{Governor, StateSpec};
use crate::time::{Ctx, DAY_MS};

/// The test clock starts at 2026-01-01T00:00:00Z.
pub(crate) const T0_MS: u64 = crate::graph::EXPLORE_EPOCH_MS;

/// Applies each `(day, command)` at `T0 + day` days and returns one line per command:
/// `from --command--> to` or `from --command--> rejected <kind>: <message>`.
pub(crate) fn transcript<G: Governor>(machine: &mut G, steps: &[(u64, G::Command)]) -> String {
    let mut out = String::new();
    for (day, command) in steps {
        let ctx = Ctx::at_ms(T0_MS + day * DAY_MS);
        let from = machine.state().name();
        let line = match machine.apply(command, &ctx) {
            Ok(t) => format!("{from} --{}--> {}", command.name(), t.to.name()),
            Err(r) => format!("{from} --{}--> rejected {}: {r}", command.name(), r.kind()),
        };
        let _ = writeln!(out, "{line}");
    }
    out
}

/// Asserts that `command` parses back from its own name and arguments.
#[track_caller]
pub(crate) fn assert_round_trip<C: CommandSpec>(command: &C) {
    let parsed = C::parse(command.name(), &command.args()).expect("a command's own args parse");
    assert_eq!(&parsed, command);
}
