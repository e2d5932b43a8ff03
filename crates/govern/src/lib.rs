//! govern for hosts: the one crate a host binary depends on.
//!
//! govern governs the commercial life of a SaaS platform's tenants: accounts, subscriptions,
//! payments, entitlements, quotas, compliance audits, catalog products and tenancy itself.
//! Each is a **governor**, a finite state machine running as a supervised actor; every command
//! a governor accepts leaves a **receipt** in a SHA-256 hash chain with Merkle proofs and
//! signed checkpoints, and is acknowledged only once that receipt is durable.
//!
//! This crate re-exports what a host needs, by topic:
//!
//! - [`runtime`]: start and stop the runtime ([`Runtime`], [`RuntimeBuilder`]), drive it
//!   ([`RuntimeHandle`], [`GovernorHandle`], [`RawCommand`]) and read its answers
//!   ([`Accepted`], [`CommandError`], [`Refusal`], [`Outcome`]), with its limits.
//! - [`governors`]: the nine governors (one module each, with its `Command` and `State`),
//!   ids ([`TenantId`], [`ResourceId`]), [`Timestamp`], [`Money`], rejections.
//! - [`receipts`]: [`Receipt`], [`Head`], [`Digest`], chain verification and replay.
//! - [`ledger`]: the ledger's configuration (stores, durability, group commit, checkpoint
//!   signer) and the verification a host or an auditor runs: a data directory, Merkle
//!   proofs, signed checkpoints.
//! - [`plans`]: the plan catalog ([`plans::Catalog`], `load`, `validate`), given to the
//!   runtime with [`RuntimeBuilder::catalog`]; [`policy`]: the pure entitlement decision
//!   ([`policy::decide`], [`policy::DecisionCache`]); [`usage`]: usage meters, deduplication
//!   and GCRA rate limits, pure; [`licence`]: licence keys, issued and verified offline.
//!
//! The most used names are also here at the root. Answers and receipts serialise with serde
//! in fixed, documented shapes, so a host returns them as JSON as they are
//! (`docs/runtime-semantics.md`, "For hosts: outcomes as JSON").
//!
//! # Example
//!
//! A runtime in memory (for a real host, [`RuntimeBuilder::data_dir`]), one tenant, one
//! subscription: an accepted command, a refused one, the tenant's receipts.
//!
//! ```
//! use govern::governors::tenant::ResourceQuota;
//! use govern::{ResourceId, Runtime, TenantId};
//!
//! async fn run() -> Result<(), Box<dyn std::error::Error>> {
//!     let runtime = Runtime::builder().start().await?;
//!     let h = runtime.handle(); // cheap to clone
//!     let acme = TenantId::new("acme")?;
//!     let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
//!     h.provision_tenant(&acme, quota, "contract signed").await?; // receipts 0 and 1
//!
//!     let sub = h.subscription(&acme, &ResourceId::new("sub-1")?);
//!     let accepted = sub.start_trial("pro", 14, "self-serve sign-up").await?;
//!     assert_eq!((accepted.seq, accepted.from, accepted.to), (2, "pending", "free_trial"));
//!     // What a host returns: {"seq":2,"hash":"<hex>","resource_seq":0,"from":..,"to":..}
//!     let json = serde_json::to_string(&accepted)?;
//!     assert!(json.starts_with(r#"{"seq":2,"hash":""#));
//!
//!     // A refusal is a value with a stable code and an HTTP status.
//!     let Err(refused) = sub.archive("cleanup").await else { panic!("archived a trial") };
//!     assert_eq!((refused.code(), refused.http_status()), ("invalid_transition", 409));
//!
//!     let receipts = h.receipts(&acme, None, None)?; // this tenant's only
//!     assert_eq!(receipts.len(), 3);
//!     let head = runtime.shutdown().await?; // drains, last commit (and checkpoint on disk)
//!     assert_eq!(head.next_seq, 3);
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())
//! }
//! ```
//!
//! Architecture invariant: this crate only re-exports (and documents); the code lives in
//! `govern-runtime`, `govern-governors`, `govern-receipt` and `govern-ledger`.

pub mod governors;
pub mod ledger;

/// Licence keys: signed tokens carrying a tenant's plan, features, limits, seats and validity
/// window (HMAC-SHA256 or Ed25519), a keyring for rotation and a cache of verified tokens;
/// pure, `now` is an argument (`docs/licences.md`).
pub use govern_licence as licence;

/// The plan catalog: plans, prices, features, limits, envelopes, refusal codes, upgrade paths
/// and evidence, loaded from TOML and validated (`docs/plans.md`).
pub use govern_plans as plans;
/// The pure entitlement decision: tenant state, grants, plan features, policy rules, limits
/// (`docs/policy.md`).
pub use govern_policy as policy;
/// The ledger on PostgreSQL (feature `postgres`): `PostgresStore`, a store for
/// `Runtime::builder().store(...)`, with the receipts as rows of an append-only table
/// (`docs/postgres.md`).
#[cfg(feature = "postgres")]
pub use govern_postgres as postgres;
/// Usage meters with reset periods and thresholds, event deduplication, and GCRA rate limits,
/// all pure (`docs/usage.md`).
pub use govern_usage as usage;
pub mod receipts;
pub mod runtime;

pub use governors::{Currency, GovernorKind, Money, ResourceId, TenantId, Timestamp};
pub use receipts::{Digest, Head, Receipt};
pub use runtime::{
    Accepted, CommandError, GovernorHandle, Outcome, RawCommand, Refusal, Runtime, RuntimeBuilder,
    RuntimeHandle,
};
