//! The receipt actor: the ledger's single writer and its committer.
//!
//! Governors send it their receipts as [`Entry`] messages on a bounded queue (its mailbox);
//! ractor's own mailbox only carries wake-ups and commit results. It drains whatever is
//! waiting in one go: each receipt is sequenced, hashed and written in arrival order (a
//! governor's in the order it sent them), then one commit (one `fdatasync`, on tokio's
//! blocking pool) makes the whole batch durable while the next batch forms. Once a receipt
//! is durable the actor answers the caller itself: the governor never waits for it, and the
//! caller is woken once.
//!
//! No reply reveals a state whose receipt is not yet durable: acceptances wait for their
//! receipt, and anything else a governor answers (a rejection, a snapshot) is sent here as an
//! [`Entry::After`], answered once every receipt sequenced before it is durable. A tenant
//! governor's acceptance goes on to the registry actor, which makes the new tenant state
//! visible before it answers.
//!
//! A governor restarting after a crash replays only after an [`Entry::Barrier`] sent through
//! this same queue comes back: every receipt it sent before it crashed is then in the ledger.
//!
//! Everything this actor keeps lives in its [`Core`], which outlives an incarnation (a panic
//! here is not expected: every ledger failure is a value); the core's lock is only ever taken
//! by the actor itself, so nothing on the append path is shared with a governor.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use govern_governors::tenant::State as TenantState;
use govern_ledger::{Checkpointer, CommitOptions, Durability, Ledger, LedgerError};
use govern_receipt::ReceiptBody;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::{mpsc, oneshot};

use crate::commercial::{Commercial, View};
use crate::error::{Accepted, CommandError, Outcome, Refusal};
use crate::limits::RECEIPT_QUEUE_MAX;
use crate::registry::{Admission, RegistryMsg};

/// A reply that must not go out before every earlier receipt is durable.
pub(crate) type Deferred = Box<dyn FnOnce(Result<(), LedgerError>) + Send>;

/// One message to the receipt actor.
#[allow(
    clippy::large_enum_variant,
    reason = "the hot variant is the big one: boxing it would allocate once per receipt"
)]
pub(crate) enum Entry {
    /// An accepted command's receipt, and whom to answer once it is durable. The command's
    /// span (DEBUG) travels with it and is given the receipt's sequence number here.
    Append {
        body: ReceiptBody,
        from: &'static str,
        to: &'static str,
        reply: Reply,
        span: tracing::Span,
    },
    /// Answered once every receipt sequenced before it is durable.
    After(Deferred),
    /// Answered once every entry sent before it is written (not necessarily durable).
    Barrier(oneshot::Sender<()>),
}

/// Who learns of an appended receipt, and when.
pub(crate) struct Reply {
    /// The caller (`None`: nobody waits).
    pub(crate) tx: Option<oneshot::Sender<Outcome>>,
    /// The tenant's in-flight unit, given back when the caller is answered.
    pub(crate) admission: Admission,
    /// A tenant governor's new state: the registry actor records it, then answers.
    pub(crate) tenant_state: Option<TenantState>,
    /// Answer as soon as the receipt is written (a state timeout's deliverer only keeps the
    /// order); the receipt is committed all the same.
    pub(crate) on_write: bool,
    /// What the receipt changes in what checks decide with, applied once it is durable.
    /// Boxed: rare (a runtime with a catalog, a plan or grant changing), while every receipt
    /// carries the field through the queue.
    pub(crate) view: Option<Box<View>>,
    /// A handle's command (its kind, and when it was sent): its acceptance is counted and
    /// timed here, as it is answered, on this actor's thread rather than on every caller's
    /// (the counter's and the histogram's cache lines then stay on one core).
    pub(crate) measured: Option<(govern_governors::GovernorKind, crate::telemetry::Started)>,
}

/// Something waiting for the ledger to be durable up to `upto`.
struct Waiter {
    upto: u64,
    what: Waiting,
}

