//! The runtime's group commit, on tokio (the batching rules are `govern_ledger::commit`'s).
//!
//! An accepted command's reply waits in an [`AckQueue`] until its receipt is durable. The
//! first waiting reply starts a driver task; the driver runs commits on tokio's blocking
//! pool (`spawn_blocking`: the `fdatasync` never blocks a worker) until nothing waits, so
//! replies that arrive during a commit form the next batch. Because a blocking task is
//! running whenever a reply waits for durability, tokio's paused clock does not jump ahead
//! meanwhile: runs on virtual time stay deterministic on a durable store.
//!
//! Receipts nobody waits for (state timeouts) are queued the same way, so they are committed
//! promptly too. In the buffered mode replies go out at once and a flush follows within
//! `flush_every`; no timer runs while nothing is unflushed. Checkpoints are signed after a
//! commit when `checkpoint_every` has passed since the last one, and at shutdown.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use govern_ledger::{
    AckQueue, Checkpointer, CommitOptions, CommitRound, Durability, Ledger, Queued,
};

use crate::governor::DurableReply;

/// The group commit of a runtime's ledger.
pub(crate) struct Committer {
    ledger: Arc<Ledger>,
    queue: AckQueue<DurableReply>,
    options: CommitOptions,
    checkpointer: Option<Checkpointer>,
    /// Commit bookkeeping; held by the one commit running at a time.
    round: Mutex<CommitRound>,
    /// A buffered-mode flush is scheduled.
    flush_pending: AtomicBool,
}

impl std::fmt::Debug for Committer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Committer").field("options", &self.options).finish_non_exhaustive()
    }
}

impl Committer {
    pub(crate) fn new(
        ledger: Arc<Ledger>,
        options: CommitOptions,
        checkpointer: Option<Checkpointer>,
    ) -> Self {
        let options = options.normalized();
        Self {
            queue: AckQueue::new(&ledger, options.durability),
            round: Mutex::new(CommitRound::new(&ledger)),
            ledger,
            options,
            checkpointer,
            flush_pending: AtomicBool::new(false),
        }
    }

    /// Completes `reply` once receipt `seq` is durable (at once in the buffered mode or on a
    /// store that is not durable).
    pub(crate) fn ack(self: &Arc<Self>, seq: u64, reply: DurableReply) {
        match self.queue.push(&self.ledger, seq, reply) {
            Queued::Waiting { start: true, .. } => {
                tokio::spawn(Arc::clone(self).drive());
            }
            Queued::Waiting { start: false, .. } => {}
            Queued::Completed => {
                if self.options.durability == Durability::Buffered && self.ledger.is_durable() {
                    self.schedule_flush();
                }
            }
        }
    }

    /// Commits until no reply waits.
    async fn drive(self: Arc<Self>) {
        loop {
            if !self.options.batch_delay.is_zero()
                && self.queue.waiting().0 < self.options.batch_max
            {
                tokio::time::sleep(self.options.batch_delay).await;
            }
            let this = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || this.commit_round(false)).await {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    // Not expected: the waiting replies then end in their reply timeout.
                    tracing::error!(error = %e, "a ledger commit panicked");
                    return;
                }
            }
        }
    }

    /// In the buffered mode: one flush within `flush_every`, unless one is scheduled.
    fn schedule_flush(self: &Arc<Self>) {
        if self.flush_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            tokio::time::sleep(this.options.flush_every).await;
            this.flush_pending.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(move || this.commit_round(false)).await;
        });
    }

    fn commit_round(&self, last: bool) -> bool {
        let mut round = self.round.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        round.run(&self.ledger, &self.queue, &self.options, self.checkpointer.as_ref(), last)
    }

    /// The last commit and checkpoint: replies queued later complete with an error.
    pub(crate) async fn stop(self: &Arc<Self>) -> Result<(), String> {
        self.queue.close();
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            this.commit_round(true);
            let round = this.round.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            round.outcome()
        })
        .await
        .map_err(|e| format!("the last commit panicked: {e}"))?
    }
}
