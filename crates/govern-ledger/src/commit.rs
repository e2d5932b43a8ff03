//! Group commit: one committer thread makes the ledger durable in batches and acknowledges
//! each receipt only once it is durable (or, in the buffered mode the host must choose
//! explicitly, right away, with a periodic flush). It also signs checkpoints periodically
//! and when it stops.
//!
//! # The loop
//!
//! Callers append receipts to the [`Ledger`] themselves (a short critical section) and then
//! hand an acknowledgement ([`Ack`]) to [`GroupCommit::ack_when_durable`]. The committer
//! sleeps until someone waits; then the batch closes when [`CommitOptions::batch_max`]
//! acknowledgements are waiting or the first has waited [`CommitOptions::batch_delay`],
//! whichever comes first; it runs one [`Ledger::commit`] (the store's writes under the
//! ledger's lock, the `fdatasync` without it), and completes every acknowledgement the
//! commit covers. Receipts that nobody waits for (state timeouts, the buffered mode) are
//! committed at the latest [`CommitOptions::flush_every`] after they were appended.
//!
//! A failed commit poisons the ledger: every waiting acknowledgement, and every later one,
//! completes with the error, and nothing is retried.
//!
//! # Checkpoints
//!
//! With a [`Checkpointer`], the committer signs the durable tree head
//! ([`Ledger::tree_head`]) every [`CommitOptions::checkpoint_every`] when it has grown, and
//! once more when it stops, and hands it with the same tree head as a C2SP signed note to the
//! checkpointer's sink ([`CheckpointSink`]): a data directory's files
//! ([`crate::checkpoint::write_checkpoint`], [`crate::checkpoint::write_note`]) or a
//! database's table.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use govern_governors::Timestamp;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, CheckpointSink, DirSink};
use crate::ledger::{Ledger, LedgerError};

/// When callers are acknowledged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Durability {
    /// Once the receipt is durable: a crash never loses an acknowledged receipt. The
    /// default.
    #[default]
    Durable,
    /// Right after the receipt is written to the store's buffer; the committer flushes every
    /// [`CommitOptions::flush_every`]. A crash loses what was acknowledged since the last
    /// flush: the host must choose this explicitly.
    Buffered,
}

/// Default: most acknowledgements in one batch.
pub const BATCH_MAX: usize = 4_096;
/// Default: how long the first acknowledgement of a batch waits for others to join.
pub const BATCH_DELAY: Duration = Duration::from_micros(0);
/// Default: the longest a receipt nobody waits for stays unsynced.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The shortest flush interval (a shorter one is raised to it).
pub const FLUSH_EVERY_MIN: Duration = Duration::from_millis(1);
/// Default: how often a grown ledger is checkpointed.
pub const CHECKPOINT_EVERY: Duration = Duration::from_secs(10);

/// How the committer batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitOptions {
    /// When callers are acknowledged.
    pub durability: Durability,
    /// A batch closes when this many acknowledgements wait (at least 1).
    pub batch_max: usize,
    /// ... or when the first of them has waited this long. Zero: as soon as the previous
    /// commit is done (batches then form while a commit runs).
    pub batch_delay: Duration,
    /// Receipts nobody waits for are committed at least this often.
    pub flush_every: Duration,
    /// A grown ledger is checkpointed this often (with a [`Checkpointer`]).
    pub checkpoint_every: Duration,
}

impl Default for CommitOptions {
    fn default() -> Self {
        Self {
            durability: Durability::Durable,
            batch_max: BATCH_MAX,
            batch_delay: BATCH_DELAY,
            flush_every: FLUSH_EVERY,
            checkpoint_every: CHECKPOINT_EVERY,
        }
    }
}

/// An acknowledgement waiting for its receipt to become durable.
pub trait Ack: Send + 'static {
    /// The receipt is durable (`Ok`), or the ledger failed and it may not be.
    fn complete(self, result: Result<(), LedgerError>);
}

