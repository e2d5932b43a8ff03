//! Test support: drive a governor through timed commands and print a transcript.

use std::fmt::Write as _;

use crate::args::CommandSpec;
use crate::governor::{Governor, StateSpec, replay_step};
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

/// Applies each `(day, command)` (all must be accepted) and, alongside, replays the recorded
/// transition with [`replay_step`] into a second machine; both must agree after every step,
/// timeouts included.
#[track_caller]
pub(crate) fn assert_replay_tracks_live<G: Governor>(steps: &[(u64, G::Command)]) {
    let (mut live, mut replayed) = (G::default(), G::default());
    for (day, command) in steps {
        let ctx = Ctx::at_ms(T0_MS + day * DAY_MS);
        let t = live.apply(command, &ctx).expect("every step of the walk is accepted");
        replay_step(
            &mut replayed,
            G::KIND.name(),
            command.name(),
            &command.args(),
            t.from.name(),
            t.to.name(),
            ctx.now,
        )
        .expect("the recorded step replays");
        assert_eq!(replayed, live, "after {}", command.name());
        assert_eq!(replayed.state_timeout(), live.state_timeout());
    }
}

/// Every sample of `C` parses back from its own arguments, and every command name has one.
#[track_caller]
pub(crate) fn assert_every_sample_round_trips<C: CommandSpec>() {
    let samples = C::samples(&Ctx::at_ms(T0_MS));
    for c in &samples {
        assert_round_trip(c);
    }
    for name in C::NAMES {
        assert!(samples.iter().any(|c| c.name() == *name), "no sample for {name}");
    }
}
