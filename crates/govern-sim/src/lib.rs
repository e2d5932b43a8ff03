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

mod model;
mod rng;

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::{Args, Ctx, GovernorKind, Machine, ResourceId, TenantId, Timestamp};
use govern_ledger::segment::{FaultIo, SegmentOptions, SegmentStore};
use govern_receipt::{Digest, Receipt};
use govern_runtime::{CommandError, CrashPoint, RawCommand, Refusal, Runtime, RuntimeHandle};

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
    tenants: Vec<TenantId>,
    /// Every acknowledged receipt: its number and hash.
    acked: BTreeMap<u64, Digest>,
    unknown: Vec<Unknown>,
    /// A fault is armed: a runtime refusal is explained until the next restart.
    faulted: bool,
    report: SimReport,
    step: u64,
}

async fn run(config: &SimConfig) -> Result<SimReport, SimFailure> {
    let io = FaultIo::default();
    let runtime = start(&io, EPOCH).await.map_err(|what| SimFailure {
        seed: config.seed,
        step: 0,
        what,
        replay: config.replay_command(),
    })?;
    let h = runtime.handle();
    let mut w = World {
        config: config.clone(),
        rng: SplitMix64::new(config.seed),
        io,
        runtime: Some(runtime),
        h,
        model: Model::default(),
        tenants: Vec::new(),
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
    w.check().await?;
    let head = w.h.verify().map_err(|e| w.failure(format!("verify: {e}")))?;
    w.report.receipts = head.next_seq;
    w.report.head = head.last_hash;
    if let Some(rt) = w.runtime.take() {
        rt.shutdown().await.map_err(|e| w.failure(format!("shutdown: {e}")))?;
    }
    Ok(w.report)
}

/// A runtime on the store over `io`, its clock at `epoch`.
async fn start(io: &FaultIo, epoch: Timestamp) -> Result<Runtime, String> {
    let options = SegmentOptions { segment_bytes: SEGMENT_BYTES, ..SegmentOptions::default() };
    let (store, _) = SegmentStore::open_with_io(Box::new(io.clone()), options)
        .map_err(|e| format!("opening the store: {e}"))?;
    Runtime::builder()
        .epoch(epoch)
        .store(Box::new(store))
        .resume_sagas_at_start(false)
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
            0..=849 => self.command().await,
            850..=939 => self.jump().await,
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

    /// Moves the clock on and checks that exactly the due state timeouts fired.
    async fn jump(&mut self) -> Result<(), SimFailure> {
        self.report.clock_jumps += 1;
        let by = match self.rng.below(3) {
            0 => Duration::from_secs(1 + self.rng.below(3_600)),
            1 => Duration::from_secs(3_600 * (1 + self.rng.below(48))),
            _ => Duration::from_secs(86_400 * (1 + self.rng.below(40))),
        };
        tokio::time::advance(by).await;
        self.h.fire_due_timeouts().await;
        self.timeouts().await
    }

    /// Takes the state timeouts the runtime fired into the model: each governor whose
    /// machine has one due must have it receipted next (the model deciding it at the
    /// receipt's time, no earlier than due); none may stay due.
    async fn timeouts(&mut self) -> Result<(), SimFailure> {
        let now = self.now();
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
        let runtime = start(&self.io, now).await.map_err(|e| self.failure(e))?;
        self.h = runtime.handle();
        self.runtime = Some(runtime);
        self.faulted = false;
        self.reconcile().await?;
        self.check().await
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
        let opened = start(&self.io, now).await;
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
        let head =
            self.h.verify().map_err(|e| self.failure(format!("the chain does not verify: {e}")))?;
        // Every tenant's receipts: its own; every acknowledged one where it was.
        let mut seen: BTreeMap<u64, Digest> = BTreeMap::new();
        let mut keys: BTreeMap<Key, Vec<Receipt>> = BTreeMap::new();
        for t in &self.tenants {
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
                seen.insert(r.seq, r.hash);
                keys.entry((t.clone(), r.body.governor, r.body.resource.clone()))
                    .or_default()
                    .push(r);
            }
        }
        for (seq, hash) in &self.acked {
            if seen.get(seq) != Some(hash) {
                return Err(self.failure(format!(
                    "acknowledged receipt {seq} is lost (ledger at {}: {:?})",
                    head.next_seq,
                    seen.get(seq).map(Digest::short)
                )));
            }
        }
        // Every governor: the model's receipts, and a state equal to its replay.
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
                return Err(self.failure(format!(
                    "{}/{}/{}: the live governor's state is not the replay of its receipts",
                    key.0, key.1, key.2
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