impl Ack for std::sync::mpsc::Sender<Result<(), LedgerError>> {
    fn complete(self, result: Result<(), LedgerError>) {
        // The waiter may have given up: nothing to tell.
        let _ = self.send(result);
    }
}

/// Signs checkpoints of a ledger into a sink: a data directory ([`Self::in_dir`]) or another
/// store of checkpoints ([`Self::new`]).
#[derive(Debug)]
pub struct Checkpointer {
    /// Where the signed checkpoints go (shared: a runtime reads the latest back from it).
    pub sink: Arc<dyn CheckpointSink>,
    /// The key.
    pub signer: CheckpointSigner,
    /// The checkpoint's time (default: the wall clock).
    pub clock: fn() -> Timestamp,
}

impl Checkpointer {
    /// Signs checkpoints with `signer` into `sink`, timestamped by the wall clock.
    #[must_use]
    pub fn new(sink: Arc<dyn CheckpointSink>, signer: CheckpointSigner) -> Self {
        Self { sink, signer, clock: Self::wall_clock }
    }

    /// Signs checkpoints into `dir` ([`DirSink`]) with the key pair kept there (generated on
    /// first use: [`CheckpointSigner::load_or_generate`]), timestamped by the wall clock.
    ///
    /// # Errors
    /// [`CheckpointError`] if the key pair cannot be loaded or written.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let dir = dir.into();
        let (signer, generated) = CheckpointSigner::load_or_generate(&dir)?;
        if generated {
            tracing::info!(dir = %dir.display(), "checkpoint key pair generated");
        }
        Ok(Self::new(Arc::new(DirSink::new(dir)), signer))
    }

    /// The wall clock, the default checkpoint time: when the key signed, not a decision
    /// time.
    #[must_use]
    pub fn wall_clock() -> Timestamp {
        #[allow(clippy::disallowed_methods, reason = "a checkpoint records when it was signed")]
        let now = std::time::SystemTime::now();
        let ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    /// Signs a checkpoint of the ledger's durable tree head and hands it, with the same tree
    /// head as a C2SP signed note, to the sink (a directory replaces `checkpoint.json`, then
    /// `checkpoint.note`, each atomically: a crash between the two leaves the note one tree
    /// head behind, both still verify); returns its size (`None` when the ledger keeps no
    /// tree: its store is not durable).
    ///
    /// # Errors
    /// As the sink's [`CheckpointSink::write`].
    pub fn write(&self, ledger: &Ledger) -> Result<Option<u64>, CheckpointError> {
        let Some(head) = ledger.tree_head() else { return Ok(None) };
        let checkpoint = Checkpoint { size: head.size, root: head.root, timestamp: (self.clock)() };
        self.sink.write(&self.signer.sign(checkpoint), &self.signer.sign_note(&checkpoint))?;
        Ok(Some(head.size))
    }
}

/// Acknowledgements waiting for the commit that covers them: the part of group commit that
/// does not depend on how the committer waits (a thread here, a task in an async runtime).
///
/// [`Self::push`] completes an acknowledgement at once when it can (buffered mode, store not
/// durable, receipt durable already, ledger failed or queue closed) and otherwise queues it
/// and says whether a committer must be started; the committer commits and calls
/// [`Self::complete`] until nothing waits.
pub struct AckQueue<A: Ack> {
    state: Mutex<Waiting<A>>,
    /// Acknowledge at once: the buffered mode, or a store that is not durable.
    immediate: bool,
    /// Set once a commit failed: every acknowledgement completes with the error.
    failed: AtomicBool,
}

impl<A: Ack> std::fmt::Debug for AckQueue<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckQueue").field("immediate", &self.immediate).finish_non_exhaustive()
    }
}

struct Waiting<A> {
    /// (sequence number, ack), in arrival order.
    acks: Vec<(u64, A)>,
    /// When the first of them arrived.
    first_at: Option<Instant>,
    /// A committer is on it: callers need not start one.
    active: bool,
    /// No more acknowledgements are taken.
    closed: bool,
}

