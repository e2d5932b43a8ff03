//! A deterministic simulator (issue 17, TigerBeetle's VOPR as the reference): one seed drives
//! random commands of random tenants' governors, clock jumps, passivations and restarts
//! through the real runtime (its actors, its receipt actor, the durable segment store) on
//! tokio's paused clock, with faults injected from the same seed: governor panics at both
//! crash points, failed `fdatasync`s and torn writes in the store (a fault-injecting
//! in-memory filesystem, `govern_ledger::segment::FaultIo`), crashes that drop what was not
//! synced, and bit flips in segment files at a restart.
//!
//! Every command is decided first by a pure model (`model.rs`: the governors' machines
//! through the pure core alone), and after every fault and every `check_every` steps the
//! simulator checks the invariants:
//! - the runtime answered what the model decided (accepted with the same transition, or
//!   rejected with the same kind); a runtime refusal only when a fault explains it;
//! - nothing acknowledged is lost: every accepted receipt is in the ledger at its number
//!   with its hash, after every restart;
//! - every governor's receipts are exactly the model's (command, completed arguments,
//!   states, time, `resource_seq`), and its state (codec bytes, read from its actor) equals
//!   both the model's machine and the replay of its receipts;
//! - the chain verifies; each tenant's receipts are its own;
//! - a flipped bit in a segment is refused when the store is opened, never read as data.
//!
//! A command whose outcome the runtime could not tell (refused `ledger_unavailable`,
//! `timeout`, `governor_unavailable` because of an injected fault) may or may not have been
//! recorded: after the restart that follows, its governor holds either the model's receipt or
//! nothing more, and the model takes what the ledger says. A failing seed reports the command
//! that replays it exactly.

mod commercial;
mod model;
mod rng;

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::{Args, Ctx, GovernorKind, Machine, ResourceId, TenantId, Timestamp};
use govern_ledger::segment::{FaultIo, SegmentOptions, SegmentStore};
use govern_plans::Catalog;
use govern_receipt::{Digest, Receipt};
use govern_runtime::{
    CommandError, CrashPoint, RawCommand, Refusal, Runtime, RuntimeHandle, SagaEnd, SagaFaults,
    UsageRecorded,
};

use model::{Expected, Key, Model};
pub use rng::SplitMix64;

/// The kinds whose commands the simulator sends (the tenant governor is provisioned once;
/// the audit trail and saga runs are the runtime's own).
const KINDS: [GovernorKind; 7] = [
    GovernorKind::Subscription,
    GovernorKind::Billing,
    GovernorKind::Entitlement,
    GovernorKind::Account,
    GovernorKind::Quota,
    GovernorKind::Compliance,
    GovernorKind::Catalog,
];
/// Commands a host may not send (the runtime refuses them `reserved`).
const RESERVED: [(GovernorKind, &str); 2] =
    [(GovernorKind::Subscription, "change_plan"), (GovernorKind::Quota, "record_usage")];
/// Resources per kind and tenant.
const RESOURCES_PER_KIND: u64 = 3;
/// Acknowledged usage events kept to send again.
const USAGE_IDS_KEPT: usize = 64;
/// Tenants one run onboards by saga at most.
const ONBOARDED_MAX: usize = 64;
/// Segments are small, so that runs roll them.
const SEGMENT_BYTES: u64 = 16 * 1024;
/// The clock the runs start at: 2026-01-01T00:00:00Z.
const EPOCH: Timestamp = Timestamp(1_767_225_600_000);
/// The most steps one run may take.
pub const STEPS_MAX: u64 = 10_000_000;
/// The most tenants one run may have.
pub const TENANTS_MAX: usize = 10_000;

/// What one run does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// The seed: everything random in the run comes from it.
    pub seed: u64,
    /// Steps (a command, a clock jump, a passivation or a fault each).
    pub steps: u64,
    /// Tenants.
    pub tenants: usize,
    /// Whether faults are injected.
    pub faults: bool,
    /// Check every invariant every this many steps (and after every fault, and at the end).
    pub check_every: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self { seed: 1, steps: 1_000, tenants: 4, faults: true, check_every: 100 }
    }
}

