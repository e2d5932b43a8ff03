//! The workspace's integration tests, in one binary.

#![allow(clippy::unwrap_used, reason = "test code: a failed unwrap is a failed test")]

mod arch;
mod exhaustive;
mod governor_docs;
mod properties;
mod runtime;
mod scenarios;
mod tidy;

use std::path::PathBuf;

/// A path relative to the repository root.
pub(crate) fn repo_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

/// Runs `$body` with `$g` bound to each governor type.
#[macro_export]
macro_rules! for_each_governor {
    ($m:ident) => {{
        $m::<govern_governors::entitlement::Entitlement>();
        $m::<govern_governors::billing::Billing>();
        $m::<govern_governors::catalog::Product>();
        $m::<govern_governors::subscription::Subscription>();
        $m::<govern_governors::account::Account>();
        $m::<govern_governors::quota::Quota>();
        $m::<govern_governors::compliance::Audit>();
        $m::<govern_governors::tenant::Tenant>();
    }};
}
