//! The runtime's start state: what a runtime continuing a ledger derives from its receipts
//! before it takes commands (tenants' states, armed state timeouts, unfinished sagas, the
//! views checks decide with, idempotency keys, which quota governors count usage), as of a
//! ledger length S, kept in `<data_dir>/runtime.snap` so that a start reads only the
//! receipts after S instead of every receipt (`docs/runtime-semantics.md`, "The start
//! state").
//!
//! Every part is a function of the receipts below S (and of the configuration the
//! fingerprint names): a per-key part ([`KeyFacts`]) is what that key's receipts leave, so
//! the receipts after S are applied by recomputing each key they touch from its own receipts
//! (`Ledger::resource_receipts`); idempotency keys fold receipt by receipt
//! ([`crate::idempotency::fold`]); usage names the quota governors whose receipts the
//! counters are replayed from. [`StartState::full`] reads everything (what a start without
//! a usable file does); [`StartState::apply_tail`] carries a state forward. Both give the
//! same state for the same ledger, which the tests check.
//!
//! The file is written at start once the state is known (in the background) and at a clean
//! shutdown after the receipt actor's last commit; a file at any S of this history is
//! correct with the receipts after it applied, so a runtime that crashes leaves one that
//! costs the next start the receipts since it was written.

mod codec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use govern_governors::{
    Args, CommandSpec, Governor, GovernorKind, ResourceId, TenantId, Timestamp, tenant,
};
use govern_ledger::archive::states::BaseState;
use govern_ledger::{History, Ledger};
use govern_receipt::{Digest, Receipt};

use crate::commercial::View;
use crate::domains::Domains;
use crate::error::RuntimeError;
use crate::hosted::{Hosted, KindVisitor, dispatch};
use crate::idempotency::{Kept, fold, kept};
use crate::registry::{Key, Registry};

/// The parts of a starting runtime a start state is installed into.
pub(crate) struct Parts<'a> {
    pub(crate) ledger: &'a Ledger,
    pub(crate) now: Timestamp,
    /// The runtime has a catalog: views and usage are installed.
    pub(crate) catalog: bool,
    pub(crate) commercial: &'a crate::commercial::Commercial,
    pub(crate) idempotency: &'a crate::idempotency::Idempotency,
    pub(crate) sagas_to_resume: &'a std::sync::Mutex<Option<Vec<(TenantId, ResourceId)>>>,
}

pub(crate) use codec::Rejected;

/// The file's name in the data directory.
pub(crate) const FILE: &str = "runtime.snap";

/// Receipts after S read per call ([`Ledger::receipts_in`]) while applying the tail: what
/// one read holds decoded at a time.
const TAIL_PAGE: u64 = 16_384;

/// One key: (tenant, kind, resource).
pub(crate) type KeyId = (TenantId, GovernorKind, ResourceId);

/// An armed state timeout: the command (by name and arguments) and when it is due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Timeout {
    pub(crate) at: Timestamp,
    pub(crate) command: String,
    pub(crate) args: Args,
}

/// What one key's receipts leave for a start.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyFacts {
    /// Its state timeout, when its state has one.
    pub(crate) timeout: Option<Timeout>,
    /// What it holds for checks (a subscription's live plan, an entitled grant), with a
    /// catalog.
    pub(crate) view: Option<View>,
    /// A saga run left unfinished.
    pub(crate) unfinished_saga: bool,
}

impl KeyFacts {
    fn is_empty(&self) -> bool {
        self.timeout.is_none() && self.view.is_none() && !self.unfinished_saga
    }
}

/// What the state depends on besides the receipts.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Check views and usage are kept (the runtime has a catalog).
    pub(crate) views: bool,
    /// The idempotency window (ms) and bound per tenant.
    pub(crate) idempotency: (u64, usize),
    /// SHA-256 of everything above, the catalog and this build's version: a file whose
    /// fingerprint differs is not used.
    pub(crate) fingerprint: Digest,
}

impl Config {
    pub(crate) fn new(
        views: bool,
        idempotency: (u64, usize),
        catalog: Option<&govern_plans::Catalog>,
    ) -> Self {
        use sha2::Digest as _;
        let mut h = sha2::Sha256::new();
        h.update(codec::MAGIC);
        h.update(codec::VERSION.to_le_bytes());
        // The governors' machines (timeouts, views) are this build's.
        h.update(env!("CARGO_PKG_VERSION").as_bytes());
        h.update([u8::from(views)]);
        h.update(idempotency.0.to_le_bytes());
        h.update(u64::try_from(idempotency.1).unwrap_or(u64::MAX).to_le_bytes());
        // The catalog's content (its maps are ordered: its debug text is stable).
        if let Some(c) = catalog {
            h.update(format!("{c:?}").as_bytes());
        }
        Self { views, idempotency, fingerprint: Digest(h.finalize().into()) }
    }
}

