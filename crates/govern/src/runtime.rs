//! The runtime: start it, drive its governors, read its answers.
//!
//! [`Runtime::builder`] configures and starts a runtime; [`Runtime::handle`] gives the
//! [`RuntimeHandle`] that every task of the host clones; [`RuntimeHandle::governor`] (and
//! [`RuntimeHandle::subscription`], [`RuntimeHandle::tenant`]) address one governor of one
//! tenant as a typed [`GovernorHandle`], whose [`send`](GovernorHandle::send) answers an
//! [`Outcome`]: [`Accepted`] once the receipt is durable, or a [`CommandError`] (the
//! governor's rejection or the runtime's [`Refusal`]), each with a stable code and an HTTP
//! status. A host whose callers name commands as strings (an HTTP API, a script) sends a
//! [`RawCommand`] through [`RuntimeHandle::command`]. The contract is
//! `docs/runtime-semantics.md`.
//!
//! ```
//! use govern::governors::GovernorKind;
//! use govern::governors::tenant::ResourceQuota;
//! use govern::runtime::{RawCommand, Runtime};
//! use govern::{ResourceId, TenantId};
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let runtime = Runtime::builder().start().await?;
//! let h = runtime.handle();
//! let acme = TenantId::new("acme")?;
//! let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
//! h.provision_tenant(&acme, quota, "contract signed").await?;
//!
//! // A command by name with string arguments, as a request body would carry it.
//! let command = RawCommand {
//!     tenant: acme.clone(),
//!     kind: GovernorKind::from_name("quota").ok_or("no such governor")?,
//!     resource: ResourceId::new("api")?,
//!     name: "check_quota".into(),
//!     args: [("resource", "api_calls"), ("usage", "95"), ("limit", "100")]
//!         .map(|(k, v)| (k.to_owned(), v.to_owned()))
//!         .into(),
//!     reason: "metering".into(),
//!     metadata: vec![("request_id".into(), "req-42".into())],
//! };
//! let accepted = h.command(command).await?;
//! assert_eq!((accepted.from, accepted.to), ("normal", "throttled"));
//! runtime.shutdown().await?;
//! # Ok(())
//! # }
//! # fn main() {
//! #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
//! #     tokio.block_on(example()).unwrap();
//! # }
//! ```

/// A running runtime: the supervision tree, the tenant registry and the receipt ledger.
///
/// # Starting: [`Runtime::builder`]
///
/// Without a data directory the ledger is in memory (tests). A host gives
/// [`RuntimeBuilder::data_dir`]: receipts go to segment files there, replies wait until
/// theirs is on disk, checkpoints are signed with the key pair kept there, and starting again
/// on the same directory continues the ledger. [`Runtime::shutdown`] drains, makes the last
/// commit, signs a checkpoint and returns the ledger's [`Head`](crate::Head).
///
/// ```
/// use std::time::Duration;
///
/// use govern::governors::tenant::ResourceQuota;
/// use govern::{Runtime, TenantId};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?; // a host's own directory, e.g. /var/lib/myapp/govern
/// let runtime = Runtime::builder()
///     .data_dir(dir.path())
///     .reply_timeout(Duration::from_secs(2))
///     .start()
///     .await?;
/// let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
/// runtime.handle().provision_tenant(&TenantId::new("acme")?, quota, "contract signed").await?;
/// let head = runtime.shutdown().await?;
/// assert_eq!(head.next_seq, 2);
///
/// // Started again on its directory, the runtime continues the ledger and its tenants.
/// let runtime = Runtime::builder().data_dir(dir.path()).start().await?;
/// assert_eq!(runtime.handle().head(), head);
/// assert_eq!(runtime.handle().tenants().len(), 1);
/// runtime.shutdown().await?;
/// # Ok(())
/// # }
/// # fn main() {
/// #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// #     tokio.block_on(example()).unwrap();
/// # }
/// ```
pub use govern_runtime::Runtime;

