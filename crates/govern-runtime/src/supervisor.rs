//! A static supervisor with OTP semantics built on ractor's supervision events: children
//! started in order, restarted by strategy and restart type within a restart intensity
//! (excess escalates to the parent), and stopped in reverse order with a timeout each, then
//! killed. The decision itself is the pure [`policy::decide`].

pub(crate) mod policy;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ractor::{
    Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr, SupervisionEvent,
};

use policy::{Decision, Exit, Intensity, RestartLog, RestartType, Strategy};

/// Starts one child linked to the given supervisor cell.
pub(crate) type StartFn = Arc<
    dyn Fn(ActorCell) -> Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>
        + Send
        + Sync,
>;

/// One static child.
#[derive(Clone)]
pub(crate) struct ChildSpec {
    /// For logs.
    pub(crate) name: &'static str,
    /// Whether and when it is restarted.
    pub(crate) restart: RestartType,
    /// How long it may take to stop gracefully before it is killed.
    pub(crate) shutdown: Duration,
    /// How to start it.
    pub(crate) start: StartFn,
}

/// A supervisor of static children.
pub(crate) struct Supervisor {
    pub(crate) name: &'static str,
    pub(crate) strategy: Strategy,
    pub(crate) intensity: Intensity,
    pub(crate) children: Vec<ChildSpec>,
    /// Monotonic time for the restart log.
    pub(crate) elapsed: Arc<dyn Fn() -> Duration + Send + Sync>,
}

/// The running children (by spec index) and the restart log.
pub(crate) struct SupervisorState {
    running: Vec<Option<ActorCell>>,
    log: RestartLog,
    /// Children this supervisor is stopping on purpose: their exit is not a failure.
    stopping: Vec<ractor::ActorId>,
}

/// Messages to a supervisor.
pub(crate) enum SupervisorMsg {
    /// Stop every child in reverse start order (each gracefully, then killed after its
    /// timeout), then answer.
    Shutdown(RpcReplyPort<()>),
}

impl Supervisor {
    async fn stop_child(&self, state: &mut SupervisorState, i: usize) {
        let Some(cell) = state.running.get_mut(i).and_then(Option::take) else { return };
        state.stopping.push(cell.get_id());
        let timeout = self.children.get(i).map_or(Duration::from_secs(5), |c| c.shutdown);
        if cell.stop_and_wait(Some("shutdown".into()), Some(timeout)).await.is_err() {
            tracing::warn!(
                supervisor = self.name,
                child = self.children.get(i).map_or("?", |c| c.name),
                "child did not stop in time; killing it"
            );
            cell.kill();
        }
    }

    async fn start_child(
        &self,
        myself: &ActorCell,
        state: &mut SupervisorState,
        i: usize,
    ) -> Result<(), ActorProcessingErr> {
        let Some(spec) = self.children.get(i) else { return Ok(()) };
        let cell = (spec.start)(myself.clone()).await?;
        if let Some(slot) = state.running.get_mut(i) {
            *slot = Some(cell);
        }
        Ok(())
    }
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        (): (),
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState {
            running: vec![None; self.children.len()],
            log: RestartLog::new(),
            stopping: Vec::new(),
        };
        for i in 0..self.children.len() {
            self.start_child(&myself.get_cell(), &mut state, i).await?;
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        msg: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            SupervisorMsg::Shutdown(reply) => {
                for i in policy::shutdown_order(self.children.len()) {
                    self.stop_child(state, i).await;
                }
                let _ = reply.send(());
            }
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, exit, why) = match event {
            SupervisionEvent::ActorFailed(cell, error) => (cell, Exit::Failed, error.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                // OTP: `shutdown` is a clean stop, no reason a normal one; any other reason
                // (`killed`, a cancelled task) is a stop this supervisor did not order.
                let exit = match reason.as_deref() {
                    Some("shutdown") => Exit::Shutdown,
                    None => Exit::Normal,
                    Some(_) => Exit::Failed,
                };
                (cell, exit, reason.unwrap_or_default())
            }
            _ => return Ok(()),
        };
        let id = cell.get_id();
        if let Some(pos) = state.stopping.iter().position(|s| *s == id) {
            state.stopping.swap_remove(pos);
            return Ok(());
        }
        let Some(i) =
            state.running.iter().position(|c| c.as_ref().is_some_and(|c| c.get_id() == id))
        else {
            return Ok(());
        };
        if let Some(slot) = state.running.get_mut(i) {
            *slot = None;
        }
        let types: Vec<RestartType> = self.children.iter().map(|c| c.restart).collect();
        let now = (self.elapsed)();
        let child = self.children.get(i).map_or("?", |c| c.name);
        match policy::decide(self.strategy, &types, i, exit, &mut state.log, self.intensity, now) {
            Decision::Remove { .. } => {
                tracing::info!(supervisor = self.name, child, "child exited; not restarted")
            }
            Decision::Restart { stop, remove, start } => {
                tracing::warn!(supervisor = self.name, child, reason = %why, restarts = state.log.len(), "child exited; restarting");
                crate::telemetry::supervisor_restart(self.name, child);
                for j in stop {
                    self.stop_child(state, j).await;
                }
                for j in remove {
                    if let Some(slot) = state.running.get_mut(j) {
                        *slot = None;
                    }
                }
                for j in start {
                    self.start_child(&myself.get_cell(), state, j).await?;
                }
            }
            Decision::Escalate { stop } => {
                tracing::error!(supervisor = self.name, child, reason = %why, "restart intensity exceeded; escalating");
                crate::telemetry::supervisor_escalation(self.name);
                for j in stop {
                    self.stop_child(state, j).await;
                }
                return Err(format!(
                    "{}: restart intensity exceeded after {child} exited: {why}",
                    self.name
                )
                .into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
