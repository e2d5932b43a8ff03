//! The saga coordinator actor, a child of the root supervisor: it admits saga runs (at most
//! `limits::SAGA_RUNS_MAX` at once), runs each in a task of its own (the run's logic is
//! `coordinator.rs`, given to it as a [`Runner`]), and tracks them. When it starts, and when
//! its supervisor restarts it after a crash, it resumes every unfinished run from the
//! receipts (those still running are left to their tasks); when it stops, it stops its runs,
//! which the next start resumes.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use govern_governors::{ResourceId, TenantId};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::oneshot;

use crate::error::Refusal;
use crate::limits::SAGA_RUNS_MAX;

/// What a run ends with, as the runner answers it (`None`: a test's simulated crash).
pub(crate) type RunResult = Result<Option<crate::saga::SagaEnd>, Refusal>;

/// A run to start or continue.
#[derive(Clone, Debug)]
pub(crate) struct RunRequest {
    pub(crate) tenant: TenantId,
    pub(crate) id: ResourceId,
    /// The saga and its parameters, for a run to begin; `None`: continue an existing run.
    pub(crate) start: Option<(String, BTreeMap<String, String>)>,
    /// Test faults: a step to fail, a record to crash at (`(n, before)`).
    pub(crate) fail_step: Option<u32>,
    pub(crate) crash: Option<(usize, bool)>,
}

impl RunRequest {
    /// A run of `saga` with `params` to begin (or continue), without faults.
    pub(crate) fn begin(
        tenant: &TenantId,
        id: &ResourceId,
        saga: &str,
        params: &BTreeMap<String, String>,
    ) -> Self {
        Self {
            tenant: tenant.clone(),
            id: id.clone(),
            start: Some((saga.to_owned(), params.clone())),
            fail_step: None,
            crash: None,
        }
    }

    /// A run to continue from its receipts.
    fn resume(tenant: TenantId, id: ResourceId) -> Self {
        Self { tenant, id, start: None, fail_step: None, crash: None }
    }
}

/// Runs one saga run to its end: `RuntimeHandle`'s coordinator logic.
pub(crate) type Runner =
    Arc<dyn Fn(RunRequest) -> Pin<Box<dyn Future<Output = RunResult> + Send>> + Send + Sync>;

/// Lists the unfinished runs in the ledger (what a (re)started coordinator resumes).
pub(crate) type Unfinished = Arc<dyn Fn() -> Vec<(TenantId, ResourceId)> + Send + Sync>;

/// Messages to the coordinator.
pub(crate) enum SagaMsg {
    /// Run (or continue) a saga run; the answer comes when it ends.
    Run { request: RunRequest, reply: oneshot::Sender<RunResult> },
    /// Resume every unfinished run; the answer lists how each ended.
    ResumeAll { reply: Option<oneshot::Sender<Vec<(TenantId, ResourceId, RunResult)>>> },
    /// A run's task ended.
    Finished {
        /// The run.
        key: (TenantId, ResourceId),
        /// Which spawn of it (a later one of the same run is not this one).
        spawn: u64,
    },
    #[cfg(feature = "testing")]
    /// Make the coordinator fail (fault injection): its supervisor restarts it.
    Crash,
}

/// The coordinator (see the module documentation).
#[derive(Clone)]
pub(crate) struct SagaCoordinator {
    pub(crate) runner: Runner,
    pub(crate) unfinished: Unfinished,
    /// How many times it has started: a restarted coordinator (after a crash) resumes the
    /// unfinished runs itself; the first start leaves it to the runtime (after it has read the
    /// ledger) or the host.
    pub(crate) starts: Arc<std::sync::atomic::AtomicU64>,
    /// Where callers find the current incarnation.
    pub(crate) me: Arc<Mutex<Option<ActorRef<SagaMsg>>>>,
}

/// The running runs' tasks, each with the number of its spawn.
pub(crate) struct Runs {
    tasks: BTreeMap<(TenantId, ResourceId), (u64, tokio::task::JoinHandle<()>)>,
    spawns: u64,
}