enum Waiting {
    Accepted {
        reply: Reply,
        accepted: Accepted,
        tenant: govern_governors::TenantId,
        /// The outbound notification the receipt is, fed once it is durable (rare: boxed).
        event: Option<Box<crate::notify::Event>>,
    },
    Deferred(Deferred),
}

/// The sending side, as governors hold it: the queue and the wake-up.
#[derive(Clone)]
pub(crate) struct Receipts {
    tx: mpsc::Sender<Entry>,
    wake: Arc<Wake>,
}

impl std::fmt::Debug for Receipts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receipts")
    }
}

/// Whether the actor has been told to look at its queue, and how to tell it.
struct Wake {
    scheduled: AtomicBool,
    actor: Mutex<Option<ActorRef<ReceiptMsg>>>,
}

impl Wake {
    fn actor(&self) -> Option<ActorRef<ReceiptMsg>> {
        self.actor.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    fn set_actor(&self, actor: Option<ActorRef<ReceiptMsg>>) {
        *self.actor.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = actor;
    }
}

impl Receipts {
    /// Queues `entry` if there is room: the hot path, which keeps no future (a governor
    /// actor's task would otherwise carry the size of a waiting send forever).
    #[allow(clippy::result_large_err, reason = "the entry comes back unboxed: no allocation")]
    pub(crate) fn try_send(&self, entry: Entry) -> Result<(), mpsc::error::TrySendError<Entry>> {
        self.tx.try_send(entry)?;
        self.kick();
        Ok(())
    }

    /// Queues `entry`, waiting while the queue is full (backpressure on governors). `Err`
    /// gives it back when the actor is gone for good (the runtime has stopped).
    pub(crate) async fn send(&self, entry: Entry) -> Result<(), Entry> {
        match self.try_send(entry) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(entry)) => {
                self.tx.send(entry).await.map_err(|e| e.0)?;
                self.kick();
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(entry)) => Err(entry),
        }
    }

    fn kick(&self) {
        if !self.wake.scheduled.swap(true, Ordering::AcqRel)
            && let Some(actor) = self.wake.actor()
        {
            // A dead incarnation's successor drains the queue when it starts.
            let _ = actor.cast(ReceiptMsg::Drain);
        }
    }

    /// Waits until every entry sent before is written to the ledger.
    pub(crate) async fn barrier(&self) -> Result<(), Refusal> {
        let (tx, rx) = oneshot::channel();
        if self.send(Entry::Barrier(tx)).await.is_err() {
            return Err(Refusal::ShuttingDown);
        }
        rx.await.map_err(|_| Refusal::ShuttingDown)
    }
}

/// Answers `reply` with `outcome` now.
pub(crate) fn answer(reply: Reply, outcome: Outcome) {
    if let Some(tx) = reply.tx {
        // The caller may have timed out: nobody left to tell.
        let _ = tx.send(outcome);
    }
}

/// The refusal of a receipt the ledger did not take.
fn refusal(e: &LedgerError) -> CommandError {
    match e {
        // Shutdown closed the ledger after its drain: this command raced it.
        LedgerError::Closed | LedgerError::Stopped => CommandError::Refused(Refusal::ShuttingDown),
        e => CommandError::Refused(Refusal::LedgerUnavailable(e.to_string())),
    }
}

/// The receipt actor's messages (its queue of [`Entry`]s is separate and bounded).
pub(crate) enum ReceiptMsg {
    /// Entries are waiting in the queue.
    Drain,
    /// A commit finished: the ledger is durable up to the length given (or failed).
    Committed(Result<u64, LedgerError>),
    /// In the buffered mode: time to flush what is unsynced.
    Flush,
}

impl std::fmt::Debug for ReceiptMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Drain => "Drain",
            Self::Committed(_) => "Committed",
            Self::Flush => "Flush",
        })
    }
}

/// What the actor keeps across incarnations.
struct Core {
    rx: mpsc::Receiver<Entry>,
    /// Replies waiting for durability, in sequence order.
    waiting: VecDeque<Waiter>,
    /// A commit job is running.
    committing: bool,
    /// In the buffered mode: a flush is scheduled.
    flush_scheduled: bool,
    /// When the last checkpoint was signed, and the size it covered.
    last_checkpoint: Instant,
    checkpointed: Option<u64>,
    /// The first failure of a commit or checkpoint.
    failure: Option<String>,
    /// The running commit, awaited at stop.
    job: Option<tokio::task::JoinHandle<()>>,
}