/// What [`AckQueue::push`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// The acknowledgement is complete already.
    Completed,
    /// It waits; `start` says that no committer is active and the caller must start one.
    Waiting {
        /// Start a committer.
        start: bool,
        /// How many wait now.
        waiting: usize,
    },
}

impl<A: Ack> AckQueue<A> {
    /// A queue for `ledger` under `durability`.
    #[must_use]
    pub fn new(ledger: &Ledger, durability: Durability) -> Self {
        Self {
            state: Mutex::new(Waiting {
                acks: Vec::new(),
                first_at: None,
                active: false,
                closed: false,
            }),
            immediate: durability == Durability::Buffered || !ledger.is_durable(),
            failed: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting<A>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Completes `ack` once receipt `seq` of `ledger` is durable (see the type's
    /// documentation).
    pub fn push(&self, ledger: &Ledger, seq: u64, ack: A) -> Queued {
        if self.failed.load(Ordering::Acquire) || ledger.is_poisoned() {
            ack.complete(Err(LedgerError::Poisoned));
            return Queued::Completed;
        }
        if self.immediate {
            ack.complete(Ok(()));
            return Queued::Completed;
        }
        let mut state = self.lock();
        // A committer publishes the durable length before it takes this lock to complete
        // acknowledgements, so a receipt it has just covered is seen here.
        if seq < ledger.durable_len() {
            drop(state);
            ack.complete(Ok(()));
            return Queued::Completed;
        }
        if state.closed {
            drop(state);
            ack.complete(Err(LedgerError::Stopped));
            return Queued::Completed;
        }
        if state.acks.is_empty() {
            state.first_at = Some(now());
        }
        state.acks.push((seq, ack));
        let start = !std::mem::replace(&mut state.active, true);
        Queued::Waiting { start, waiting: state.acks.len() }
    }

    /// How many acknowledgements wait, and since when the first does.
    #[must_use]
    pub fn waiting(&self) -> (usize, Option<Instant>) {
        let state = self.lock();
        (state.acks.len(), state.first_at)
    }

    /// Completes what a commit covered (everything, with the error, if it failed). Returns
    /// whether acknowledgements still wait; if none do, the committer is no longer active
    /// and the next [`Self::push`] asks for one.
    pub fn complete(&self, result: &Result<u64, LedgerError>) -> bool {
        let (done, more): (Vec<(u64, A)>, bool) = {
            let mut state = self.lock();
            let done = match result {
                Err(_) => {
                    self.failed.store(true, Ordering::Release);
                    std::mem::take(&mut state.acks)
                }
                Ok(durable) => {
                    let (done, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut state.acks)
                        .into_iter()
                        .partition(|(seq, _)| seq < durable);
                    state.acks = rest;
                    done
                }
            };
            let more = !state.acks.is_empty();
            state.first_at = more.then(now);
            state.active = more;
            (done, more)
        };
        for (_, ack) in done {
            ack.complete(result.as_ref().map(drop).map_err(Clone::clone));
        }
        more
    }

    /// Takes no more acknowledgements: later ones complete with [`LedgerError::Stopped`].
    /// Those waiting stay, for the last commit to complete.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    /// Whether a commit has failed.
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }
}

/// What the committer thread and the callers share.
struct Shared<A: Ack> {
    ledger: Arc<Ledger>,
    options: CommitOptions,
    queue: AckQueue<A>,
    /// The thread's own state: asleep (wake it), stop requested.
    control: Mutex<Control>,
    wake: Condvar,
}

#[derive(Default)]
struct Control {
    /// Work arrived since the thread last looked.
    kicked: bool,
    /// Stop after a last commit and checkpoint.
    stop: bool,
}

impl<A: Ack> Shared<A> {
    fn control(&self) -> MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn kick(&self) {
        self.control().kicked = true;
        self.wake.notify_one();
    }
}

/// The committer of one ledger on its own thread (see the module documentation). Dropping
/// it stops the thread after a last commit, as [`Self::stop`] does.
pub struct GroupCommit<A: Ack> {
    shared: Arc<Shared<A>>,
    thread: Mutex<Option<JoinHandle<Result<(), String>>>>,
}

impl<A: Ack> std::fmt::Debug for GroupCommit<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("options", &self.shared.options).finish()
    }
}

