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
//! once more when it stops, and writes it to the data directory
//! ([`crate::checkpoint::write_checkpoint`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use govern_governors::Timestamp;

use crate::checkpoint::{Checkpoint, CheckpointError, CheckpointSigner, write_checkpoint};
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

/// Signs checkpoints of a ledger into a data directory.
#[derive(Debug)]
pub struct Checkpointer {
    /// Where `checkpoint.json` goes.
    pub dir: PathBuf,
    /// The key.
    pub signer: CheckpointSigner,
    /// The checkpoint's time (default: the wall clock).
    pub clock: fn() -> Timestamp,
}

impl Checkpointer {
    /// Signs checkpoints into `dir` with the key pair kept there (generated on first use:
    /// [`CheckpointSigner::load_or_generate`]), timestamped by the wall clock.
    ///
    /// # Errors
    /// [`CheckpointError`] if the key pair cannot be loaded or written.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Result<Self, CheckpointError> {
        let dir = dir.into();
        let (signer, generated) = CheckpointSigner::load_or_generate(&dir)?;
        if generated {
            tracing::info!(dir = %dir.display(), "checkpoint key pair generated");
        }
        Ok(Self { dir, signer, clock: wall_clock })
    }

    /// Signs and writes a checkpoint of the ledger's durable tree head.
    fn write(&self, ledger: &Ledger) -> Result<Option<u64>, CheckpointError> {
        let Some(head) = ledger.tree_head() else { return Ok(None) };
        let checkpoint = Checkpoint { size: head.size, root: head.root, timestamp: (self.clock)() };
        write_checkpoint(&self.dir, &self.signer.sign(checkpoint))?;
        Ok(Some(head.size))
    }
}