/// The start state as of ledger length `seq`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct StartState {
    /// S: the receipts covered are those below it.
    pub(crate) seq: u64,
    /// The hash of receipt S-1 (zero for S = 0): a file of another history is not used.
    pub(crate) last_hash: Digest,
    /// The configuration's fingerprint.
    pub(crate) fingerprint: Digest,
    /// Each tenant's state, as its tenant governor's receipts leave it.
    pub(crate) tenants: BTreeMap<TenantId, tenant::State>,
    /// The keys that leave something, of tenants not deprovisioned.
    pub(crate) keys: BTreeMap<KeyId, KeyFacts>,
    /// Each tenant's idempotency keys (each key's last use, the newest within the bound,
    /// oldest first), of tenants not deprovisioned.
    pub(crate) idempotency: BTreeMap<TenantId, Vec<Kept>>,
    /// With a catalog: the quota governors that recorded usage, by tenant (the counters are
    /// replayed from their `record_usage` receipts), of tenants not deprovisioned.
    pub(crate) usage: BTreeMap<TenantId, BTreeSet<ResourceId>>,
}

fn fail(what: &'static str) -> impl Fn(String) -> RuntimeError {
    move |reason| RuntimeError::Start { what, reason }
}

/// Replays one key's receipts for what a start needs of it.
struct Facts<'a> {
    resource: &'a ResourceId,
    base: Option<&'a BaseState>,
    receipts: &'a [Receipt],
    timeout: bool,
    view: bool,
}

/// A governor's machine from its state at the archive boundary (if it has one) and its
/// receipts after it.
fn replayed<G: Hosted>(base: Option<&BaseState>, receipts: &[Receipt]) -> Result<G, String> {
    let (start, first) = match base {
        Some(base) => (G::decode_state(&base.state).map_err(|e| e.to_string())?, base.count),
        None => (G::default(), 0),
    };
    govern_receipt::replay_from(start, first, receipts).map_err(|e| e.to_string())
}

impl KindVisitor for Facts<'_> {
    type Out = Result<(Option<Timeout>, Option<View>), String>;
    fn visit<G: Hosted>(self) -> Self::Out {
        if self.receipts.is_empty() && self.base.is_none() {
            return Ok((None, None));
        }
        let machine: G = replayed(self.base, self.receipts)?;
        let timeout = if self.timeout {
            machine.state_timeout().map(|t| Timeout {
                at: t.at,
                command: t.command.name().to_owned(),
                args: t.command.args(),
            })
        } else {
            None
        };
        let view = if self.view { machine.held_view(self.resource) } else { None };
        Ok((timeout, view))
    }
}

/// What a key's history (its state at the archive boundary, if any, then its receipts, in
/// order) leaves.
fn key_facts(
    kind: GovernorKind,
    resource: &ResourceId,
    history: &History,
    views: bool,
) -> Result<KeyFacts, String> {
    let receipts = history.receipts.as_slice();
    let base_state;
    let state = match (receipts.last(), &history.base) {
        (Some(last), _) => last.body.state_to.as_ref(),
        (None, Some(base)) => {
            base_state = govern_governors::Machine::decode_state(kind, &base.state)
                .map_err(|e| e.to_string())?;
            base_state.state_name()
        }
        (None, None) => return Ok(KeyFacts::default()),
    };
    let timeout = timed_states(kind).contains(&state);
    // Subscriptions (plans), grants and the tenant's own governor (its provisioned quota,
    // which limits `TENANT_QUOTA_METERS` when its plans do not) feed checks.
    let view = views
        && matches!(
            kind,
            GovernorKind::Subscription | GovernorKind::Entitlement | GovernorKind::Tenant
        );
    let (timeout, view) = if timeout || view {
        let base = history.base.as_ref();
        dispatch(kind, Facts { resource, base, receipts, timeout, view })?
    } else {
        (None, None)
    };
    Ok(KeyFacts {
        timeout,
        view,
        unfinished_saga: kind == GovernorKind::Saga && crate::saga::unfinished(state),
    })
}