/// The receipt actor (see the module documentation). A clone is the next incarnation: the
/// same ledger, queue and core.
#[derive(Clone)]
pub(crate) struct ReceiptActor {
    ledger: Arc<Ledger>,
    options: CommitOptions,
    checkpointer: Option<Arc<Checkpointer>>,
    registry: Arc<Mutex<Option<ActorRef<RegistryMsg>>>>,
    /// Where durable receipts' view changes go (`RuntimeHandle::check`).
    commercial: Arc<Commercial>,
    /// Acknowledge once written (buffered mode, or a store that is not durable).
    immediate: bool,
    core: Arc<Mutex<Core>>,
    wake: Arc<Wake>,
    /// The outcome of the last commit at stop, for `Runtime::shutdown`.
    pub(crate) outcome: Arc<Mutex<Option<Result<(), String>>>>,
    /// The data directory's ledger snapshots, when there is one.
    snapshots: Option<Arc<Snapshots>>,
    /// Where durable receipts that are events go (outbound notifications), if configured.
    notify: Option<Arc<crate::notify::Notify>>,
    /// The metrics: each group commit's size and time, and accepted commands.
    telemetry: Arc<crate::telemetry::Telemetry>,
}

/// Writes the ledger's snapshots into the data directory (`Ledger::write_snapshot`): on a
/// thread of its own whenever one is due after a commit (never in the commit's path: appends
/// and commits go on while it reads and writes), and a last one at stop, after the last
/// commit, so that the next start reads no record twice.
pub(crate) struct Snapshots {
    dir: std::path::PathBuf,
    running: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Also run on that thread after each snapshot written while running (the runtime's
    /// start state carried forward, `runtime.snap`).
    also: Option<Also>,
    /// The retention policy, with the runtime's clock, run on that thread every
    /// `check_every` durable receipts.
    retention: Option<(crate::retention::Retention, crate::clock::Clock)>,
    /// The durable length at the last retention check.
    checked: std::sync::atomic::AtomicU64,
}

/// See [`Snapshots::also`].
pub(crate) type Also = Box<dyn Fn(&Ledger, &std::path::Path) + Send + Sync>;

impl Snapshots {
    pub(crate) fn new(dir: std::path::PathBuf) -> Self {
        Self {
            dir,
            running: Mutex::new(None),
            also: None,
            retention: None,
            checked: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Runs `retention` on the same thread, every `check_every` durable receipts.
    pub(crate) fn with_retention(
        mut self,
        retention: crate::retention::Retention,
        clock: crate::clock::Clock,
    ) -> Self {
        self.retention = Some((retention, clock));
        self
    }

    /// Whether the retention policy is due a check.
    fn retention_due(&self, ledger: &Ledger) -> bool {
        self.retention.as_ref().is_some_and(|(r, _)| {
            let checked = self.checked.load(std::sync::atomic::Ordering::Relaxed);
            ledger.durable_len() >= checked.saturating_add(r.check_every)
        })
    }

    /// Runs `also` after each snapshot written while running, on the same thread.
    pub(crate) fn with_also(mut self, also: Also) -> Self {
        self.also = Some(also);
        self
    }

    /// Starts writing a snapshot if one is due and none is being written.
    fn after_commit(self: &Arc<Self>, ledger: &Arc<Ledger>) {
        // A few atomic loads on every commit; the lock only when something is due.
        let snapshot = ledger.snapshot_due();
        let retention = self.retention_due(ledger);
        if !snapshot && !retention {
            return;
        }
        let mut running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if running.as_ref().is_some_and(|r| !r.is_finished()) {
            return;
        }
        if retention {
            self.checked.store(ledger.durable_len(), std::sync::atomic::Ordering::Relaxed);
        }
        let (me, ledger) = (Arc::clone(self), Arc::clone(ledger));
        let spawned = std::thread::Builder::new().name("govern-snapshot".into()).spawn(move || {
            if snapshot {
                me.write(&ledger, "periodic");
                if let Some(also) = &me.also {
                    also(&ledger, &me.dir);
                }
            }
            if let Some((policy, clock)) = me.retention.as_ref().filter(|_| retention) {
                policy.run(&ledger, &me.dir, clock.now());
            }
        });
        match spawned {
            Ok(handle) => *running = Some(handle),
            Err(e) => tracing::warn!(error = %e, "ledger snapshot not started"),
        }
    }

    /// Waits for a snapshot being written, then (if `write`) writes the last one (at stop).
    fn finish(&self, ledger: &Ledger, write: bool) {
        let running = self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(running) = running {
            let _ = running.join();
        }
        if write {
            self.write(ledger, "at stop");
        }
    }

    fn write(&self, ledger: &Ledger, why: &'static str) {
        let started = now();
        match ledger.write_snapshot(&self.dir) {
            Ok(Some(w)) => tracing::info!(
                records = w.records,
                read = w.read,
                bytes = w.bytes,
                ms = started.elapsed().as_millis() as u64,
                why,
                "ledger snapshot written"
            ),
            Ok(None) => {}
            // Derived data: the next open reads more records, nothing is lost.
            Err(e) => tracing::warn!(error = %e, why, "ledger snapshot not written"),
        }
        // The sealed segments' subtree roots, for proofs that read only what they need.
        match ledger.write_segment_trees(&self.dir) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(segments = n, why, "segment tree files written"),
            Err(e) => tracing::warn!(error = %e, why, "segment tree files not written"),
        }
    }
}

/// Where the receipt actor reports what it made durable, besides its callers: outbound
/// notifications (when configured) and the metrics.
pub(crate) struct Outlets {
    pub(crate) notify: Option<Arc<crate::notify::Notify>>,
    pub(crate) telemetry: Arc<crate::telemetry::Telemetry>,
}

/// The actor and the sending side governors get.
pub(crate) fn receipt_actor(
    ledger: Arc<Ledger>,
    options: CommitOptions,
    checkpointer: Option<Checkpointer>,
    registry: Arc<Mutex<Option<ActorRef<RegistryMsg>>>>,
    commercial: Arc<Commercial>,
    snapshots: Option<Snapshots>,
    outlets: Outlets,
) -> (ReceiptActor, Receipts) {
    let Outlets { notify, telemetry } = outlets;
    let options = options.normalized();
    let (tx, rx) = mpsc::channel(RECEIPT_QUEUE_MAX);
    let wake = Arc::new(Wake { scheduled: AtomicBool::new(true), actor: Mutex::new(None) });
    let immediate = options.durability == Durability::Buffered || !ledger.is_durable();
    let checkpointed = ledger.tree_head().map(|h| h.size);
    let core = Core {
        rx,
        waiting: VecDeque::new(),
        committing: false,
        flush_scheduled: false,
        last_checkpoint: now(),
        checkpointed,
        failure: None,
        job: None,
    };
    let actor = ReceiptActor {
        ledger,
        options,
        checkpointer: checkpointer.map(Arc::new),
        registry,
        commercial,
        immediate,
        core: Arc::new(Mutex::new(core)),
        wake: Arc::clone(&wake),
        outcome: Arc::new(Mutex::new(None)),
        snapshots: snapshots.map(Arc::new),
        notify,
        telemetry,
    };
    (actor, Receipts { tx, wake })
}

/// `Ledger::commit`, its size and time recorded.
fn commit(ledger: &Ledger, metrics: &crate::telemetry::LedgerMetrics) -> Result<u64, LedgerError> {
    // Only the receipt actor commits, one commit at a time: what was durable before is this
    // commit's start.
    let before = ledger.durable_len();
    let started = crate::telemetry::Started::now();
    let result = ledger.commit();
    if let Ok(durable) = &result {
        metrics.commit(durable.saturating_sub(before), started);
    }
    result
}

fn now() -> Instant {
    #[allow(clippy::disallowed_methods, reason = "checkpoint intervals are real time")]
    Instant::now()
}

impl ReceiptActor {
    fn core(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Drains the queue until it is empty and nobody has asked for another look.
    fn drain(&self, myself: &ActorRef<ReceiptMsg>) {
        let mut core = self.core();
        loop {
            while let Ok(entry) = core.rx.try_recv() {
                self.take(&mut core, entry, Some(myself));
            }
            self.wake.scheduled.store(false, Ordering::Release);
            // An entry queued after the last look but before the flag cleared found it set
            // and did not wake us: look again, unless someone else has since.
            if core.rx.is_empty() || self.wake.scheduled.swap(true, Ordering::AcqRel) {
                break;
            }
        }
        self.commit_if_needed(&mut core);
    }

    /// Sequences one entry.
    fn take(&self, core: &mut Core, entry: Entry, myself: Option<&ActorRef<ReceiptMsg>>) {
        match entry {
            Entry::Append { body, from, to, reply, span } => {
                let tenant = body.tenant.clone();
                // The event this receipt is, if any (rare; a lookup of the tenant per receipt
                // otherwise), numbered once appended.
                let mut event = self.notify.as_ref().and_then(|n| n.event_of(&body)).map(Box::new);
                match self.ledger.append(body) {
                    Err(e) => {
                        span.record("outcome", "refused");
                        if !matches!(e, LedgerError::Closed) {
                            tracing::error!(error = %e, "receipt not written; command refused");
                        }
                        answer(reply, Err(refusal(&e)));
                    }
                    Ok(app) => {
                        span.record("seq", app.seq);
                        span.in_scope(|| tracing::debug!(seq = app.seq, "transition accepted"));
                        let accepted = Accepted {
                            seq: app.seq,
                            hash: app.hash,
                            resource_seq: app.resource_seq,
                            from,
                            to,
                        };
                        if let Some(e) = event.as_mut() {
                            e.seq = app.seq;
                            e.receipt_hash = app.hash.to_string();
                        }
                        let waiter = Waiting::Accepted { reply, accepted, tenant, event };
                        if self.immediate {
                            // Answered at the write: the caller records it (see `accepted`).
                            self.complete(waiter, Ok(()), None);
                            if self.options.durability == Durability::Buffered
                                && self.ledger.is_durable()
                                && let Some(myself) = myself
                            {
                                self.schedule_flush(core, myself);
                            }
                        } else {
                            let Waiting::Accepted { mut reply, accepted, tenant, event } = waiter
                            else {
                                return;
                            };
                            if reply.on_write
                                && let Some(tx) = reply.tx.take()
                            {
                                let _ = tx.send(Ok(accepted.clone()));
                            }
                            core.waiting.push_back(Waiter {
                                upto: app.seq + 1,
                                what: Waiting::Accepted { reply, accepted, tenant, event },
                            });
                        }
                    }
                }
            }
            Entry::After(deferred) => {
                let upto = self.ledger.head().next_seq;
                if self.immediate || core.waiting.is_empty() && upto <= self.ledger.durable_len() {
                    let result =
                        if self.ledger.is_poisoned() { Err(LedgerError::Poisoned) } else { Ok(()) };
                    deferred(result);
                } else {
                    core.waiting.push_back(Waiter { upto, what: Waiting::Deferred(deferred) });
                }
            }
            Entry::Barrier(tx) => {
                let _ = tx.send(());
            }
        }
    }

    /// Starts a commit if replies wait and none is running.
    fn commit_if_needed(&self, core: &mut Core) {
        if core.committing || core.waiting.is_empty() {
            return;
        }
        self.start_commit(core);
    }

    fn start_commit(&self, core: &mut Core) {
        core.committing = true;
        let ledger = Arc::clone(&self.ledger);
        let checkpointer = self.checkpointer.clone();
        let core_ref = Arc::clone(&self.core);
        let every = self.options.checkpoint_every;
        let delay = self.options.batch_delay;
        let snapshots = self.snapshots.clone();
        let metrics = self.telemetry.ledger.clone();
        // The result goes to whichever incarnation is current when the commit ends.
        let wake = Arc::clone(&self.wake);
        core.job = Some(tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let result = tokio::task::spawn_blocking(move || {
                let result = commit(&ledger, &metrics);
                if let (Some(cp), Ok(durable)) = (&checkpointer, &result) {
                    checkpoint_if_due(&ledger, cp, &core_ref, *durable, every, false);
                }
                if let (Some(snapshots), Ok(_)) = (&snapshots, &result) {
                    snapshots.after_commit(&ledger);
                }
                result
            })
            .await
            .unwrap_or_else(|e| Err(LedgerError::Corrupt { seq: 0, reason: e.to_string() }));
            if let Some(actor) = wake.actor() {
                let _ = actor.cast(ReceiptMsg::Committed(result));
            }
        }));
    }

