//! A governor actor hosts one pure governor: decide → send the receipt to the receipt actor →
//! apply the new state → next command. The receipt actor answers the caller once the receipt
//! is durable; the governor does not wait for it.
//!
//! Commands wait in the governor's [`Slot`], a bounded inbox that lives outside the actor, so
//! that a panicking actor loses nothing queued: its supervisor starts a new one for the same
//! slot, which replays the governor's receipts and carries on with the queue. The ractor
//! mailbox only carries wake-ups. The slot's lock guards the queue only: it is never held
//! while deciding, sending or reading the ledger.
//!
//! What a governor may touch is its [`Env`]: the receipt actor's queue, the ledger to read its
//! own receipts back, the clock, and its kind's timers. Not its domain, not the registry.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use govern_governors::{CommandSpec, Ctx, Governor, Metadata, Reason, Request, StateSpec};
use govern_ledger::{Ledger, LedgerError};
use govern_receipt::{ReceiptBody, replay_from};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use crate::clock::Clock;
use crate::error::{CommandError, Outcome, Refusal};
use crate::hosted::Hosted;
use crate::limits::GOVERNOR_INBOX_MAX;
use crate::receipts::{Entry, Receipts, Reply, answer};
use crate::registry::{Admission, Key};
use crate::telemetry::Started;
use crate::timers::Timers;

/// Where to make a governor panic, for crash tests and scenario scripts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[cfg_attr(
    not(feature = "testing"),
    allow(dead_code, unreachable_pub, reason = "used by the testing feature's hooks")
)]
pub enum CrashPoint {
    /// As soon as the governor reaches this request in its inbox.
    Now,
    /// On its next accepted command, after the receipt is sent to the receipt actor and
    /// before the new state is applied.
    AfterNextAppend,
}

/// A governor's state as a query sees it, in inbox order with its commands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot<G> {
    /// The machine.
    pub machine: G,
    /// How many receipts the governor has (its next `resource_seq`).
    pub receipts: u64,
}

/// One entry of a governor's inbox.
pub(crate) enum Envelope<G: Governor> {
    /// A command, from a caller or a state timeout.
    Command {
        request: Request<G::Command>,
        reply: oneshot::Sender<Outcome>,
        /// The tenant's in-flight budget unit, returned when the caller is answered.
        admission: Admission,
        /// Sent by a state timeout: never refused for a full inbox (a governor has at most
        /// one timeout), and answered as soon as it is decided.
        timeout: bool,
        /// When a handle sent it (`None`: the runtime's own): its acceptance is measured
        /// where it is answered, in the receipt actor.
        started: Option<Started>,
    },
    /// A state query, answered in order with the commands around it.
    Inspect { reply: oneshot::Sender<Result<Snapshot<G>, Refusal>> },
    /// An injected crash (the `Now` point).
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    Crash,
}

impl<G: Governor> Envelope<G> {
    /// Answers the envelope with `refusal` (it will not be processed).
    pub(crate) fn refuse(self, refusal: Refusal) {
        match self {
            Self::Command { reply, .. } => {
                let _ = reply.send(Err(CommandError::Refused(refusal)));
            }
            Self::Inspect { reply } => {
                let _ = reply.send(Err(refusal));
            }
            Self::Crash => {}
        }
    }
}

/// What a governor actor may use: nothing of its domain beyond its kind's timers.
pub(crate) struct Env<G: Hosted> {
    pub(crate) receipts: Receipts,
    pub(crate) ledger: Arc<Ledger>,
    pub(crate) clock: Clock,
    pub(crate) timers: Arc<Timers<G>>,
    /// Whether checks are kept (the runtime has a catalog): only then does a governor say
    /// what its receipts change in what checks decide with.
    pub(crate) views: bool,
}

/// A governor's quarantine: it crashed again and again.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Quarantine {
    /// How many quarantines so far (each twice as long as the one before).
    pub(crate) level: u32,
    /// Runtime-clock milliseconds when the current one ends (0: none).
    pub(crate) until_ms: u64,
}

/// The inbox and everything that must outlive one actor incarnation.
struct Inbox<G: Governor> {
    queue: VecDeque<Envelope<G>>,
    /// A wake-up is pending or the actor is draining: callers need not wake it.
    scheduled: bool,
    /// The slot was passivated or quarantined: callers must look the governor up again.
    closed: bool,
    /// The live actor, once started.
    actor: Option<ActorRef<GovernorMsg>>,
    /// Crash on the next append ([`CrashPoint::AfterNextAppend`]).
    crash_after_append: bool,
    /// Crash times (runtime-clock ms) within the current window.
    crashes: VecDeque<u64>,
    quarantine: Quarantine,
}