impl<A: Ack> GroupCommit<A> {
    /// Starts the committer thread for `ledger`.
    ///
    /// # Errors
    /// The thread cannot be spawned.
    pub fn start(
        ledger: Arc<Ledger>,
        options: CommitOptions,
        checkpointer: Option<Checkpointer>,
    ) -> std::io::Result<Self> {
        let options = options.normalized();
        let shared = Arc::new(Shared {
            queue: AckQueue::new(&ledger, options.durability),
            ledger,
            options,
            control: Mutex::new(Control::default()),
            wake: Condvar::new(),
        });
        let thread = std::thread::Builder::new().name("govern-commit".into()).spawn({
            let shared = Arc::clone(&shared);
            move || run(&shared, checkpointer.as_ref())
        })?;
        Ok(Self { shared, thread: Mutex::new(Some(thread)) })
    }

    /// The options it runs with.
    #[must_use]
    pub fn options(&self) -> CommitOptions {
        self.shared.options
    }

    /// Completes `ack` once receipt `seq` is durable: at once if it already is, or in the
    /// buffered mode, or with a store that is not durable; else after the commit that covers
    /// it. After a failure, with the error.
    pub fn ack_when_durable(&self, seq: u64, ack: A) {
        let shared = &*self.shared;
        if let Queued::Waiting { start, waiting } = shared.queue.push(&shared.ledger, seq, ack)
            && (start || waiting >= shared.options.batch_max)
        {
            shared.kick();
        }
    }

    /// Whether a commit has failed (the ledger is poisoned).
    #[must_use]
    pub fn has_failed(&self) -> bool {
        self.shared.queue.has_failed()
    }

    /// Stops the committer after a last commit and checkpoint, and waits for it (a blocking
    /// call of about one `fdatasync`). Later acknowledgements complete with
    /// [`LedgerError::Stopped`]. A second call does nothing.
    ///
    /// # Errors
    /// The last commit or checkpoint failed (or an earlier one did).
    pub fn stop(&self) -> Result<(), String> {
        let thread = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        let Some(thread) = thread else { return Ok(()) };
        self.shared.queue.close();
        self.shared.control().stop = true;
        self.shared.wake.notify_one();
        thread.join().map_err(|_| "the committer thread panicked".to_owned())?
    }
}

impl<A: Ack> Drop for GroupCommit<A> {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::error!(error = %e, "group commit stopped with an error");
        }
    }
}

impl CommitOptions {
    /// The options with their floors applied: a batch of at least one, a flush interval of
    /// at least [`FLUSH_EVERY_MIN`].
    #[must_use]
    pub fn normalized(mut self) -> Self {
        self.batch_max = self.batch_max.max(1);
        self.flush_every = self.flush_every.max(FLUSH_EVERY_MIN);
        self
    }
}

/// `Instant::now`, for batching and flush intervals: real time, never a decision time.
fn now() -> Instant {
    #[allow(clippy::disallowed_methods, reason = "batching waits on real time")]
    Instant::now()
}

/// One commit and its bookkeeping, shared by every committer: commits, completes what it
/// covered, and signs a checkpoint when one is due (or `last`) and the ledger grew. Returns
/// whether acknowledgements still wait, and the failure to report, if any.
#[derive(Debug)]
pub struct CommitRound {
    /// When the last checkpoint was signed.
    last_checkpoint: Instant,
    /// The size it covered.
    checkpointed: Option<u64>,
    /// The first failure.
    failure: Option<String>,
}