    fn schedule_flush(&self, core: &mut Core, myself: &ActorRef<ReceiptMsg>) {
        if !std::mem::replace(&mut core.flush_scheduled, true) {
            myself.send_after(self.options.flush_every, || ReceiptMsg::Flush);
        }
    }

    /// A commit finished: answer what it covered; commit `again` if more waits.
    fn committed(&self, result: Result<u64, LedgerError>, again: bool) {
        let done: Vec<Waiter> = {
            let mut core = self.core();
            core.committing = false;
            core.job = None;
            match &result {
                Err(e) => {
                    if core.failure.is_none() && !matches!(e, LedgerError::Closed) {
                        tracing::error!(error = %e, "group commit failed: the ledger is poisoned");
                    }
                    core.failure.get_or_insert_with(|| e.to_string());
                    core.waiting.drain(..).collect()
                }
                Ok(durable) => {
                    let n = core.waiting.iter().take_while(|w| w.upto <= *durable).count();
                    core.waiting.drain(..n).collect()
                }
            }
        };
        let outcome = result.map(drop);
        // The batch's acceptances, recorded in one pass (one clock read, one increment per
        // kind) as the batch is answered.
        let mut batch = self.telemetry.accepted_batch();
        for waiter in done {
            self.complete(waiter.what, outcome.clone(), Some(&mut batch));
        }
        drop(batch);
        if again {
            let mut core = self.core();
            self.commit_if_needed(&mut core);
        }
    }