/// A governor's place in its domain: the inbox, shared by callers and the actor.
pub(crate) struct Slot<G: Governor> {
    pub(crate) key: Key,
    inbox: Mutex<Inbox<G>>,
    /// Runtime-clock milliseconds of the last command, for passivation.
    last_active_ms: AtomicU64,
}

/// Why a slot did not take an envelope.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PushError {
    /// Passivated (or out of quarantine) meanwhile: route it again.
    Closed,
    /// The inbox is full.
    Full,
    /// Quarantined: retry after this many milliseconds.
    Quarantined { retry_after_ms: u64 },
}

impl<G: Governor> Slot<G> {
    pub(crate) fn new(key: Key, now_ms: u64, quarantine: Quarantine) -> Self {
        let inbox = Inbox {
            queue: VecDeque::new(),
            scheduled: false,
            closed: false,
            actor: None,
            crash_after_append: false,
            crashes: VecDeque::new(),
            quarantine,
        };
        Self { key, inbox: Mutex::new(inbox), last_active_ms: AtomicU64::new(now_ms) }
    }

    fn lock(&self) -> MutexGuard<'_, Inbox<G>> {
        // Every critical section below leaves the inbox consistent; a panic elsewhere cannot
        // break it. Recover rather than propagate the poison.
        self.inbox.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues an envelope and wakes the actor if it is idle.
    /// A refused envelope comes back with the reason.
    pub(crate) fn push(
        &self,
        envelope: Envelope<G>,
        now_ms: u64,
    ) -> Result<(), (Envelope<G>, PushError)> {
        let wake = {
            let mut inbox = self.lock();
            if inbox.quarantine.until_ms > now_ms {
                let retry_after_ms = inbox.quarantine.until_ms - now_ms;
                return Err((envelope, PushError::Quarantined { retry_after_ms }));
            }
            if inbox.closed {
                return Err((envelope, PushError::Closed));
            }
            // State timeouts are never refused: there is at most one per governor.
            let bounded = matches!(&envelope, Envelope::Command { timeout: false, .. });
            if bounded && inbox.queue.len() >= GOVERNOR_INBOX_MAX {
                return Err((envelope, PushError::Full));
            }
            inbox.queue.push_back(envelope);
            if inbox.scheduled || inbox.actor.is_none() {
                None
            } else {
                inbox.scheduled = true;
                inbox.actor.clone()
            }
        };
        self.last_active_ms.store(now_ms, Ordering::Relaxed);
        if let Some(actor) = wake {
            // A dead actor's replacement drains the inbox when it starts: nothing is lost.
            let _ = actor.cast(GovernorMsg::Wake);
        }
        Ok(())
    }

    /// Arms [`CrashPoint::AfterNextAppend`]; false if the slot is closed.
    #[cfg_attr(
        not(feature = "testing"),
        allow(dead_code, reason = "used by the testing feature's hooks")
    )]
    pub(crate) fn crash_after_next_append(&self) -> bool {
        let mut inbox = self.lock();
        inbox.crash_after_append = !inbox.closed;
        !inbox.closed
    }

    /// Whether the slot is closed (passivated, quarantined, failed): routing replaces it.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// The slot's quarantine record, carried over to the slot that replaces it.
    pub(crate) fn quarantine(&self) -> Quarantine {
        self.lock().quarantine
    }

    /// Closes the slot if it is idle: no queue, nothing in hand. Returns the actor to stop.
    pub(crate) fn close_if_idle(
        &self,
        idle_since_ms: u64,
    ) -> Option<Option<ActorRef<GovernorMsg>>> {
        if self.last_active_ms.load(Ordering::Relaxed) > idle_since_ms {
            return None;
        }
        let mut inbox = self.lock();
        if inbox.closed || inbox.scheduled || !inbox.queue.is_empty() {
            return None;
        }
        inbox.closed = true;
        Some(inbox.actor.take())
    }

    /// Closes the slot and answers everything queued with `refusal`.
    pub(crate) fn fail_all(&self, refusal: &Refusal) {
        let queued: Vec<_> = {
            let mut inbox = self.lock();
            inbox.closed = true;
            inbox.actor = None;
            inbox.queue.drain(..).collect()
        };
        for envelope in queued {
            envelope.refuse(refusal.clone());
        }
    }

    /// Records a crash of the live actor at `now_ms`. Within the limit (`max` crashes per
    /// `window_ms`) the slot stays open for a restart (`None`); beyond it the slot is
    /// quarantined: closed, `on_quarantine` called with the quarantine's length (ms) and
    /// level (1 for the first), then its queue refused with a retry-after; the length and
    /// level are returned.
    pub(crate) fn crashed(
        &self,
        now_ms: u64,
        max: u32,
        window_ms: u64,
        on_quarantine: impl FnOnce(u64, u32),
    ) -> Option<(u64, u32)> {
        let (queued, ms, level) = {
            let mut inbox = self.lock();
            inbox.actor = None;
            inbox.scheduled = false;
            inbox.crashes.push_back(now_ms);
            while inbox.crashes.front().is_some_and(|t| now_ms.saturating_sub(*t) > window_ms) {
                inbox.crashes.pop_front();
            }
            if inbox.crashes.len() <= max as usize {
                return None;
            }
            let level = inbox.quarantine.level;
            let min = crate::limits::QUARANTINE_MIN.as_millis() as u64;
            let cap = crate::limits::QUARANTINE_MAX.as_millis() as u64;
            let ms = min.saturating_mul(1u64 << level.min(30)).min(cap);
            inbox.quarantine = Quarantine { level: level + 1, until_ms: now_ms + ms };
            inbox.crashes.clear();
            inbox.closed = true;
            (inbox.queue.drain(..).collect::<Vec<_>>(), ms, level + 1)
        };
        // Recorded before anyone hears of the quarantine, so that whoever does and then reads
        // the audit trail finds the record (it is queued first).
        on_quarantine(ms, level);
        let refusal = Refusal::GovernorUnavailable {
            kind: G::KIND,
            reason: "quarantined after crashing repeatedly".into(),
            retry_after_ms: Some(ms),
        };
        for envelope in queued {
            envelope.refuse(refusal.clone());
        }
        Some((ms, level))
    }
}

