//! Named limits of the pure core. Every bound on input size lives here.

/// Longest tenant or resource id, in bytes.
pub const ID_LEN_MAX: usize = 128;
/// Longest reason attached to a command, in bytes.
pub const REASON_LEN_MAX: usize = 512;
/// Most metadata entries on one command.
pub const METADATA_ENTRIES_MAX: usize = 32;
/// Longest metadata key, in bytes.
pub const METADATA_KEY_LEN_MAX: usize = 64;
/// Longest metadata value, in bytes.
pub const METADATA_VALUE_LEN_MAX: usize = 1024;
/// Longest free-text command argument (a plan id, a feature key, a finding), in bytes.
pub const TEXT_ARG_LEN_MAX: usize = 256;
/// Longest SKU, in bytes.
pub const SKU_LEN_MAX: usize = 64;
/// Longest e-mail address, in bytes (RFC 5321 path limit).
pub const EMAIL_LEN_MAX: usize = 254;
/// Longest trial a subscription may start with.
pub const TRIAL_DAYS_MAX: u32 = 365;
/// How long after a plan change `rollback_plan` may restore the plan left: 7 days.
pub const PLAN_ROLLBACK_WINDOW_MS: u64 = 7 * 86_400_000;
/// Longest maintenance window a tenant may schedule.
pub const MAINTENANCE_MINUTES_MAX: u32 = 7 * 24 * 60;
/// Longest remediation deadline a compliance audit may grant.
pub const REMEDIATION_DAYS_MAX: u32 = 365;
/// Longest encoded governor machine state, in bytes (`codec.rs`). The largest machine, a
/// saga's, holds its parameters and three texts.
pub const STATE_LEN_MAX: usize = 8 * 1024;

const _: () =
    assert!(crate::saga::SAGA_PARAMS_LEN_MAX + 3 * TEXT_ARG_LEN_MAX + 128 <= STATE_LEN_MAX);
const _: () = assert!(METADATA_KEY_LEN_MAX <= METADATA_VALUE_LEN_MAX);
const _: () = assert!(SKU_LEN_MAX <= TEXT_ARG_LEN_MAX);