    /// Answers one waiter, once its receipts are durable (or failed).
    fn complete(
        &self,
        what: Waiting,
        result: Result<(), LedgerError>,
        batch: Option<&mut crate::telemetry::AcceptedBatch<'_>>,
    ) {
        match what {
            Waiting::Deferred(f) => f(result),
            Waiting::Accepted { mut reply, accepted, tenant, event } => match result {
                Err(e) => answer(reply, Err(refusal(&e))),
                Ok(()) => {
                    // Durable: an event goes to the notifier, which never makes this wait.
                    if let (Some(event), Some(notify)) = (event, &self.notify) {
                        notify.feed(*event);
                    }
                    // Visible to checks before the caller hears of it.
                    if let Some(view) = reply.view.take() {
                        self.commercial.apply(&tenant, *view);
                    }
                    self.accepted(reply, accepted, tenant, batch);
                }
            },
        }
    }

    /// Answers a durable acceptance: a tenant governor's through the registry actor.
    fn accepted(
        &self,
        reply: Reply,
        accepted: Accepted,
        tenant: govern_governors::TenantId,
        batch: Option<&mut crate::telemetry::AcceptedBatch<'_>>,
    ) {
        // Answered after a group commit: measured here, with the rest of its batch, on one
        // thread. Answered at the write (this actor then sequences every command one by one
        // and is the bottleneck), the caller measures it instead.
        if !self.immediate
            && let (Some((kind, started)), Some(batch)) = (reply.measured, batch)
        {
            batch.record(kind, &tenant, started);
        }
        match reply.tenant_state {
            Some(state) => {
                let registry =
                    self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
                let msg = RegistryMsg::TenantCommitted {
                    tenant,
                    state,
                    reply: reply.tx.map(|tx| (tx, accepted)),
                    admission: reply.admission,
                };
                // Without a registry actor (the runtime is stopping) the caller hears
                // of its durable receipt all the same.
                match registry {
                    Some(r) => {
                        if let Err(ractor::MessagingErr::SendErr(msg)) = r.cast(msg) {
                            msg.answer();
                        }
                    }
                    None => msg.answer(),
                }
            }
            None => answer(reply, Ok(accepted)),
        }
    }