/// The states of each governor kind that arm a state timeout (found by exploring the pure
/// machine once per process).
fn timed_states(kind: GovernorKind) -> &'static [&'static str] {
    static TIMED: std::sync::OnceLock<Vec<(GovernorKind, Vec<&'static str>)>> =
        std::sync::OnceLock::new();
    let all = TIMED.get_or_init(|| {
        GovernorKind::ALL
            .into_iter()
            .map(|k| {
                let graph = govern_governors::graph::Graph::of_kind(k);
                (k, graph.timeouts.iter().map(|(state, _)| *state).collect())
            })
            .collect()
    });
    all.iter().find(|(k, _)| *k == kind).map_or(&[], |(_, states)| states.as_slice())
}

/// A tenant's state from its tenant governor's receipts below `end` (`None`: it has none).
fn tenant_state(
    ledger: &Ledger,
    tenant: &TenantId,
    end: u64,
) -> Result<Option<tenant::State>, String> {
    let resource = crate::registry::tenant_resource(tenant);
    let mut history = ledger
        .resource_history(tenant, GovernorKind::Tenant, &resource)
        .map_err(|e| e.to_string())?;
    history.receipts.retain(|r| r.seq < end);
    if history.receipts.is_empty() && history.base.is_none() {
        return Ok(None);
    }
    let machine: tenant::Tenant = replayed(history.base.as_ref(), &history.receipts)?;
    Ok(Some(machine.state()))
}

/// Governors' states at the archive boundary, by tenant.
type ArchivedStates = BTreeMap<TenantId, Vec<(GovernorKind, ResourceId, BaseState)>>;

/// The states at the archive boundary of every governor with archived receipts, by tenant
/// (none when nothing is archived). Read whole, once, by a start without a usable
/// `runtime.snap`.
fn archived_states(ledger: &Ledger) -> Result<ArchivedStates, String> {
    let mut out = ArchivedStates::new();
    ledger
        .for_each_archived_state(|tenant, kind, resource, base| {
            out.entry(tenant).or_default().push((kind, resource, base));
        })
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn usage_receipt(r: &Receipt) -> bool {
    r.body.governor == GovernorKind::Quota && r.body.command == "record_usage"
}

impl StartState {
    /// The state from every receipt of `ledger` (which takes no appends meanwhile): each
    /// tenant's receipts read once, grouped by key.
    pub(crate) fn full(
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
    ) -> Result<Self, RuntimeError> {
        let head = ledger.head();
        let mut state = Self {
            seq: head.next_seq,
            last_hash: head.last_hash,
            fingerprint: config.fingerprint,
            ..Self::default()
        };
        let tenants = ledger.receipt_counts();
        let mut archived = archived_states(ledger).map_err(fail("start state"))?;
        for (tenant, _) in &tenants {
            if let Some(s) =
                tenant_state(ledger, tenant, u64::MAX).map_err(fail("tenant registry"))?
            {
                state.tenants.insert(tenant.clone(), s);
            }
        }
        for (tenant, _) in tenants {
            if state.deprovisioned(&tenant) {
                continue;
            }
            let receipts = ledger
                .tenant_receipts(&tenant, None, None)
                .map_err(|e| fail("state timeouts")(e.to_string()))?;
            let keys = fold(Vec::new(), receipts.iter().filter_map(kept), config.idempotency, now);
            if !keys.is_empty() {
                state.idempotency.insert(tenant.clone(), keys);
            }
            let mut by_key: BTreeMap<(GovernorKind, ResourceId), History> = BTreeMap::new();
            // Governors with archived receipts start from their states at the boundary.
            if let Some(of) = archived.remove(&tenant) {
                for (kind, resource, base) in of {
                    by_key.entry((kind, resource)).or_default().base = Some(base);
                }
            }
            for r in receipts {
                if config.views && usage_receipt(&r) {
                    state.usage.entry(tenant.clone()).or_default().insert(r.body.resource.clone());
                }
                by_key
                    .entry((r.body.governor, r.body.resource.clone()))
                    .or_default()
                    .receipts
                    .push(r);
            }
            for ((kind, resource), history) in by_key {
                let facts = key_facts(kind, &resource, &history, config.views)
                    .map_err(fail("start state"))?;
                if !facts.is_empty() {
                    state.keys.insert((tenant.clone(), kind, resource), facts);
                }
            }
        }
        Ok(state)
    }

    fn deprovisioned(&self, tenant: &TenantId) -> bool {
        self.tenants.get(tenant) == Some(&tenant::State::Deprovisioned)
    }

    /// Carries the state forward over the receipts after its S, up to the ledger's length
    /// (which takes no appends meanwhile): every key they touch is recomputed from its own
    /// receipts, their idempotency keys are folded in, their quota governors that counted
    /// usage are added. Returns how many receipts were applied.
    pub(crate) fn apply_tail(
        &mut self,
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
    ) -> Result<u64, RuntimeError> {
        self.apply_tail_upto(ledger, config, now, ledger.head().next_seq)
    }

    /// [`Self::apply_tail`] up to receipt `end` (excluded) only, for a ledger that takes
    /// appends meanwhile: every key is recomputed from its receipts below `end`, so that
    /// the state is exactly that of the first `end` receipts (the durable ones, when the
    /// runtime writes the file while running: a crash cannot take them back).
    pub(crate) fn apply_tail_upto(
        &mut self,
        ledger: &Ledger,
        config: &Config,
        now: Timestamp,
        end: u64,
    ) -> Result<u64, RuntimeError> {
        let end = end.min(ledger.head().next_seq).max(self.seq);
        let start = self.seq;
        let mut touched: BTreeSet<KeyId> = BTreeSet::new();
        let mut keyed: BTreeMap<TenantId, Vec<Kept>> = BTreeMap::new();
        let mut last_hash = self.last_hash;
        let mut from = start;
        while from < end {
            let to = end.min(from.saturating_add(TAIL_PAGE));
            let receipts =
                ledger.receipts_in(from..to).map_err(|e| fail("start state")(e.to_string()))?;
            if u64::try_from(receipts.len()).ok() != Some(to - from) {
                return Err(fail("start state")(format!(
                    "receipts {from}..{to} could not all be read"
                )));
            }
            for r in &receipts {
                let tenant = &r.body.tenant;
                touched.insert((tenant.clone(), r.body.governor, r.body.resource.clone()));
                if let Some(k) = kept(r) {
                    // Folded as they come, so that a long tail holds the bound per tenant.
                    let list = keyed.entry(tenant.clone()).or_default();
                    list.push(k);
                    if list.len() > config.idempotency.1.saturating_mul(2) {
                        *list = fold(std::mem::take(list), [], config.idempotency, now);
                    }
                }
                if config.views && usage_receipt(r) {
                    self.usage.entry(tenant.clone()).or_default().insert(r.body.resource.clone());
                }
            }
            if let Some(r) = receipts.last() {
                last_hash = r.hash;
            }
            from = to;
        }
        // Tenants' states first: a tenant deprovisioned in the tail keeps nothing else.
        for (tenant, kind, resource) in &touched {
            if *kind == GovernorKind::Tenant && resource.as_str() == tenant.as_str() {
                match tenant_state(ledger, tenant, end).map_err(fail("tenant registry"))? {
                    Some(s) => self.tenants.insert(tenant.clone(), s),
                    None => self.tenants.remove(tenant),
                };
            }
        }
        let gone: Vec<TenantId> =
            self.tenants.keys().filter(|t| self.deprovisioned(t)).cloned().collect();
        for tenant in &gone {
            self.forget(tenant);
        }
        for (tenant, kind, resource) in touched {
            if self.deprovisioned(&tenant) {
                continue;
            }
            let mut history = ledger
                .resource_history(&tenant, kind, &resource)
                .map_err(|e| fail("start state")(e.to_string()))?;
            history.receipts.retain(|r| r.seq < end);
            let facts =
                key_facts(kind, &resource, &history, config.views).map_err(fail("start state"))?;
            let id = (tenant, kind, resource);
            if facts.is_empty() {
                self.keys.remove(&id);
            } else {
                self.keys.insert(id, facts);
            }
        }
        // Every tenant's keys, folded at `now` (those whose window passed go).
        let tenants: BTreeSet<TenantId> =
            self.idempotency.keys().chain(keyed.keys()).cloned().collect();
        for tenant in tenants {
            let old = self.idempotency.remove(&tenant).unwrap_or_default();
            if self.deprovisioned(&tenant) {
                continue;
            }
            let new = keyed.remove(&tenant).unwrap_or_default();
            let list = fold(old, new, config.idempotency, now);
            if !list.is_empty() {
                self.idempotency.insert(tenant, list);
            }
        }
        self.seq = end;
        self.last_hash = last_hash;
        self.fingerprint = config.fingerprint;
        Ok(end - start)
    }

    /// Drops everything of `tenant` but its state.
    fn forget(&mut self, tenant: &TenantId) {
        self.keys.retain(|(t, _, _), _| t != tenant);
        self.idempotency.remove(tenant);
        self.usage.remove(tenant);
    }

    /// Sets the registry's tenant states (before the actors start).
    pub(crate) fn install_registry(&self, registry: &Registry) {
        for (tenant, state) in &self.tenants {
            registry.set_state(tenant, *state);
        }
    }

    /// Arms the state timeouts, applies the check views, lists the unfinished sagas,
    /// restores the idempotency keys and, with a catalog, replays the usage counters.
    /// Returns how many timeouts were armed.
    pub(crate) fn install(
        &self,
        shared: &Parts<'_>,
        domains: &Arc<Domains>,
    ) -> Result<usize, RuntimeError> {
        let now = shared.now;
        let mut armed = 0;
        let mut sagas = Vec::new();
        for ((tenant, kind, resource), facts) in &self.keys {
            if let Some(view) = &facts.view
                && shared.catalog
            {
                shared.commercial.apply(tenant, view.clone());
            }
            if facts.unfinished_saga {
                sagas.push((tenant.clone(), resource.clone()));
            }
            if let Some(t) = &facts.timeout {
                let key = Key { tenant: tenant.clone(), resource: resource.clone() };
                domains
                    .by_kind(*kind)
                    .arm_named(&key, t.at, &t.command, &t.args)
                    .map_err(|e| fail("state timeouts")(e.to_string()))?;
                armed += 1;
            }
        }
        *shared.sagas_to_resume.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(sagas);
        for (tenant, kept) in &self.idempotency {
            shared.idempotency.restore(tenant, kept, now);
        }
        if shared.catalog {
            for (tenant, resources) in &self.usage {
                let mut receipts = Vec::new();
                for resource in resources {
                    let of = shared
                        .ledger
                        .resource_receipts(tenant, GovernorKind::Quota, resource)
                        .map_err(|e| fail("usage")(e.to_string()))?;
                    receipts.extend(of.into_iter().filter(usage_receipt));
                }
                receipts.sort_unstable_by_key(|r| r.seq);
                // Against the limits of the plans just applied.
                let limits = shared.commercial.limits(tenant, now);
                shared.commercial.usage.rebuild(tenant, &limits, &receipts);
            }
        }
        Ok(armed)
    }
}

/// Where a data directory keeps its start state.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The start state in `dir` if it is there, whole, of this configuration and of this
/// ledger's history (its S within the ledger, the receipt at S-1 the one it names).
///
/// # Errors
/// [`Rejected`] saying why it is not used.
pub(crate) fn load(dir: &Path, ledger: &Ledger, config: &Config) -> Result<StartState, Rejected> {
    let bytes = codec::read_file(&path(dir))?;
    let state = codec::decode(&bytes)?;
    check(&state, ledger, config)?;
    Ok(state)
}

/// Whether a decoded state may be used with this ledger and configuration.
pub(crate) fn check(state: &StartState, ledger: &Ledger, config: &Config) -> Result<(), Rejected> {
    if state.fingerprint != config.fingerprint {
        return Err(Rejected::Mismatch(
            "the configuration changed (catalog, idempotency window or bound, catalog presence, or version)"
                .into(),
        ));
    }
    let len = ledger.head().next_seq;
    if state.seq > len {
        return Err(Rejected::Mismatch(format!(
            "it covers {} receipts but the ledger holds {len}",
            state.seq
        )));
    }
    // Receipts after it were archived since it was written: what they changed is not here
    // to apply (the start state is rebuilt, from the states at the boundary).
    let boundary = ledger.archive_boundary();
    if state.seq <= boundary && state.seq < len && boundary > 0 {
        return Err(Rejected::Mismatch(format!(
            "it covers {} receipts and the receipts up to {boundary} are archived",
            state.seq
        )));
    }
    let hash = match state.seq.checked_sub(1) {
        None => Digest::ZERO,
        Some(last) if last < boundary => {
            ledger.archived_head().map_or(Digest::ZERO, |h| h.last_hash)
        }
        Some(last) => match ledger.receipts_in(last..state.seq) {
            Ok(r) => r.first().map_or(Digest::ZERO, |r| r.hash),
            Err(e) => return Err(Rejected::Mismatch(format!("receipt {last}: {e}"))),
        },
    };
    if hash != state.last_hash {
        return Err(Rejected::Mismatch(format!(
            "receipt {} has hash {hash}, not the {} it was written after: another history",
            state.seq.saturating_sub(1),
            state.last_hash
        )));
    }
    Ok(())
}

/// Writes `state` into `dir` atomically (a temporary file, synced, renamed into place, the
/// directory synced).
///
/// # Errors
/// The I/O error, with what was being done.
pub(crate) fn write(dir: &Path, state: &StartState) -> Result<(), String> {
    // One writer at a time (the start's, the snapshot thread's, the stop's share one
    // temporary file name): in this process, whatever the directory.
    static WRITING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = WRITING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    codec::write_file(dir, FILE, &codec::encode(state))
}

/// The start state of a runtime on `ledger`: the file in `dir` carried forward over the
/// receipts after it when it can be used, else every receipt read (saying why in the log).
/// Also says whether the state differs from the file (then it is worth writing).
#[allow(
    clippy::disallowed_methods,
    reason = "how long the start state took, for the log line people read"
)]
pub(crate) fn compute(
    dir: Option<&Path>,
    ledger: &Ledger,
    config: &Config,
    now: Timestamp,
) -> Result<(StartState, bool), RuntimeError> {
    let began = std::time::Instant::now();
    let ms =
        |began: std::time::Instant| u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX);
    let Some(dir) = dir else { return Ok((StartState::full(ledger, config, now)?, false)) };
    match load(dir, ledger, config) {
        Ok(mut state) => {
            let from = state.seq;
            let applied = state.apply_tail(ledger, config, now)?;
            tracing::info!(
                covers = from,
                tail = applied,
                ms = ms(began),
                "runtime start state loaded from {FILE} and the receipts after it"
            );
            Ok((state, applied > 0))
        }
        Err(why) => {
            match &why {
                Rejected::Missing => {
                    tracing::info!("no {FILE}: the start state is rebuilt from every receipt");
                }
                other => {
                    tracing::warn!(reason = %other, "{FILE} not used: the start state is rebuilt from every receipt");
                }
            }
            let state = StartState::full(ledger, config, now)?;
            tracing::info!(
                receipts = state.seq,
                ms = ms(began),
                "runtime start state rebuilt from every receipt"
            );
            Ok((state, true))
        }
    }
}