impl CommitRound {
    /// Bookkeeping for a ledger as it is now (its current tree head counts as checkpointed).
    #[must_use]
    pub fn new(ledger: &Ledger) -> Self {
        Self {
            last_checkpoint: now(),
            checkpointed: ledger.tree_head().map(|h| h.size),
            failure: None,
        }
    }

    /// Runs one commit of `ledger`, completes `queue`'s covered acknowledgements, and
    /// checkpoints if due. Returns whether acknowledgements still wait.
    pub fn run<A: Ack>(
        &mut self,
        ledger: &Ledger,
        queue: &AckQueue<A>,
        options: &CommitOptions,
        checkpointer: Option<&Checkpointer>,
        last: bool,
    ) -> bool {
        let result = if queue.has_failed() { Err(LedgerError::Poisoned) } else { ledger.commit() };
        if let Err(e) = &result
            && self.failure.is_none()
        {
            if *e == LedgerError::Closed {
                // A round after shutdown closed the ledger: nothing failed.
                tracing::debug!("no group commit: the ledger is closed");
            } else {
                tracing::error!(error = %e, "group commit failed: the ledger is poisoned");
            }
            self.failure = Some(e.to_string());
        }
        let more = queue.complete(&result);
        if let (Some(cp), Ok(durable)) = (checkpointer, &result) {
            let due = last || self.last_checkpoint.elapsed() >= options.checkpoint_every;
            if due && self.checkpointed != Some(*durable) {
                self.last_checkpoint = now();
                match cp.write(ledger) {
                    Ok(size) => self.checkpointed = size,
                    Err(e) => {
                        tracing::error!(error = %e, "checkpoint not written");
                        if last && self.failure.is_none() {
                            self.failure = Some(format!("checkpoint not written: {e}"));
                        }
                    }
                }
            }
        }
        more
    }

    /// The first failure, if any.
    ///
    /// # Errors
    /// It.
    pub fn outcome(&self) -> Result<(), String> {
        self.failure.clone().map_or(Ok(()), Err)
    }
}

/// The committer thread.
fn run<A: Ack>(shared: &Shared<A>, checkpointer: Option<&Checkpointer>) -> Result<(), String> {
    let options = shared.options;
    let mut round = CommitRound::new(&shared.ledger);
    let mut last_flush = now();
    loop {
        let stop = wait_for_batch(shared, last_flush);
        round.run(&shared.ledger, &shared.queue, &options, checkpointer, stop);
        last_flush = now();
        if stop {
            return round.outcome();
        }
    }
}

/// Sleeps until a batch closes, a flush is due, or the committer must stop (returned).
fn wait_for_batch<A: Ack>(shared: &Shared<A>, last_flush: Instant) -> bool {
    let options = shared.options;
    let mut control = shared.control();
    loop {
        if control.stop {
            return true;
        }
        control.kicked = false;
        let at = now();
        let (waiting, first_at) = shared.queue.waiting();
        if let Some(first) = first_at {
            let waited = at.saturating_duration_since(first);
            if waiting >= options.batch_max || waited >= options.batch_delay {
                return false;
            }
            control = wait(shared, control, options.batch_delay - waited);
            continue;
        }
        let since_flush = at.saturating_duration_since(last_flush);
        let due = since_flush >= options.flush_every;
        if due && shared.ledger.head().next_seq > shared.ledger.durable_len() {
            return false;
        }
        // Nothing to flush yet (or at all: then a whole interval).
        let timeout = if due { options.flush_every } else { options.flush_every - since_flush };
        control = wait(shared, control, timeout);
    }
}

fn wait<'a, A: Ack>(
    shared: &'a Shared<A>,
    control: MutexGuard<'a, Control>,
    timeout: Duration,
) -> MutexGuard<'a, Control> {
    if control.kicked || control.stop {
        return control;
    }
    shared
        .wake
        .wait_timeout(control, timeout)
        .map(|(guard, _)| guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner().0)
}

#[cfg(test)]
mod tests;