/// The governor actor's messages: wake-ups only; commands wait in the slot.
#[derive(Debug)]
pub(crate) enum GovernorMsg {
    /// Replay the receipts, then drain the inbox (the first message of every incarnation).
    Start,
    /// Drain the inbox.
    Wake,
}

/// The actor hosting governor `G`.
pub(crate) struct GovernorActor<G: Hosted> {
    pub(crate) env: Arc<Env<G>>,
}

/// The actor's state: the machine, rebuilt from the ledger at every start.
pub(crate) struct GovernorState<G: Hosted> {
    slot: Arc<Slot<G>>,
    machine: G,
    /// The governor's receipts so far (its next `resource_seq`).
    receipts: u64,
}

impl<G: Hosted> Actor for GovernorActor<G> {
    type Msg = GovernorMsg;
    type State = GovernorState<G>;
    type Arguments = Arc<Slot<G>>;

    async fn pre_start(
        &self,
        myself: ActorRef<GovernorMsg>,
        slot: Arc<Slot<G>>,
    ) -> Result<Self::State, ActorProcessingErr> {
        // The replay happens in the first message, not here: the supervisor that spawns us
        // waits for `pre_start`, and must not wait for a long history.
        myself.cast(GovernorMsg::Start)?;
        Ok(GovernorState { slot, machine: G::default(), receipts: 0 })
    }

    async fn handle(
        &self,
        myself: ActorRef<GovernorMsg>,
        msg: GovernorMsg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Everything awaited here is boxed: an actor's task future is as large as the
        // largest of its awaits, for its whole life, resident or idle.
        if let GovernorMsg::Start = msg {
            Box::pin(self.start(myself, state)).await?;
        }
        loop {
            match self.step(state) {
                Step::Empty => return Ok(()),
                Step::Done => {}
                Step::Full(full) => {
                    let (entry, then) = *full;
                    Box::pin(self.send_waiting(state, entry, then)).await;
                }
            }
        }
    }
}

/// What [`GovernorActor::step`] did.
enum Step<G: Governor> {
    /// The inbox is empty.
    Empty,
    /// One envelope was processed.
    Done,
    /// The receipt actor's queue is full: send this entry when there is room, then finish.
    Full(Box<(Entry, Option<Then<G>>)>),
}

/// What follows an accepted command's receipt once it is sent: the state change.
struct Then<G: Governor> {
    command: G::Command,
    to: G::State,
    at: govern_governors::Timestamp,
    crash: bool,
}

impl<G: Hosted> GovernorActor<G> {
    /// Replays the receipts, then takes the inbox over.
    async fn start(
        &self,
        myself: ActorRef<GovernorMsg>,
        state: &mut GovernorState<G>,
    ) -> Result<(), ActorProcessingErr> {
        let (machine, receipts) = self.replay_own(&state.slot.key).await?;
        state.machine = machine;
        state.receipts = receipts;
        self.env.timers.arm(&state.slot.key, state.machine.state_timeout());
        let mut inbox = state.slot.lock();
        inbox.actor = Some(myself);
        inbox.scheduled = true;
        Ok(())
    }