/// At a clean shutdown, once no receipt can come: the file carried forward to the ledger's
/// length and written, when it was usable (otherwise the next start reads every receipt).
pub(crate) fn write_at_shutdown(dir: &Path, ledger: &Ledger, config: &Config, now: Timestamp) {
    carry_forward(dir, ledger, config, now, ledger.head().next_seq, tracing::Level::WARN);
}

/// While running, from the thread that writes the ledger's snapshots: the file carried
/// forward to the durable receipts and written, when it was usable and the ledger grew.
/// Not writing it costs only time at the next start (the receipts after the file).
pub(crate) fn write_while_running(dir: &Path, ledger: &Ledger, config: &Config, now: Timestamp) {
    carry_forward(dir, ledger, config, now, ledger.durable_len(), tracing::Level::DEBUG);
}

/// The file in `dir` carried forward to receipt `end` and rewritten, if it was usable and
/// anything was applied; a file that cannot be used is logged at `unusable` (the next start
/// says why again, and reads every receipt).
fn carry_forward(
    dir: &Path,
    ledger: &Ledger,
    config: &Config,
    now: Timestamp,
    end: u64,
    unusable: tracing::Level,
) {
    match load(dir, ledger, config) {
        Ok(mut state) => match state.apply_tail_upto(ledger, config, now, end) {
            Ok(0) => {}
            Ok(applied) => match write(dir, &state) {
                Ok(()) => tracing::info!(covers = state.seq, applied, "{FILE} written"),
                Err(e) => tracing::warn!(error = %e, "{FILE} not written"),
            },
            Err(e) => tracing::warn!(error = %e, "{FILE} not carried forward"),
        },
        Err(why) if unusable == tracing::Level::WARN => {
            tracing::warn!(reason = %why, "{FILE} not carried forward");
        }
        Err(why) => tracing::debug!(reason = %why, "{FILE} not carried forward"),
    }
}

#[cfg(test)]
mod tests;