/// The wall clock, for checkpoint timestamps: when the key signed, not a decision time.
fn wall_clock() -> Timestamp {
    #[allow(clippy::disallowed_methods, reason = "a checkpoint records when it was signed")]
    let now = std::time::SystemTime::now();
    let ms = now.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// What the committer and the callers share.
struct State<A> {
    /// Acknowledgements waiting for a commit: (sequence number, ack).
    waiting: Vec<(u64, A)>,
    /// When the first of them arrived.
    first_at: Option<Instant>,
    /// The committer is asleep with nothing waiting: wake it on the first arrival.
    idle: bool,
    /// Stop after a last commit and checkpoint.
    stop: bool,
}

struct Shared<A> {
    ledger: Arc<Ledger>,
    options: CommitOptions,
    state: Mutex<State<A>>,
    wake: Condvar,
    /// Set once a commit failed: every acknowledgement completes with the error.
    failed: AtomicBool,
}

impl<A> Shared<A> {
    fn lock(&self) -> MutexGuard<'_, State<A>> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The committer of one ledger (see the module documentation). Dropping it stops the thread
/// after a last commit, as [`Self::stop`] does.
pub struct GroupCommit<A: Ack> {
    shared: Arc<Shared<A>>,
    thread: Option<JoinHandle<Result<(), String>>>,
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
        mut options: CommitOptions,
        checkpointer: Option<Checkpointer>,
    ) -> std::io::Result<Self> {
        options.batch_max = options.batch_max.max(1);
        options.flush_every = options.flush_every.max(FLUSH_EVERY_MIN);
        let shared = Arc::new(Shared {
            ledger,
            options,
            state: Mutex::new(State {
                waiting: Vec::new(),
                first_at: None,
                idle: false,
                stop: false,
            }),
            wake: Condvar::new(),
            failed: AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new().name("govern-commit".into()).spawn({
            let shared = Arc::clone(&shared);
            move || run(&shared, checkpointer.as_ref())
        })?;
        Ok(Self { shared, thread: Some(thread) })
    }

    /// The options it runs with.
    #[must_use]
    pub fn options(&self) -> CommitOptions {
        self.shared.options
    }

    /// The ledger.
    #[must_use]
    pub fn ledger(&self) -> &Arc<Ledger> {
        &self.shared.ledger
    }

    /// Completes `ack` once receipt `seq` is durable: at once if it already is, or in the
    /// buffered mode, or with a store that is not durable; else after the commit that covers
    /// it. After a failure, with the error.
    pub fn ack_when_durable(&self, seq: u64, ack: A) {
        let shared = &*self.shared;
        if shared.failed.load(Ordering::Acquire) || shared.ledger.is_poisoned() {
            ack.complete(Err(LedgerError::Poisoned));
            return;
        }
        if shared.options.durability == Durability::Buffered || !shared.ledger.is_durable() {
            ack.complete(Ok(()));
            return;
        }
        let mut state = shared.lock();
        // The committer publishes the durable length before it takes this lock to complete
        // acknowledgements, so a receipt it has just covered is seen here.
        if seq < shared.ledger.durable_len() {
            drop(state);
            ack.complete(Ok(()));
            return;
        }
        if state.stop {
            drop(state);
            ack.complete(Err(LedgerError::Poisoned));
            return;
        }
        if state.waiting.is_empty() {
            state.first_at = Some(now());
        }
        state.waiting.push((seq, ack));
        let wake =
            std::mem::take(&mut state.idle) || state.waiting.len() >= shared.options.batch_max;
        drop(state);
        if wake {
            shared.wake.notify_one();
        }
    }

    /// Stops the committer after a last commit and checkpoint, and waits for it.
    ///
    /// # Errors
    /// The last commit or checkpoint failed (or an earlier one did).
    pub fn stop(mut self) -> Result<(), String> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> Result<(), String> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        thread.join().map_err(|_| "the committer thread panicked".to_owned())?
    }
}

impl<A: Ack> Drop for GroupCommit<A> {
    fn drop(&mut self) {
        if let Err(e) = self.stop_inner() {
            tracing::error!(error = %e, "group commit stopped with an error");
        }
    }
}

/// `Instant::now`, for batching and flush intervals: real time, never a decision time.
fn now() -> Instant {
    #[allow(clippy::disallowed_methods, reason = "batching waits on real time")]
    Instant::now()
}

/// The committer thread.
fn run<A: Ack>(shared: &Shared<A>, checkpointer: Option<&Checkpointer>) -> Result<(), String> {
    let options = shared.options;
    let mut last_flush = now();
    let mut last_checkpoint = now();
    let mut checkpointed = checkpointer.and_then(|_| shared.ledger.tree_head()).map(|h| h.size);
    let mut outcome = Ok(());
    loop {
        let stop = wait_for_batch(shared, last_flush);
        let result = if shared.failed.load(Ordering::Acquire) {
            Err(LedgerError::Poisoned)
        } else {
            shared.ledger.commit()
        };
        last_flush = now();
        if let Err(e) = &result {
            if !shared.failed.swap(true, Ordering::AcqRel) {
                tracing::error!(error = %e, "group commit failed: the ledger is poisoned");
                outcome = Err(e.to_string());
            }
        }
        complete(shared, result.clone());
        if let Some(cp) = checkpointer {
            let due = stop || last_checkpoint.elapsed() >= options.checkpoint_every;
            let grown = shared.ledger.durable_len() != checkpointed.unwrap_or(u64::MAX);
            if due && grown && result.is_ok() {
                last_checkpoint = now();
                match cp.write(&shared.ledger) {
                    Ok(size) => checkpointed = size,
                    Err(e) => {
                        tracing::error!(error = %e, "checkpoint not written");
                        if stop {
                            outcome = outcome.and(Err(format!("checkpoint not written: {e}")));
                        }
                    }
                }
            }
        }
        if stop {
            // Nobody can be waiting now: `ack_when_durable` refuses once `stop` is set.
            return outcome;
        }
    }
}

/// Sleeps until a batch closes, a flush is due, or the committer must stop (returned).
fn wait_for_batch<A>(shared: &Shared<A>, last_flush: Instant) -> bool {
    let options = shared.options;
    let mut state = shared.lock();
    loop {
        if state.stop {
            return true;
        }
        let at = now();
        if let Some(first) = state.first_at {
            let waited = at.saturating_duration_since(first);
            if state.waiting.len() >= options.batch_max || waited >= options.batch_delay {
                return false;
            }
            state = wait(shared, state, options.batch_delay - waited);
            continue;
        }
        let since_flush = at.saturating_duration_since(last_flush);
        let due = since_flush >= options.flush_every;
        if due && shared.ledger.head().next_seq > shared.ledger.durable_len() {
            return false;
        }
        // Nothing to flush yet (or at all: then a whole interval).
        let timeout = if due { options.flush_every } else { options.flush_every - since_flush };
        state.idle = true;
        state = wait(shared, state, timeout);
        state.idle = false;
    }
}

fn wait<'a, A>(
    shared: &'a Shared<A>,
    state: MutexGuard<'a, State<A>>,
    timeout: Duration,
) -> MutexGuard<'a, State<A>> {
    shared
        .wake
        .wait_timeout(state, timeout)
        .map(|(guard, _)| guard)
        .unwrap_or_else(|poisoned| poisoned.into_inner().0)
}

/// Completes the acknowledgements a commit covered (all of them if it failed).
fn complete<A: Ack>(shared: &Shared<A>, result: Result<u64, LedgerError>) {
    let done: Vec<(u64, A)> = {
        let mut state = shared.lock();
        match &result {
            Err(_) => {
                state.first_at = None;
                std::mem::take(&mut state.waiting)
            }
            Ok(durable) => {
                let (done, rest): (Vec<_>, Vec<_>) =
                    std::mem::take(&mut state.waiting).into_iter().partition(|(s, _)| s < durable);
                state.first_at = (!rest.is_empty()).then(now);
                state.waiting = rest;
                done
            }
        }
    };
    for (_, ack) in done {
        ack.complete(result.as_ref().map(drop).map_err(Clone::clone));
    }
}

#[cfg(test)]
mod tests;