/// A cheap, cloneable handle to a running runtime: tenants, governors, receipts.
///
/// # Tenants: [`RuntimeHandle::provision_tenant`]
///
/// A tenant exists once its tenant governor accepted a first command; `provision_tenant`
/// provisions it with its quota and activates it (two receipts). Commands to the governors
/// of a tenant that does not exist, or is not active, are refused before any governor
/// decides, and nothing is recorded.
///
/// ```
/// use govern::governors::tenant::{self, ResourceQuota};
/// use govern::{ResourceId, Runtime, TenantId};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::builder().start().await?;
/// let h = runtime.handle();
/// let acme = TenantId::new("acme")?;
/// let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
/// let activated = h.provision_tenant(&acme, quota, "contract signed").await?;
/// assert_eq!((activated.from, activated.to), ("provisioning", "active"));
/// assert_eq!(h.tenant_state(&acme), Some(tenant::State::Active));
///
/// let globex = TenantId::new("globex")?; // never provisioned
/// let sub = h.subscription(&globex, &ResourceId::new("sub-1")?);
/// let Err(refused) = sub.start_trial("pro", 14, "sign-up").await else { panic!() };
/// assert_eq!(
///     serde_json::to_string(&refused)?,
///     r#"{"code":"unknown_tenant","status":404,"message":"unknown tenant globex","#.to_owned()
///         + r#""tenant":"globex"}"#
/// );
/// assert_eq!(h.receipts(&acme, None, None)?.len(), 2);
/// assert!(h.receipts(&globex, None, None)?.is_empty());
/// runtime.shutdown().await?;
/// # Ok(())
/// # }
/// # fn main() {
/// #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// #     tokio.block_on(example()).unwrap();
/// # }
/// ```
///
/// # Checks and usage: [`RuntimeHandle::check`], [`RuntimeHandle::record_usage`]
///
/// With a plan catalog, `check` answers whether a tenant may use a feature (grants, then its
/// plans, then the policy rules; then its plan's rate and the feature's quota), without I/O;
/// `record_usage` counts metered usage, deduplicated by event id, durable when it returns.
///
/// ```
/// use govern::governors::tenant::ResourceQuota;
/// use govern::runtime::UsageRecorded;
/// use govern::{ResourceId, Runtime, TenantId};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let catalog = govern::plans::validate(
///     r#"version = "1"
/// [refusals.feature_not_in_plan]
/// status = 402
/// message = "upgrade"
/// [refusals.quota_exceeded]
/// status = 429
/// message = "over"
/// [features.reports]
/// description = "Reports"
/// meter = "reports"
/// [plans.team]
/// name = "Team"
/// price = { amount = "49.00", currency = "USD", interval = "month" }
/// features = ["reports"]
/// limits = { reports = { value = 2, reset = "monthly" } }
/// "#,
///     "plans.toml",
/// )
/// .map_err(|problems| format!("{problems:?}"))?;
/// let runtime = Runtime::builder().catalog(catalog).start().await?;
/// let h = runtime.handle();
/// let acme = TenantId::new("acme")?;
/// let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
/// h.provision_tenant(&acme, quota, "contract signed").await?;
/// h.subscription(&acme, &ResourceId::new("sub-1")?).start_trial("team", 14, "sign-up").await?;
///
/// assert!(h.check(&acme, "reports", "create", 1)?.is_allowed());
/// let used = h.record_usage(&acme, "reports", 2, "evt-1", h.now()).await?;
/// assert!(matches!(used, UsageRecorded::Counted { value: 2, quota: "exceeded", .. }));
/// assert_eq!(h.record_usage(&acme, "reports", 2, "evt-1", h.now()).await?, UsageRecorded::Duplicate);
/// let refused = h.check(&acme, "reports", "create", 1)?;
/// let r = refused.refusal().ok_or("allowed over the quota")?;
/// assert_eq!((r.code, r.status), ("quota_exceeded", 429));
/// runtime.shutdown().await?;
/// # Ok(())
/// # }
/// # fn main() {
/// #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// #     tokio.block_on(example()).unwrap();
/// # }
/// ```
pub use govern_runtime::RuntimeHandle;

/// One governor of one tenant, typed by its governor: `handle.governor::<Quota>(&t, &r)`.
///
/// # Commands: [`GovernorHandle::send`]
///
/// `send` takes the governor's own typed command and a reason, and answers once the
/// receipt is durable. A command the governor's state does not allow is rejected as a value
/// (nothing is recorded); [`GovernorHandle::send_request`] also carries metadata.
///
/// ```
/// use govern::governors::quota::{self, Quota, Resource};
/// use govern::governors::tenant::ResourceQuota;
/// use govern::{ResourceId, Runtime, TenantId};
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = Runtime::builder().start().await?;
/// let h = runtime.handle();
/// let acme = TenantId::new("acme")?;
/// let quota = ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };
/// h.provision_tenant(&acme, quota, "contract signed").await?;
///
/// let api = h.governor::<Quota>(&acme, &ResourceId::new("api")?);
/// let check = quota::Command::CheckQuota { resource: Resource::ApiCalls, usage: 80, limit: 100 };
/// let accepted = api.send(check, "metering").await?;
/// assert_eq!((accepted.from, accepted.to, accepted.resource_seq), ("normal", "warning", 0));
/// assert_eq!(api.state().await?, quota::State::Warning);
///
/// let Err(rejected) = api.send(quota::Command::ResumeNormal, "operator").await else {
///     panic!("a quota in warning resumed normal");
/// };
/// assert_eq!((rejected.code(), rejected.http_status()), ("invalid_transition", 409));
/// runtime.shutdown().await?;
/// # Ok(())
/// # }
/// # fn main() {
/// #     let tokio = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// #     tokio.block_on(example()).unwrap();
/// # }
/// ```
pub use govern_runtime::GovernorHandle;

pub use govern_runtime::{
    Accepted, CommandError, ERROR_CODES, Hosted, LedgerStatus, MeterUsage, Outcome, RawCommand,
    Refusal, Retention, RuntimeBuilder, RuntimeError, Snapshot, TenantUsageView, UsageRecorded,
    limits, metric_names,
};

/// Plan changes (`RuntimeHandle::apply_plan_change`, `docs/plans.md`): the error, with the
/// refusal that decides its answer (code, HTTP status, a cooldown's retry time), and the
/// applied change.
pub use govern_runtime::{
    PLAN_CHANGE_REFUSAL_CODES, PlanChangeApplied, PlanChangeError, PlanChangeRefusal,
    simulation_json,
};

/// Outbound notifications (`docs/notifications.md`): endpoints, events, the retry policy and
/// the transport, given to [`RuntimeBuilder::notifications`].
pub use govern_runtime::notify;