impl SimConfig {
    /// The command that replays this run exactly.
    #[must_use]
    pub fn replay_command(&self) -> String {
        let faults = if self.faults { "" } else { " --no-faults" };
        format!(
            "govern simulate --seed {} --steps {} --tenants {} --check-every {}{faults}",
            self.seed, self.steps, self.tenants, self.check_every
        )
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SimReport {
    /// Commands sent.
    pub commands: u64,
    /// Accepted (receipted) ones.
    pub accepted: u64,
    /// Rejected by their governor, as the model decided.
    pub rejected: u64,
    /// Refused by the runtime (only where an injected fault explains it).
    pub refused: u64,
    /// Commands whose outcome was unknown and was taken from the ledger after a restart:
    /// found recorded, found not recorded.
    pub unknown_recorded: u64,
    /// See `unknown_recorded`.
    pub unknown_lost: u64,
    /// Clock jumps, and the state timeouts they fired.
    pub clock_jumps: u64,
    /// See `clock_jumps`.
    pub timeouts_fired: u64,
    /// Passivation sweeps.
    pub passivations: u64,
    /// Usage events: counted, found duplicates, refused as the model said (a meter no
    /// limit counts).
    pub usage_counted: u64,
    /// See `usage_counted`.
    pub usage_duplicates: u64,
    /// See `usage_counted`.
    pub usage_refused: u64,
    /// Checks, each compared with the pure rules' decision from the model.
    pub checks_decided: u64,
    /// Onboarding saga runs: completed, compensated (a step failed by injection), resumed
    /// after a coordinator crash.
    pub sagas_completed: u64,
    /// See `sagas_completed`.
    pub sagas_compensated: u64,
    /// See `sagas_completed`.
    pub sagas_resumed: u64,
    /// Receipts the runtime wrote on its own (provisioning, usage flushes, audit records,
    /// saga runs and their steps), each taken into the model only once the pure core
    /// accepted it from the model's machine with the same transition.
    pub adopted: u64,
    /// Faults injected, by name.
    pub faults: BTreeMap<&'static str, u64>,
    /// Runtime restarts (clean and after crashes).
    pub restarts: u64,
    /// Full invariant checks.
    pub checks: u64,
    /// Receipts in the ledger at the end, and the chain's head.
    pub receipts: u64,
    /// See `receipts`.
    pub head: Digest,
}

impl SimReport {
    /// Every count by name, in a fixed order (for machine-readable output).
    #[must_use]
    pub fn counts(&self) -> [(&'static str, u64); 21] {
        [
            ("commands", self.commands),
            ("accepted", self.accepted),
            ("rejected", self.rejected),
            ("refused", self.refused),
            ("unknown_recorded", self.unknown_recorded),
            ("unknown_lost", self.unknown_lost),
            ("clock_jumps", self.clock_jumps),
            ("timeouts_fired", self.timeouts_fired),
            ("passivations", self.passivations),
            ("usage_counted", self.usage_counted),
            ("usage_duplicates", self.usage_duplicates),
            ("usage_refused", self.usage_refused),
            ("checks_decided", self.checks_decided),
            ("sagas_completed", self.sagas_completed),
            ("sagas_compensated", self.sagas_compensated),
            ("sagas_resumed", self.sagas_resumed),
            ("adopted", self.adopted),
            ("restarts", self.restarts),
            ("checks", self.checks),
            ("receipts", self.receipts),
            ("faults", self.faults.values().sum()),
        ]
    }

    /// Adds `other`'s counts to these (totals over seeds; the head is left as it is).
    pub fn add(&mut self, other: &Self) {
        let fields = [
            (&mut self.commands, other.commands),
            (&mut self.accepted, other.accepted),
            (&mut self.rejected, other.rejected),
            (&mut self.refused, other.refused),
            (&mut self.unknown_recorded, other.unknown_recorded),
            (&mut self.unknown_lost, other.unknown_lost),
            (&mut self.clock_jumps, other.clock_jumps),
            (&mut self.timeouts_fired, other.timeouts_fired),
            (&mut self.passivations, other.passivations),
            (&mut self.usage_counted, other.usage_counted),
            (&mut self.usage_duplicates, other.usage_duplicates),
            (&mut self.usage_refused, other.usage_refused),
            (&mut self.checks_decided, other.checks_decided),
            (&mut self.sagas_completed, other.sagas_completed),
            (&mut self.sagas_compensated, other.sagas_compensated),
            (&mut self.sagas_resumed, other.sagas_resumed),
            (&mut self.adopted, other.adopted),
            (&mut self.restarts, other.restarts),
            (&mut self.checks, other.checks),
            (&mut self.receipts, other.receipts),
        ];
        for (mine, theirs) in fields {
            *mine += theirs;
        }
        for (k, v) in &other.faults {
            *self.faults.entry(k).or_default() += v;
        }
    }
}

/// A run that broke an invariant (or could not run): where, what, and how to replay it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("seed {seed}, step {step}: {what}\nreplay: {replay}")]
pub struct SimFailure {
    /// The seed.
    pub seed: u64,
    /// The step at which it was found.
    pub step: u64,
    /// What broke.
    pub what: String,
    /// The command that replays the run.
    pub replay: String,
}

/// Runs one simulation on a tokio runtime of its own (one thread, paused clock).
///
/// # Errors
/// The first invariant broken, with the command that replays the run.
pub fn simulate(config: &SimConfig) -> Result<SimReport, SimFailure> {
    let fail = |what: String| SimFailure {
        seed: config.seed,
        step: 0,
        what,
        replay: config.replay_command(),
    };
    if config.steps > STEPS_MAX || config.tenants == 0 || config.tenants > TENANTS_MAX {
        return Err(fail(format!("steps must be at most {STEPS_MAX}, tenants 1 to {TENANTS_MAX}")));
    }
    govern_runtime::quiet_injected_panics();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| fail(format!("tokio: {e}")))?;
    rt.block_on(run(config))
}

/// A command whose outcome the runtime could not tell.
struct Unknown {
    key: Key,
    expected: Option<model::Gov>,
}

/// One run's world: the runtime, the store under it, the model.
struct World {
    config: SimConfig,
    rng: SplitMix64,
    io: FaultIo,
    runtime: Option<Runtime>,
    h: RuntimeHandle,
    model: Model,
    catalog: Catalog,
    /// The tenants random commands, usage and checks go to (provisioned at the start).
    tenants: Vec<TenantId>,
    /// Tenants onboarded by saga runs (checks go to them too).
    onboarded: Vec<TenantId>,
    /// Saga runs stopped by a coordinator crash, resumed at the next restart.
    pending_sagas: Vec<(TenantId, ResourceId)>,
    /// The latest acknowledged value of each meter since the last clock jump (a jump may
    /// start a new period): the meter may not read less.
    usage_acked: BTreeMap<(TenantId, &'static str), u64>,
    /// Recently acknowledged usage events (tenant, meter, id): sent again, each must be
    /// found a duplicate, across restarts too.
    usage_ids: Vec<(TenantId, &'static str, String)>,
    /// Events sent, for fresh ids.
    usage_sent: u64,
    /// Every acknowledged receipt: its number and hash.
    acked: BTreeMap<u64, Digest>,
    unknown: Vec<Unknown>,
    /// A fault is armed: a runtime refusal is explained until the next restart.
    faulted: bool,
    report: SimReport,
    step: u64,
}

async fn run(config: &SimConfig) -> Result<SimReport, SimFailure> {
    let fail =
        |what| SimFailure { seed: config.seed, step: 0, what, replay: config.replay_command() };
    let io = FaultIo::default();
    let catalog = commercial::catalog().map_err(fail)?;
    let runtime = start(&io, EPOCH, &catalog).await.map_err(fail)?;
    let h = runtime.handle();
    let mut w = World {
        config: config.clone(),
        rng: SplitMix64::new(config.seed),
        io,
        runtime: Some(runtime),
        h,
        model: Model::default(),
        catalog,
        tenants: Vec::new(),
        onboarded: Vec::new(),
        pending_sagas: Vec::new(),
        usage_acked: BTreeMap::new(),
        usage_ids: Vec::new(),
        usage_sent: 0,
        acked: BTreeMap::new(),
        unknown: Vec::new(),
        faulted: false,
        report: SimReport::default(),
        step: 0,
    };
    w.provision().await?;
    while w.step < config.steps {
        w.step += 1;
        w.one_step().await?;
        if config.check_every > 0 && w.step.is_multiple_of(config.check_every) {
            w.check().await?;
        }
    }
    if !w.pending_sagas.is_empty() {
        // Saga runs a coordinator crash stopped are resumed by a last restart, and checked.
        w.restart(Restart::Clean).await?;
    }
    w.check().await?;
    let head = w.h.verify().map_err(|e| w.failure(format!("verify: {e}")))?;
    w.report.receipts = head.next_seq;
    w.report.head = head.last_hash;
    if let Some(rt) = w.runtime.take() {
        rt.shutdown().await.map_err(|e| w.failure(format!("shutdown: {e}")))?;
    }
    Ok(w.report)
}

/// A runtime on the store over `io`, its clock at `epoch`, with the simulator's catalog.
async fn start(io: &FaultIo, epoch: Timestamp, catalog: &Catalog) -> Result<Runtime, String> {
    let options = SegmentOptions { segment_bytes: SEGMENT_BYTES, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open_with_io(Box::new(io.clone()), options)
        .map_err(|e| format!("opening the store: {e}"))?;
    Runtime::builder()
        .epoch(epoch)
        .store(Box::new(store))
        .resume_sagas_at_start(false)
        .catalog(catalog.clone())
        .start()
        .await
        .map_err(|e| format!("starting the runtime: {e}"))
}

/// The restarts the simulator does.
#[derive(Clone, Copy, Debug)]
enum Restart {
    /// Shut down; everything written was synced.
    Clean,
    /// Shut down, then drop what was not synced (a power loss).
    Crash,
    /// As `Crash`, the last written file keeping part of its unsynced tail.
    Torn(usize),
}

impl World {
    fn failure(&self, what: String) -> SimFailure {
        SimFailure {
            seed: self.config.seed,
            step: self.step,
            what,
            replay: self.config.replay_command(),
        }
    }

    fn count(&mut self, fault: &'static str) {
        *self.report.faults.entry(fault).or_default() += 1;
    }

    fn now(&self) -> Timestamp {
        self.h.now()
    }

    async fn provision(&mut self) -> Result<(), SimFailure> {
        let quota = govern_governors::tenant::ResourceQuota {
            storage_gb: 100,
            compute_units: 8,
            bandwidth_mbps: 1_000,
        };
        for i in 0..self.config.tenants {
            let t = TenantId::new(&format!("t{i}")).map_err(|e| self.failure(e.to_string()))?;
            let a = self.h.provision_tenant(&t, quota, "sim").await;
            let a = a.map_err(|e| self.failure(format!("provisioning {t}: {e}")))?;
            self.acked.insert(a.seq, a.hash);
            self.tenants.push(t);
        }
        Ok(())
    }

    async fn one_step(&mut self) -> Result<(), SimFailure> {
        let roll = self.rng.below(1_000);
        let faults = self.config.faults;
        match roll {
            0..=689 => self.command().await,
            690..=749 => self.usage().await,
            750..=809 => self.decision().await,
            810..=819 => self.saga().await,
            820..=919 => self.jump().await,
            920..=939 => self.command().await,
            940..=959 => {
                self.report.passivations += 1;
                self.h.passivate_idle(Duration::ZERO).await;
                Ok(())
            }
            960..=969 if faults => self.crash_governor(CrashPoint::Now).await,
            970..=979 if faults => self.crash_governor(CrashPoint::AfterNextAppend).await,
            980..=984 if faults => {
                self.count("fsync_failure");
                self.io.fail_next_sync();
                self.faulted = true;
                self.command().await?;
                self.restart(Restart::Crash).await
            }
            985..=989 if faults => {
                self.count("torn_write");
                let keep = self.rng.index(64);
                self.io.fail_next_write(keep);
                self.faulted = true;
                self.command().await?;
                let tail = self.rng.index(64);
                self.restart(Restart::Torn(tail)).await
            }
            990..=994 if faults => {
                self.count("bit_flip");
                self.restart(Restart::Clean).await
            }
            _ => {
                let how =
                    if faults && self.rng.chance(500) { Restart::Crash } else { Restart::Clean };
                self.restart(how).await
            }
        }
    }

    /// A random command of a random governor, decided by the model and by the runtime.
    async fn command(&mut self) -> Result<(), SimFailure> {
        let tenant = self.tenants[self.rng.index(self.tenants.len())].clone();
        let kind = KINDS[self.rng.index(KINDS.len())];
        let resource = format!("r{}", self.rng.below(RESOURCES_PER_KIND));
        let resource = ResourceId::new(&resource).map_err(|e| self.failure(e.to_string()))?;
        let now = self.now();
        let samples: Vec<(&'static str, Args)> = Machine::samples(kind, &Ctx { now })
            .into_iter()
            .filter(|(name, _)| !RESERVED.contains(&(kind, *name)))
            .collect();
        let (name, args) = samples[self.rng.index(samples.len())].clone();
        let key: Key = (tenant.clone(), kind, resource.clone());
        let decided = self.model.decide(&key, name, &args, now);
        self.report.commands += 1;
        let outcome = self
            .h
            .command(RawCommand {
                tenant,
                kind,
                resource,
                name: name.to_owned(),
                args,
                reason: "sim".into(),
                metadata: Vec::new(),
            })
            .await;
        let what = format!("{}/{}/{} {name}", key.0, key.1, key.2);
        match (outcome, decided) {
            (Ok(a), Ok((gov, t))) => {
                if (a.from, a.to) != (t.from, t.to) {
                    return Err(self.failure(format!(
                        "{what}: the runtime went {} -> {}, the model {} -> {}",
                        a.from, a.to, t.from, t.to
                    )));
                }
                if a.resource_seq != gov.receipts.len() as u64 - 1 {
                    return Err(self.failure(format!(
                        "{what}: resource_seq {} where the model has {} receipts before",
                        a.resource_seq,
                        gov.receipts.len() - 1
                    )));
                }
                self.acked.insert(a.seq, a.hash);
                let due = gov.machine.state_timeout_raw().is_some_and(|(at, _, _)| at <= now);
                self.model.commit(key, gov);
                self.report.accepted += 1;
                if due {
                    // A state whose timeout is already due (a grant resumed past its expiry):
                    // the runtime fires it at once.
                    self.h.fire_due_timeouts().await;
                    self.timeouts().await?;
                }
                Ok(())
            }
            (Err(CommandError::Rejected(r)), Err(m)) if r.kind() == m.kind() => {
                self.report.rejected += 1;
                Ok(())
            }
            (Err(CommandError::Refused(r)), decided) if self.faulted && unknown(&r) => {
                self.report.refused += 1;
                self.unknown.push(Unknown { key, expected: decided.ok().map(|(g, _)| g) });
                Ok(())
            }
            (Ok(_), Err(m)) => {
                Err(self.failure(format!("{what}: accepted, where the model rejects it ({m})")))
            }
            (Err(e), Ok((_, t))) => Err(self.failure(format!(
                "{what}: {e}, where the model accepts it ({} -> {})",
                t.from, t.to
            ))),
            (Err(e), Err(m)) => {
                Err(self.failure(format!("{what}: {e}, where the model rejects it ({m})")))
            }
        }
    }

    /// A usage event of a random tenant: counted when some limit counts its meter (the
    /// model says which), refused otherwise; now and then an event acknowledged before, sent
    /// again, which must be found a duplicate. An acknowledged value is one the meter may
    /// not read less than until the clock moves.
    async fn usage(&mut self) -> Result<(), SimFailure> {
        let again = !self.usage_ids.is_empty() && self.rng.chance(200);
        let (tenant, meter, id) = if again {
            self.usage_ids[self.rng.index(self.usage_ids.len())].clone()
        } else {
            self.usage_sent += 1;
            let tenant = self.tenants[self.rng.index(self.tenants.len())].clone();
            let meter = commercial::METERS[self.rng.index(commercial::METERS.len())];
            (tenant, meter, format!("e{}", self.usage_sent))
        };
        let quantity = 1 + self.rng.below(12);
        let now = self.now();
        let limited = commercial::limited(&self.model, &self.catalog, &tenant, meter);
        let got = self.h.record_usage(&tenant, meter, quantity, &id, now).await;
        let what = format!("usage {tenant}/{meter} {id} ({quantity})");
        match got {
            Ok(UsageRecorded::Duplicate) if again => {
                self.report.usage_duplicates += 1;
                Ok(())
            }
            Ok(UsageRecorded::Counted { value, .. }) if limited && !again => {
                self.report.usage_counted += 1;
                let least = self.usage_acked.get(&(tenant.clone(), meter)).copied().unwrap_or(0);
                if value < least {
                    return Err(self.failure(format!(
                        "{what}: the meter reads {value} after an acknowledged {least}"
                    )));
                }
                self.usage_acked.insert((tenant.clone(), meter), value);
                self.usage_ids.push((tenant, meter, id));
                if self.usage_ids.len() > USAGE_IDS_KEPT {
                    self.usage_ids.remove(0);
                }
                Ok(())
            }
            Err(Refusal::Usage(govern_usage::UsageError::UnknownMeter(_))) if !limited => {
                self.report.usage_refused += 1;
                Ok(())
            }
            // A meter no longer limited (its plan ended) refuses an old id too.
            Err(Refusal::Usage(govern_usage::UsageError::UnknownMeter(_))) if again => {
                self.report.usage_refused += 1;
                Ok(())
            }
            Err(r) if self.faulted && unknown(&r) => {
                self.report.refused += 1;
                Ok(())
            }
            other => Err(self.failure(format!(
                "{what}: {other:?}, where the model says {}",
                match (limited, again) {
                    (true, false) => "counted",
                    (true, true) => "a duplicate",
                    (false, _) => "refused: no limit counts the meter",
                }
            ))),
        }
    }

    /// A check of a random tenant (onboarded ones too): the runtime's decision, from its
    /// caches, must be the pure rules' decision from the model's machines; a refusal by a
    /// live limit (rate, quota) only where the rules allow.
    async fn decision(&mut self) -> Result<(), SimFailure> {
        let all = self.tenants.len() + self.onboarded.len();
        let i = self.rng.index(all);
        let tenant = if i < self.tenants.len() {
            &self.tenants[i]
        } else {
            &self.onboarded[i - self.tenants.len()]
        };
        let tenant = tenant.clone();
        let feature = commercial::FEATURES[self.rng.index(commercial::FEATURES.len())];
        let quantity = 1 + self.rng.below(3);
        let now = self.now();
        // What the runtime wrote on its own for the tenant (a saga run's steps) first.
        let ledger = self.ledger_of(std::iter::once(&tenant))?;
        self.adopt(&ledger)?;
        let known = self.model.govs.keys().any(|k| k.0 == tenant && k.1 == GovernorKind::Tenant);
        let want = commercial::expected_decision(
            &self.model,
            &self.catalog,
            &tenant,
            feature,
            quantity,
            now,
        );
        let got = self.h.check(&tenant, feature, "use", quantity);
        // The audit records a check queues (a first refusal, a window's counts) are taken
        // before the run goes on, at this moment of the virtual clock, so that a seed gives
        // one run (a trail being started would otherwise take them at a time that depends
        // on the machine).
        let _ = self.h.audit(&tenant).snapshot().await;
        match got {
            Ok(got)
                if known
                    && (got == want || (commercial::limit_refusal(&got) && want.is_allowed())) =>
            {
                self.report.checks_decided += 1;
                Ok(())
            }
            // An onboarding that failed before it provisioned its tenant.
            Err(Refusal::UnknownTenant(_)) if !known => {
                self.report.checks_decided += 1;
                Ok(())
            }
            Err(r) if self.faulted && unknown(&r) => Ok(()),
            got => Err(self.failure(format!(
                "check {tenant} {feature} x{quantity}: the runtime {got:?}, the rules {want:?}"
            ))),
        }
    }

    /// Onboards a new tenant with the shipped `onboarding` saga (provision, activate, open
    /// and verify an account, start a trial, grant and approve `sso`), now and then with a
    /// step failed by injection (the run must compensate) or the coordinator stopped after
    /// a record (the run is resumed at the next restart). Its receipts are taken into the
    /// model only as the pure core accepts them (`adopt`, at the next check).
    async fn saga(&mut self) -> Result<(), SimFailure> {
        let n = self.onboarded.len();
        if n >= ONBOARDED_MAX {
            return Ok(());
        }
        let tenant = TenantId::new(&format!("o{n}")).map_err(|e| self.failure(e.to_string()))?;
        let run = ResourceId::new("onboarding").map_err(|e| self.failure(e.to_string()))?;
        let params: BTreeMap<String, String> = [
            ("email", format!("o{n}@example.com")),
            ("plan", "pro".to_owned()),
            ("feature", "sso".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let mut faults = SagaFaults::default();
        match self.rng.below(4) {
            0 => faults.fail_step = Some(u32::try_from(self.rng.below(7)).unwrap_or(0)),
            1 if self.config.faults => {
                faults.crash_after_records = Some(1 + self.rng.index(8));
            }
            _ => {}
        }
        self.onboarded.push(tenant.clone());
        let end = self.h.run_saga_with_faults(&tenant, &run, "onboarding", &params, faults).await;
        match end {
            Ok(None) => {
                self.count("saga_coordinator_crash");
                self.pending_sagas.push((tenant, run));
                Ok(())
            }
            Ok(Some(end)) => self.saga_ended(&tenant, faults.fail_step, &end),
            Err(r) if self.faulted && unknown(&r) => {
                self.pending_sagas.push((tenant, run));
                Ok(())
            }
            Err(e) => Err(self.failure(format!("onboarding {tenant}: {e}"))),
        }
    }

    /// A saga run's end: completed unless a step was failed on purpose, then compensated
    /// at that step (or at another one a fault failed); never stuck.
    fn saga_ended(
        &mut self,
        tenant: &TenantId,
        fail_step: Option<u32>,
        end: &SagaEnd,
    ) -> Result<(), SimFailure> {
        match (end, fail_step) {
            (SagaEnd::Completed, None) => self.report.sagas_completed += 1,
            (SagaEnd::Compensated { step, .. }, Some(f)) if *step == f => {
                self.report.sagas_compensated += 1;
            }
            // A fault may fail a step (compensated), never a compensation for good.
            (SagaEnd::Compensated { .. }, _) if self.faulted => {
                self.report.sagas_compensated += 1;
            }
            _ => {
                return Err(self.failure(format!(
                    "onboarding {tenant}: ended {end:?}, with step {fail_step:?} failed on purpose"
                )));
            }
        }
        Ok(())
    }

    /// Takes into the model the receipts the runtime wrote on its own (every governor but
    /// the host-commanded ones): each must be a transition the pure core accepts from the
    /// model's machine at the receipt's time, with the same completed arguments and states,
    /// and a state timeout no earlier than it was due. An adopted receipt was shown by the
    /// ledger, so it counts as acknowledged: it may never go.
    fn adopt(&mut self, ledger: &BTreeMap<Key, Vec<Receipt>>) -> Result<(), SimFailure> {
        for (key, receipts) in ledger {
            if self.host_key(key) {
                continue;
            }
            let mut gov = self.model.gov(key);
            let have = gov.receipts.len();
            for r in receipts.iter().skip(have) {
                let b = &r.body;
                let what = format!("{}/{}/{}", key.0, key.1, key.2);
                if let Some((due, name, _)) = gov.machine.state_timeout_raw()
                    && *name == *b.command
                    && b.timestamp < due
                {
                    return Err(self.failure(format!(
                        "{what}: the timeout {name} receipted at {}, before it was due at {due}",
                        b.timestamp
                    )));
                }
                let (next, _) = self
                    .model
                    .decide_from(gov.clone(), &b.command, &b.args, b.timestamp)
                    .map_err(|e| {
                        self.failure(format!(
                            "{what}: the pure core rejects the runtime's {}: {e}",
                            b.command
                        ))
                    })?;
                let Some(want) = next.receipts.last() else { break };
                if !same(want, r) || b.resource_seq != next.receipts.len() as u64 - 1 {
                    return Err(self.failure(format!(
                        "{what}: the runtime's {} ({} -> {}) is not the pure core's ({} -> {})",
                        b.command, b.state_from, b.state_to, want.from, want.to
                    )));
                }
                self.acked.insert(r.seq, r.hash);
                self.report.adopted += 1;
                gov = next;
            }
            if gov.receipts.len() > have {
                self.model.commit(key.clone(), gov);
            }
        }
        Ok(())
    }

    /// Whether random host commands go to `key` (the model decides each before it is sent);
    /// every other governor's receipts are the runtime's own, adopted.
    fn host_key(&self, key: &Key) -> bool {
        KINDS.contains(&key.1)
            && self.tenants.contains(&key.0)
            && key
                .2
                .as_str()
                .strip_prefix('r')
                .is_some_and(|n| n.parse::<u64>().is_ok_and(|n| n < RESOURCES_PER_KIND))
    }

    /// Every receipt of every tenant the run knows, by governor.
    fn ledger(&self) -> Result<BTreeMap<Key, Vec<Receipt>>, SimFailure> {
        self.ledger_of(self.tenants.iter().chain(&self.onboarded))
    }

    /// Every receipt of `tenants`, by governor.
    fn ledger_of<'t>(
        &self,
        tenants: impl Iterator<Item = &'t TenantId>,
    ) -> Result<BTreeMap<Key, Vec<Receipt>>, SimFailure> {
        let mut keys: BTreeMap<Key, Vec<Receipt>> = BTreeMap::new();
        for t in tenants {
            let receipts = self
                .h
                .receipts(t, None, None)
                .map_err(|e| self.failure(format!("reading {t}: {e}")))?;
            for r in receipts {
                if &r.body.tenant != t {
                    return Err(self.failure(format!(
                        "{t}'s receipts hold {}'s receipt {}",
                        r.body.tenant, r.seq
                    )));
                }
                keys.entry((t.clone(), r.body.governor, r.body.resource.clone()))
                    .or_default()
                    .push(r);
            }
        }
        Ok(keys)
    }

    /// Moves the clock on and checks that exactly the due state timeouts fired.
    async fn jump(&mut self) -> Result<(), SimFailure> {
        self.report.clock_jumps += 1;
        let by = match self.rng.below(3) {
            0 => Duration::from_secs(1 + self.rng.below(3_600)),
            1 => Duration::from_secs(3_600 * (1 + self.rng.below(48))),
            _ => Duration::from_secs(86_400 * (1 + self.rng.below(40))),
        };
        tokio::time::advance(by).await;
        // A new period may have begun (meters may read less), and the deduplication window
        // moved on.
        self.usage_acked.clear();
        self.usage_ids.clear();
        self.h.fire_due_timeouts().await;
        self.timeouts().await
    }

    /// Takes the state timeouts the runtime fired into the model: each governor whose
    /// machine has one due must have it receipted next (the model deciding it at the
    /// receipt's time, no earlier than due); none may stay due.
    async fn timeouts(&mut self) -> Result<(), SimFailure> {
        let now = self.now();
        // What the runtime wrote on its own (its timeouts included) first.
        let ledger = self.ledger()?;
        self.adopt(&ledger)?;
        let keys: Vec<Key> = self.model.govs.keys().cloned().collect();
        for key in keys {
            loop {
                let gov = self.model.gov(&key);
                let Some((due, name, args)) = gov.machine.state_timeout_raw() else { break };
                if due > now {
                    break;
                }
                let receipts = self.receipts_of(&key)?;
                let Some(r) = receipts.get(gov.receipts.len()) else {
                    return Err(self.failure(format!(
                        "{}/{}/{}: {name} was due at {due} and is not receipted at {now}",
                        key.0, key.1, key.2
                    )));
                };
                let at = r.body.timestamp;
                if at < due || r.body.command != name {
                    return Err(self.failure(format!(
                        "{}/{}/{}: expected the timeout {name} due at {due}, found {} at {at}",
                        key.0, key.1, key.2, r.body.command
                    )));
                }
                let (gov, _) = self.model.decide(&key, name, &args, at).map_err(|e| {
                    self.failure(format!(
                        "{}/{}/{}: the model rejects its timeout {name}: {e}",
                        key.0, key.1, key.2
                    ))
                })?;
                self.acked.insert(r.seq, r.hash);
                self.model.commit(key.clone(), gov);
                self.report.timeouts_fired += 1;
            }
        }
        Ok(())
    }

    /// Makes a governor the model knows panic at `point`; its supervisor restarts it and it
    /// replays its receipts.
    async fn crash_governor(&mut self, point: CrashPoint) -> Result<(), SimFailure> {
        self.count(if point == CrashPoint::Now {
            "governor_panic_now"
        } else {
            "governor_panic_after_append"
        });
        let keys: Vec<Key> = self.model.govs.keys().cloned().collect();
        if keys.is_empty() {
            return Ok(());
        }
        let (t, kind, r) = keys[self.rng.index(keys.len())].clone();
        match self.h.inject_crash(&t, kind, &r, point).await {
            Ok(()) | Err(Refusal::GovernorUnavailable { .. }) => {}
            Err(e) => {
                return Err(self.failure(format!("injecting a crash into {t}/{kind}/{r}: {e}")));
            }
        }
        // A panicking governor is restarted; until then its commands may be refused.
        self.faulted = true;
        self.check().await
    }

    /// Stops the runtime (and, as `how` says, drops what was not synced), flips a bit in a
    /// segment now and then to see the store refuse it, and starts again on the same store.
    async fn restart(&mut self, how: Restart) -> Result<(), SimFailure> {
        self.report.restarts += 1;
        let now = self.now();
        if let Some(rt) = self.runtime.take() {
            // A poisoned ledger may fail its last commit: what it acknowledged is durable.
            let _ = rt.shutdown().await;
        }
        self.io.disarm();
        match how {
            Restart::Clean => {}
            Restart::Crash => self.io.crash(),
            Restart::Torn(keep) => self.io.crash_tearing(keep),
        }
        if self.report.faults.get("bit_flip").is_some_and(|n| *n > 0) && self.rng.chance(300) {
            self.flip_is_refused(now).await?;
        }
        let runtime = start(&self.io, now, &self.catalog).await.map_err(|e| self.failure(e))?;
        self.h = runtime.handle();
        self.runtime = Some(runtime);
        self.faulted = false;
        self.reconcile().await?;
        self.resume_sagas().await?;
        self.check().await
    }

    /// Resumes the saga runs a coordinator crash or a fault stopped: each must end, as
    /// completed or compensated (never stuck).
    async fn resume_sagas(&mut self) -> Result<(), SimFailure> {
        if self.pending_sagas.is_empty() {
            return Ok(());
        }
        let ends = self.h.resume_sagas().await;
        if let Some((t, r, end)) = ends.iter().find(|(_, _, end)| {
            !matches!(end, Ok(SagaEnd::Completed | SagaEnd::Compensated { .. }))
        }) {
            return Err(self
                .failure(format!("saga run {t}/{r}: resumed after a restart, it ended {end:?}")));
        }
        // The ledger says how each ended (a run the restarted coordinator finished on its
        // own is not among those resumed here).
        let ledger = self.ledger()?;
        self.adopt(&ledger)?;
        for (tenant, run) in std::mem::take(&mut self.pending_sagas) {
            let key = (tenant.clone(), GovernorKind::Saga, run);
            match self.model.govs.get(&key).map(|g| g.machine.state_name()) {
                Some("completed") => self.report.sagas_completed += 1,
                Some("compensated") => self.report.sagas_compensated += 1,
                // Stopped before its first record: nothing to resume.
                None => {}
                Some(state) => {
                    return Err(self.failure(format!(
                        "onboarding {tenant}: resumed after a restart, it is {state}"
                    )));
                }
            }
            self.report.sagas_resumed += 1;
        }
        Ok(())
    }

    /// Flips one bit of a segment file: opening the store and the ledger on it must refuse
    /// it; the bit is flipped back.
    async fn flip_is_refused(&mut self, now: Timestamp) -> Result<(), SimFailure> {
        let files: Vec<(String, usize)> = self
            .io
            .files()
            .into_iter()
            .filter(|(name, bytes)| name.ends_with(".seg") && !bytes.is_empty())
            .map(|(name, bytes)| (name, bytes.len()))
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        let (name, len) = files[self.rng.index(files.len())].clone();
        let pos = self.rng.index(len);
        let mask = 1u8 << self.rng.below(8);
        self.io.flip(&name, pos, mask);
        self.count("bit_flip_checked");
        let opened = start(&self.io, now, &self.catalog).await;
        let refused = match opened {
            Err(_) => true,
            Ok(rt) => {
                let _ = rt.shutdown().await;
                false
            }
        };
        self.io.flip(&name, pos, mask);
        if refused {
            Ok(())
        } else {
            Err(self
                .failure(format!("a flipped bit ({mask:#04x} at {name}:{pos}) was not refused")))
        }
    }

    /// After a restart: each command whose outcome was unknown is recorded exactly as the
    /// model decided it, or not at all; the model takes what the ledger holds.
    async fn reconcile(&mut self) -> Result<(), SimFailure> {
        for u in std::mem::take(&mut self.unknown) {
            let have = self.model.gov(&u.key).receipts.len();
            let receipts = self.receipts_of(&u.key)?;
            match (receipts.len() - have.min(receipts.len()), u.expected) {
                (0, _) => self.report.unknown_lost += 1,
                (1, Some(gov)) => {
                    let r = &receipts[have];
                    let Some(want) = gov.receipts.last() else { continue };
                    if !same(want, r) {
                        return Err(self.failure(format!(
                            "{}/{}/{}: an unacknowledged command was recorded otherwise than decided: {} at {}",
                            u.key.0, u.key.1, u.key.2, r.body.command, r.body.timestamp
                        )));
                    }
                    self.acked.insert(r.seq, r.hash);
                    self.model.commit(u.key, gov);
                    self.report.unknown_recorded += 1;
                }
                (n, _) => {
                    return Err(self.failure(format!(
                        "{}/{}/{}: {n} receipts more than the model after a restart",
                        u.key.0, u.key.1, u.key.2
                    )));
                }
            }
        }
        Ok(())
    }

    fn receipts_of(&self, key: &Key) -> Result<Vec<Receipt>, SimFailure> {
        self.h
            .receipts(&key.0, Some(key.1), Some(&key.2))
            .map_err(|e| self.failure(format!("reading {}/{}/{}: {e}", key.0, key.1, key.2)))
    }

    /// Every invariant.
    async fn check(&mut self) -> Result<(), SimFailure> {
        self.report.checks += 1;
        // The audit records checks queue without waiting: each trail answers a snapshot
        // after them, then they are made durable, so that each trail's live state is the
        // replay of what the ledger shows.
        for t in self.tenants.iter().chain(&self.onboarded) {
            let _ = self.h.audit(t).snapshot().await;
        }
        self.h.flush_check_counts().await;
        let head =
            self.h.verify().map_err(|e| self.failure(format!("the chain does not verify: {e}")))?;
        // Every tenant's receipts: its own; what the runtime wrote on its own, adopted;
        // every acknowledged one where it was.
        let keys = self.ledger()?;
        self.adopt(&keys)?;
        let seen: BTreeMap<u64, Digest> =
            keys.values().flatten().map(|r| (r.seq, r.hash)).collect();
        for (seq, hash) in &self.acked {
            if seen.get(seq) != Some(hash) {
                return Err(self.failure(format!(
                    "acknowledged receipt {seq} is lost (ledger at {}: {:?})",
                    head.next_seq,
                    seen.get(seq).map(Digest::short)
                )));
            }
        }
        // Every governor: the model's receipts, and a state equal to its replay; no
        // governor has receipts the model does not know.
        for key in keys.keys() {
            if !self.model.govs.contains_key(key) {
                return Err(self.failure(format!(
                    "{}/{}/{}: receipts the model never decided",
                    key.0, key.1, key.2
                )));
            }
        }
        for (key, gov) in &self.model.govs {
            let got = keys.get(key).map_or(&[][..], Vec::as_slice);
            if got.len() != gov.receipts.len()
                || !gov.receipts.iter().zip(got).all(|(w, r)| same(w, r))
            {
                return Err(self.failure(format!(
                    "{}/{}/{}: receipts {:?}, the model {:?}",
                    key.0,
                    key.1,
                    key.2,
                    got.iter().map(|r| r.body.command.to_string()).collect::<Vec<_>>(),
                    gov.receipts.iter().map(|e| e.command.clone()).collect::<Vec<_>>()
                )));
            }
        }
        for (key, receipts) in &keys {
            let mut replayed = Machine::new(key.1);
            for r in receipts {
                let b = &r.body;
                replayed
                    .replay_step(
                        b.governor.name(),
                        &b.command,
                        &b.args,
                        &b.state_from,
                        &b.state_to,
                        b.timestamp,
                    )
                    .map_err(|e| {
                        self.failure(format!("{}/{}/{}: replay: {e}", key.0, key.1, key.2))
                    })?;
            }
            let live = self.state_bytes(key).await?;
            let want = replayed.encode_state().map_err(|e| self.failure(e.to_string()))?;
            if live != want {
                let live =
                    Machine::decode_state(key.1, &live).map_err(|e| self.failure(e.to_string()))?;
                self.h.flush_check_counts().await;
                let again = self.receipts_of(key)?.len();
                return Err(self.failure(format!(
                    "{}/{}/{}: the live governor's state is not the replay of its receipts\nlive {live:?}\nreplay of {} {replayed:?}\nreceipts now {again}",
                    key.0, key.1, key.2, receipts.len()
                )));
            }
            if let Some(gov) = self.model.govs.get(key) {
                let model = gov.machine.encode_state().map_err(|e| self.failure(e.to_string()))?;
                if model != want {
                    return Err(self.failure(format!(
                        "{}/{}/{}: the model's state ({}) is not the runtime's ({})",
                        key.0,
                        key.1,
                        key.2,
                        gov.machine.state_name(),
                        replayed.state_name()
                    )));
                }
            }
        }
        // Every meter reads at least what was acknowledged of it (since the clock last moved).
        for ((tenant, meter), least) in &self.usage_acked {
            let view = self.h.meter_usage(tenant);
            let value = view.meters.iter().find(|m| m.meter == *meter).map(|m| m.value);
            if value.is_some_and(|v| v < *least) {
                return Err(self.failure(format!(
                    "{tenant}/{meter}: the meter reads {value:?} after an acknowledged {least}"
                )));
            }
        }
        Ok(())
    }

    /// A governor's state as its actor holds it, as codec bytes.
    async fn state_bytes(&self, key: &Key) -> Result<Vec<u8>, SimFailure> {
        use govern_governors::{
            account, audit, billing, catalog, compliance, entitlement, quota, saga, subscription,
            tenant,
        };
        async fn bytes<G: govern_runtime::Hosted + govern_governors::StateCodec>(
            h: &RuntimeHandle,
            key: &Key,
        ) -> Result<Vec<u8>, String> {
            let snap =
                h.governor::<G>(&key.0, &key.2).snapshot().await.map_err(|e| e.to_string())?;
            snap.machine.encode_state().map_err(|e| e.to_string())
        }
        let h = &self.h;
        let got = match key.1 {
            GovernorKind::Entitlement => bytes::<entitlement::Entitlement>(h, key).await,
            GovernorKind::Billing => bytes::<billing::Billing>(h, key).await,
            GovernorKind::Catalog => bytes::<catalog::Product>(h, key).await,
            GovernorKind::Subscription => bytes::<subscription::Subscription>(h, key).await,
            GovernorKind::Account => bytes::<account::Account>(h, key).await,
            GovernorKind::Quota => bytes::<quota::Quota>(h, key).await,
            GovernorKind::Compliance => bytes::<compliance::Audit>(h, key).await,
            GovernorKind::Tenant => bytes::<tenant::Tenant>(h, key).await,
            GovernorKind::Audit => bytes::<audit::Trail>(h, key).await,
            GovernorKind::Saga => bytes::<saga::Saga>(h, key).await,
        };
        got.map_err(|e| {
            self.failure(format!("{}/{}/{}: reading its state: {e}", key.0, key.1, key.2))
        })
    }
}

/// Whether a refusal leaves the command's outcome unknown (it may have been recorded).
fn unknown(r: &Refusal) -> bool {
    matches!(
        r,
        Refusal::LedgerUnavailable(_)
            | Refusal::Timeout { .. }
            | Refusal::GovernorUnavailable { .. }
            | Refusal::ShuttingDown
    )
}

/// Whether receipt `r` says what the model expects.
fn same(want: &Expected, r: &Receipt) -> bool {
    let b = &r.body;
    b.command == want.command.as_str()
        && b.args == want.args
        && b.state_from == want.from.as_str()
        && b.state_to == want.to.as_str()
        && b.timestamp == want.at
}

#[cfg(test)]
mod tests;
