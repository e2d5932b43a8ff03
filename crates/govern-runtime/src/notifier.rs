//! The notifier actor (outbound notifications' running part; `notify.rs` has what the
//! receipt actor and the lanes share), a child of the root supervisor (started last, stopped
//! first). Its job
//! is the lifetime of the notification tasks: one router task that takes the feed and offers
//! each event to its tenant's lanes, one worker per lane (`lane.rs`), and recovery scans
//! (`recover.rs`). When it starts, and when its supervisor restarts it after a crash, it
//! forgets the attempts its predecessor left in flight and runs a recovery scan, which queues
//! them again from the receipts; when it stops, it stops its tasks (an attempt cut short is
//! not receipted, and is made again, with the same attempt number, by the next start).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use govern_governors::audit::NotificationOutcome;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::notify::{Event, Lane, Notify, Offered, Pending, recover};

mod worker;

/// Receipts an audit record of a tenant and answers once it is durable
/// (`RuntimeHandle::record_waiting`).
pub(crate) type Record = Arc<
    dyn Fn(
            govern_governors::TenantId,
            govern_governors::Request<govern_governors::audit::Command>,
        )
            -> std::pin::Pin<Box<dyn std::future::Future<Output = crate::error::Outcome> + Send>>
        + Send
        + Sync,
>;

/// What the notifier reaches of the runtime, given by it: no handle, so that this module does
/// not depend on the runtime's.
#[derive(Clone)]
pub(crate) struct Env {
    /// How an attempt is receipted.
    pub(crate) record: Record,
    /// The runtime's clock (signatures' `t`, the recovery's event age).
    pub(crate) clock: crate::clock::Clock,
    /// What recovery scans read.
    pub(crate) ledger: Arc<govern_ledger::Ledger>,
    /// The receipts a scan may read: below this sequence number (the durable ones).
    pub(crate) visible: Arc<dyn Fn() -> u64 + Send + Sync>,
    /// Whether the runtime is stopping (no new attempt starts then).
    pub(crate) stopping: Arc<dyn Fn() -> bool + Send + Sync>,
}

/// Messages to the notifier.
pub(crate) enum NotifyMsg {
    /// The feed overflowed: scan the ledger for what it dropped.
    Recover,
    #[cfg(feature = "testing")]
    /// Make the notifier fail (fault injection): its supervisor restarts it.
    Crash,
}

/// The notifier (see the module documentation).
#[derive(Clone)]
pub(crate) struct NotifierActor {
    pub(crate) notify: Arc<Notify>,
    pub(crate) env: Env,
    /// Where the fault injection finds the current incarnation.
    pub(crate) me: Arc<std::sync::Mutex<Option<ActorRef<NotifyMsg>>>>,
    /// The current incarnation's tasks. Shared by incarnations: ractor does not run
    /// `post_stop` after a failure, so a restarted notifier aborts its predecessor's tasks
    /// itself before it starts its own.
    pub(crate) tasks: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl NotifierActor {
    fn tasks(&self) -> std::sync::MutexGuard<'_, Vec<tokio::task::JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn abort_tasks(&self) {
        for task in self.tasks().drain(..) {
            task.abort();
        }
    }
}

impl NotifierActor {
    /// Starts a recovery scan in the background; its outstanding unit (taken by the caller)
    /// is given back when its offers are made.
    fn recover(&self) -> tokio::task::JoinHandle<()> {
        let (notify, env) = (Arc::clone(&self.notify), self.env.clone());
        tokio::spawn(async move {
            let below = (env.visible)();
            let now_ms = env.clock.now().as_ms();
            let ledger = Arc::clone(&env.ledger);
            let scanning = Arc::clone(&notify);
            let found = tokio::task::spawn_blocking(move || {
                recover::scan(&scanning, &ledger, below, now_ms)
            })
            .await
            .unwrap_or_default();
            for (lane, pending) in found {
                if offer(&notify, &env, &lane, pending) {
                    notify.counts.recovered.fetch_add(1, Ordering::Relaxed);
                }
            }
            notify.done(1);
        })
    }
}

/// Offers `pending` to `lane`: queued (true), known already, or dropped for a full queue
/// (counted and receipted `dropped`, attempt 0).
fn offer(notify: &Arc<Notify>, env: &Env, lane: &Arc<Lane>, pending: Pending) -> bool {
    let event = Arc::clone(&pending.event);
    match lane.offer(pending) {
        Offered::Queued => {
            notify.queued(1);
            true
        }
        Offered::Known => false,
        Offered::Full => {
            notify.counts.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(tenant_id = %event.tenant, endpoint = %lane.endpoint.id(), event = %event.id(), "notification dropped: the endpoint's queue is full");
            let (lane, env, notify) = (Arc::clone(lane), env.clone(), Arc::clone(notify));
            // Outstanding until receipted: `notifications_settled` waits for the record.
            notify.recording.fetch_add(1, Ordering::AcqRel);
            notify.queued(1);
            tokio::spawn(async move {
                let detail = "the endpoint's queue is full".to_owned();
                let outcome = NotificationOutcome::Dropped;
                let _ = worker::record(&env, &lane.endpoint, &event, 0, outcome, detail).await;
                notify.recording.fetch_sub(1, Ordering::AcqRel);
                notify.done(1);
            });
            false
        }
    }
}

/// Routes the feed to the lanes until aborted.
async fn route(notify: Arc<Notify>, env: Env, me: ActorRef<NotifyMsg>) {
    let mut rx = notify.rx.lock().await;
    while let Some(event) = rx.recv().await {
        let event: Arc<Event> = Arc::new(event);
        for lane in notify.lanes_of(&event.tenant) {
            if lane.wants(&event) {
                offer(&notify, &env, lane, Pending { event: Arc::clone(&event), attempt: 1 });
            }
        }
        notify.done(1);
        if notify.lagging.swap(false, Ordering::AcqRel) {
            // The overflow's outstanding unit goes to the scan.
            let _ = me.cast(NotifyMsg::Recover);
        }
    }
}

impl Actor for NotifierActor {
    type Msg = NotifyMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<NotifyMsg>,
        (): (),
    ) -> Result<(), ActorProcessingErr> {
        *self.me.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(myself.clone());
        self.abort_tasks();
        let mut tasks = Vec::new();
        for lane in self.notify.all_lanes() {
            lane.forget_in_flight();
            let (lane, notify, env) =
                (Arc::clone(lane), Arc::clone(&self.notify), self.env.clone());
            tasks.push(tokio::spawn(worker::run(lane, notify, env)));
        }
        // What a predecessor left counted (cut-short attempts, a scan) is counted afresh:
        // what is queued, what the feed holds, an overflow's scan, and this start's scan.
        self.notify.recount(1);
        tasks.push(tokio::spawn(route(Arc::clone(&self.notify), self.env.clone(), myself)));
        tasks.push(self.recover());
        *self.tasks() = tasks;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<NotifyMsg>,
        (): &mut (),
    ) -> Result<(), ActorProcessingErr> {
        *self.me.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        self.abort_tasks();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<NotifyMsg>,
        msg: NotifyMsg,
        (): &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NotifyMsg::Recover => {
                let scan = self.recover();
                let mut tasks = self.tasks();
                tasks.retain(|t| !t.is_finished());
                tasks.push(scan);
            }
            #[cfg(feature = "testing")]
            NotifyMsg::Crash => return Err("injected crash in the notifier".into()),
        }
        Ok(())
    }
}