    /// This governor's machine replayed from its receipts, every one it sent before
    /// included: the barrier travels through the receipt actor's queue behind them. The read
    /// and the fold (which may be long: a million receipts take a second or more) run on the
    /// blocking pool, whatever the store, so that a long history never holds a tokio worker
    /// and the tasks queued on it; the read holds no lock of the ledger's beyond copying
    /// positions. A governor without receipts skips both.
    async fn replay_own(&self, key: &Key) -> Result<(G, u64), ActorProcessingErr> {
        self.env.receipts.barrier().await?;
        // A governor that has never written a receipt (the common start: a new resource)
        // has nothing to read or fold: no trip to the blocking pool.
        if !self.env.ledger.resource_may_have_receipts(&key.tenant, G::KIND, &key.resource) {
            return Ok((G::default(), 0));
        }
        let ledger = Arc::clone(&self.env.ledger);
        let (tenant, resource) = (key.tenant.clone(), key.resource.clone());
        let replayed =
            tokio::task::spawn_blocking(move || -> Result<(G, u64), ActorProcessingErr> {
                // Its receipts below the archive boundary are archived: it starts from its
                // state there.
                let history = ledger.resource_history(&tenant, G::KIND, &resource)?;
                let (start, first) = match &history.base {
                    Some(base) => (G::decode_state(&base.state)?, base.count),
                    None => (G::default(), 0),
                };
                let machine: G = replay_from(start, first, &history.receipts)?;
                Ok((machine, first + history.receipts.len() as u64))
            })
            .await??;
        Ok(replayed)
    }

    /// Sends `entry` once the receipt actor's queue has room (backpressure), then applies
    /// what follows it.
    async fn send_waiting(
        &self,
        state: &mut GovernorState<G>,
        entry: Entry,
        then: Option<Then<G>>,
    ) {
        match self.env.receipts.send(entry).await {
            Ok(()) => {
                if let Some(then) = then {
                    self.applied(state, then);
                }
            }
            Err(entry) => refuse_entry(entry),
        }
    }

    /// Queues `entry` at the receipt actor now if there is room; otherwise hands it back.
    fn send(&self, entry: Entry, then: Option<Then<G>>) -> Result<(), Step<G>> {
        match self.env.receipts.try_send(entry) {
            Ok(()) => Ok(()),
            Err(tokio::sync::mpsc::error::TrySendError::Full(entry)) => {
                Err(Step::Full(Box::new((entry, then))))
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(entry)) => {
                refuse_entry(entry);
                Err(Step::Done)
            }
        }
    }

    /// Processes the head of the inbox.
    fn step(&self, state: &mut GovernorState<G>) -> Step<G> {
        let (envelope, crash_after_append) = {
            let mut inbox = state.slot.lock();
            match inbox.queue.pop_front() {
                Some(envelope) => {
                    let crash = matches!(envelope, Envelope::Command { .. })
                        && std::mem::take(&mut inbox.crash_after_append);
                    (envelope, crash)
                }
                None => {
                    inbox.scheduled = false;
                    return Step::Empty;
                }
            }
        };
        match envelope {
            Envelope::Crash => {
                let key = &state.slot.key;
                panic!("injected crash in {} governor {}/{}", G::KIND, key.tenant, key.resource);
            }
            Envelope::Inspect { reply } => {
                let snapshot =
                    Snapshot { machine: state.machine.clone(), receipts: state.receipts };
                // Answered once the receipts of the state it shows are durable.
                let after = Entry::After(Box::new(move |durable| {
                    let _ = reply.send(durable.map(|()| snapshot).map_err(|e| match e {
                        LedgerError::Closed => Refusal::ShuttingDown,
                        e => Refusal::LedgerUnavailable(e.to_string()),
                    }));
                }));
                self.send(after, None).err().unwrap_or(Step::Done)
            }
            Envelope::Command { request, reply, admission, timeout, started } => {
                let reply = Reply {
                    tx: Some(reply),
                    admission,
                    tenant_state: None,
                    on_write: timeout,
                    view: None,
                    measured: started.map(|s| (G::KIND, s)),
                };
                self.command(state, request, reply, crash_after_append)
            }
        }
    }