impl SagaCoordinator {
    fn spawn_run(
        &self,
        myself: &ActorRef<SagaMsg>,
        runs: &mut Runs,
        request: RunRequest,
        reply: oneshot::Sender<RunResult>,
    ) {
        let key = (request.tenant.clone(), request.id.clone());
        // A run already under way is not spawned twice: its task stays the one tracked (and
        // aborted when the coordinator stops), the caller is told as the runner would.
        if runs.tasks.get(&key).is_some_and(|(_, t)| !t.is_finished()) {
            let id = &key.1;
            let _ = reply.send(Err(Refusal::IdempotencyInFlight { key: format!("saga:{id}") }));
            return;
        }
        if runs.tasks.len() >= SAGA_RUNS_MAX {
            // Finished tasks whose `Finished` is still queued: only swept when at the bound.
            runs.tasks.retain(|_, (_, t)| !t.is_finished());
        }
        if runs.tasks.len() >= SAGA_RUNS_MAX {
            let _ = reply.send(Err(Refusal::Busy { what: "saga runs", max: SAGA_RUNS_MAX }));
            return;
        }
        runs.spawns += 1;
        let spawn = runs.spawns;
        let (runner, me) = (Arc::clone(&self.runner), myself.clone());
        let done = key.clone();
        let task = tokio::spawn(async move {
            let end = runner(request).await;
            let _ = reply.send(end);
            let _ = me.cast(SagaMsg::Finished { key: done, spawn });
        });
        runs.tasks.insert(key, (spawn, task));
    }
}

impl Actor for SagaCoordinator {
    type Msg = SagaMsg;
    type State = Runs;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SagaMsg>,
        (): (),
    ) -> Result<Runs, ActorProcessingErr> {
        *self.me.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(myself.clone());
        if self.starts.fetch_add(1, std::sync::atomic::Ordering::AcqRel) > 0 {
            let _ = myself.cast(SagaMsg::ResumeAll { reply: None });
        }
        Ok(Runs { tasks: BTreeMap::new(), spawns: 0 })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SagaMsg>,
        runs: &mut Runs,
    ) -> Result<(), ActorProcessingErr> {
        *self.me.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        // Stopped mid-run, a run resumes from its receipts at the next start.
        for (_, (_, task)) in std::mem::take(&mut runs.tasks) {
            task.abort();
        }
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<SagaMsg>,
        msg: SagaMsg,
        runs: &mut Runs,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SagaMsg::Run { request, reply } => self.spawn_run(&myself, runs, request, reply),
            SagaMsg::ResumeAll { reply } => {
                let mut waiting = Vec::new();
                for (tenant, id) in (self.unfinished)() {
                    if runs
                        .tasks
                        .get(&(tenant.clone(), id.clone()))
                        .is_some_and(|(_, t)| !t.is_finished())
                    {
                        continue;
                    }
                    let (tx, rx) = oneshot::channel();
                    let request = RunRequest::resume(tenant.clone(), id.clone());
                    self.spawn_run(&myself, runs, request, tx);
                    waiting.push((tenant, id, rx));
                }
                if let Some(reply) = reply {
                    tokio::spawn(async move {
                        let mut ends = Vec::new();
                        for (tenant, id, rx) in waiting {
                            let end = rx.await.unwrap_or(Err(Refusal::ShuttingDown));
                            ends.push((tenant, id, end));
                        }
                        let _ = reply.send(ends);
                    });
                }
            }
            SagaMsg::Finished { key, spawn } => {
                // Sent by the task just before it ends: removed by its spawn number, not by
                // whether the task has quite finished yet.
                if runs.tasks.get(&key).is_some_and(|(s, _)| *s == spawn) {
                    runs.tasks.remove(&key);
                }
            }
            #[cfg(feature = "testing")]
            SagaMsg::Crash => return Err("injected crash in the saga coordinator".into()),
        }
        Ok(())
    }
}
