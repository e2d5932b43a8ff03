//! Scenario scripts: how people drive the govern runtime and show what it guarantees.
//!
//! A scenario is a TOML file (`docs/scenarios.md`): tenants to provision, then steps
//! (commands to governors, advancing the virtual clock, crashes, restarts, verification),
//! each with what must come of it. [`load_file`] validates a whole file and reports every
//! problem with its line and column before anything runs; [`run_blocking`] runs it through
//! the real runtime (actors, durable ledger) on tokio's paused clock, so that a run is
//! deterministic; [`transcript`] turns the outcome into the readable lines `govern run`
//! prints.

mod duration;
mod load;
mod run;
mod spec;
pub mod transcript;

pub use load::{
    ADVANCE_MAX, ADVANCE_TOTAL_MAX, CLOCK_END, DEFAULT_REASON, DEFAULT_START, FILE_BYTES_MAX,
    LoadError, Problem, STEPS_MAX, load_file, load_str, state_names,
};
pub use run::{Progress, RunError, RunReport, StepOutcome, StepReport, run, run_blocking};
pub use spec::{Action, Expect, Location, RunExpect, Scenario, Step, Target, TenantSpec};