    /// The last commit and checkpoint, at stop.
    async fn finish(&self) -> Result<(), String> {
        // Whatever is still queued is written first: governors have stopped, and what they
        // sent before is theirs to have acknowledged.
        {
            let mut core = self.core();
            core.rx.close();
            while let Ok(entry) = core.rx.try_recv() {
                self.take(&mut core, entry, None);
            }
        }
        let job = self.core().job.take();
        if let Some(job) = job {
            let _ = job.await;
        }
        let ledger = Arc::clone(&self.ledger);
        let checkpointer = self.checkpointer.clone();
        let core_ref = Arc::clone(&self.core);
        let every = self.options.checkpoint_every;
        let snapshots = self.snapshots.clone();
        let metrics = self.telemetry.ledger.clone();
        let result = tokio::task::spawn_blocking(move || {
            let result = commit(&ledger, &metrics);
            if let (Some(cp), Ok(durable)) = (&checkpointer, &result) {
                checkpoint_if_due(&ledger, cp, &core_ref, *durable, every, true);
            }
            if let Some(snapshots) = &snapshots {
                // The snapshot thread is joined either way; a last snapshot only after a
                // last commit that succeeded.
                snapshots.finish(&ledger, result.is_ok());
            }
            result
        })
        .await
        .map_err(|e| format!("the last commit panicked: {e}"))?;
        self.committed(result, false);
        self.ledger.close();
        let failure = self.core().failure.clone();
        failure.map_or(Ok(()), Err)
    }
}

/// Signs a checkpoint after a commit when one is due (or `last`) and the ledger grew.
fn checkpoint_if_due(
    ledger: &Ledger,
    cp: &Checkpointer,
    core: &Mutex<Core>,
    durable: u64,
    every: Duration,
    last: bool,
) {
    let due = {
        let core = core.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        (last || core.last_checkpoint.elapsed() >= every) && core.checkpointed != Some(durable)
    };
    if !due {
        return;
    }
    let written = cp.write(ledger);
    let mut core = core.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    core.last_checkpoint = now();
    match written {
        Ok(size) => core.checkpointed = size,
        Err(e) => {
            tracing::error!(error = %e, "checkpoint not written");
            if last && core.failure.is_none() {
                core.failure = Some(format!("checkpoint not written: {e}"));
            }
        }
    }
}

impl Actor for ReceiptActor {
    type Msg = ReceiptMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ReceiptMsg>,
        (): (),
    ) -> Result<(), ActorProcessingErr> {
        self.wake.set_actor(Some(myself.clone()));
        {
            // A commit whose result no incarnation received: the next commit covers its
            // waiters again (a commit makes everything appended durable).
            let mut core = self.core();
            if core.committing && core.job.as_ref().is_none_or(tokio::task::JoinHandle::is_finished)
            {
                core.committing = false;
                core.job = None;
            }
        }
        // A new incarnation looks at the queue once: its predecessor may have left entries.
        self.wake.scheduled.store(true, Ordering::Release);
        myself.cast(ReceiptMsg::Drain)?;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ReceiptMsg>,
        msg: ReceiptMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ReceiptMsg::Drain => self.drain(&myself),
            ReceiptMsg::Committed(result) => self.committed(result, true),
            ReceiptMsg::Flush => {
                let mut core = self.core();
                core.flush_scheduled = false;
                if !core.committing && self.ledger.head().next_seq > self.ledger.durable_len() {
                    self.start_commit(&mut core);
                }
            }
        }
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ReceiptMsg>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        self.wake.set_actor(None);
        let outcome = self.finish().await;
        *self.outcome.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(outcome);
        Ok(())
    }
}