    /// Decide → send the receipt → (crash point) → apply, for one command.
    fn command(
        &self,
        state: &mut GovernorState<G>,
        mut request: Request<G::Command>,
        mut reply: Reply,
        crash_after_append: bool,
    ) -> Step<G> {
        let key = &state.slot.key;
        let ctx = Ctx { now: self.env.clock.now() };
        // One transition is a DEBUG span: at 100 k transitions a second, INFO would be noise.
        let span = tracing::debug_span!(
            "command",
            tenant_id = %key.tenant,
            governor = G::KIND.name(),
            resource_id = %key.resource,
            command = request.command.name(),
            from = state.machine.state().name(),
            to = tracing::field::Empty,
            outcome = tracing::field::Empty,
            seq = tracing::field::Empty,
        );
        // Accepted, the command is completed with what the caller left out and the machine
        // knows (the billing governor's amount and currency), so that its receipt records it.
        let decided = span.in_scope(|| state.machine.accept(&mut request.command, &ctx));
        let t = match decided {
            Err(rejection) => {
                span.record("outcome", "rejected");
                span.in_scope(|| {
                    tracing::debug!(code = rejection.kind(), reason = %rejection, "command rejected");
                });
                let outcome = Err(CommandError::Rejected(rejection));
                if reply.on_write {
                    answer(reply, outcome);
                    return Step::Done;
                }
                // A rejection shows the state it was decided in: answered once that state's
                // receipts are durable.
                let after = Entry::After(Box::new(move |durable| {
                    let outcome = match durable {
                        Ok(()) => outcome,
                        Err(e) => Err(CommandError::Refused(ledger_refusal(&e))),
                    };
                    answer(reply, outcome);
                }));
                return self.send(after, None).err().unwrap_or(Step::Done);
            }
            Ok(t) => t,
        };
        let body = ReceiptBody::for_transition::<G>(
            key.tenant.clone(),
            key.resource.clone(),
            state.receipts,
            &request,
            t,
            ctx.now,
        );
        reply.tenant_state = G::tenant_state(&t.to);
        if self.env.views {
            reply.view = state.machine.view(&key.resource, &request.command, t.to).map(Box::new);
        }
        span.record("to", t.to.name()).record("outcome", "accepted");
        let entry = Entry::Append { body, from: t.from.name(), to: t.to.name(), reply, span };
        let then =
            Then { command: request.command, to: t.to, at: ctx.now, crash: crash_after_append };
        match self.env.receipts.try_send(entry) {
            Ok(()) => {
                self.applied(state, then);
                Step::Done
            }
            Err(tokio::sync::mpsc::error::TrySendError::Full(entry)) => {
                Step::Full(Box::new((entry, Some(then))))
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(entry)) => {
                refuse_entry(entry);
                Step::Done
            }
        }
    }

    /// The receipt is on its way to the ledger, behind every earlier one of this governor:
    /// the state changes now, so that the next command is decided on it. No reply or query
    /// shows it before the receipt is durable (see `crate::receipts`).
    fn applied(&self, state: &mut GovernorState<G>, then: Then<G>) {
        let key = &state.slot.key;
        state.receipts += 1;
        if then.crash {
            panic!(
                "injected crash after sending receipt {} of {}/{}",
                state.receipts - 1,
                key.tenant,
                key.resource
            );
        }
        state.machine.evolve(&then.command, then.to, then.at);
        self.env.timers.arm(key, state.machine.state_timeout());
    }
}

/// Answers an entry the receipt actor will never see (the runtime has stopped).
fn refuse_entry(entry: Entry) {
    match entry {
        Entry::Append { reply, .. } => {
            answer(reply, Err(CommandError::Refused(Refusal::ShuttingDown)))
        }
        Entry::After(f) => f(Err(LedgerError::Closed)),
        Entry::Barrier(tx) => drop(tx),
    }
}

/// The refusal of a reply whose receipts did not become durable.
fn ledger_refusal(e: &LedgerError) -> Refusal {
    match e {
        LedgerError::Closed | LedgerError::Stopped => Refusal::ShuttingDown,
        e => Refusal::LedgerUnavailable(e.to_string()),
    }
}

/// A request sent by a state timeout: the reason says so, and so does the metadata.
pub(crate) fn timeout_request<C>(command: C) -> Request<C> {
    let reason = Reason::new("state timeout").expect("a non-empty literal is a valid reason");
    let mut metadata = Metadata::new();
    metadata.insert("source", "state_timeout").expect("a valid key and a short value");
    Request { command, reason, metadata }
}

/// A request the runtime sends on its own account (an audit record): the reason says why,
/// and the metadata says it came from the runtime.
pub(crate) fn runtime_request<C>(command: C, reason: &'static str) -> Request<C> {
    let reason = Reason::new(reason).expect("a non-empty short literal is a valid reason");
    let mut metadata = Metadata::new();
    metadata.insert("source", "runtime").expect("a valid key and a short value");
    Request { command, reason, metadata }
}
