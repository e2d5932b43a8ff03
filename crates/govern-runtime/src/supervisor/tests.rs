//! The static supervisor with tiny real child actors: each strategy restarts the right children
//! in the right order, restart types and the restart intensity are honoured, and shutdown stops
//! the children in reverse start order, killing one that overstays its timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, ActorStatus, SupervisionEvent};
use tokio::sync::mpsc::{
    UnboundedReceiver, UnboundedSender, error::TryRecvError, unbounded_channel,
};
use tokio::time::Instant;

use super::policy::{Intensity, RestartType, Strategy};
use super::{ChildSpec, Supervisor, SupervisorMsg};

use RestartType::{Permanent, Temporary, Transient};

/// Every incarnation of every child, in start order.
type Cells = Arc<Mutex<Vec<(&'static str, ActorCell)>>>;

/// A test child: reports its start and graceful stop, and misbehaves on request.
struct Child {
    name: &'static str,
    events: UnboundedSender<String>,
    cells: Cells,
}

#[derive(Debug)]
enum ChildMsg {
    /// Panic in the handler.
    Fail,
    /// Stop by itself, cleanly (no reason).
    Exit,
    /// Sit in the handler for an hour, so that a stop request is not seen.
    Hang,
}

impl Actor for Child {
    type Msg = ChildMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<ChildMsg>,
        (): (),
    ) -> Result<(), ActorProcessingErr> {
        // Recorded before the event is sent: whoever sees the event finds the cell.
        self.cells.lock().unwrap().push((self.name, myself.get_cell()));
        let _ = self.events.send(format!("start {}", self.name));
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<ChildMsg>,
        (): &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let _ = self.events.send(format!("stop {}", self.name));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<ChildMsg>,
        msg: ChildMsg,
        (): &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            ChildMsg::Fail => panic!("child {} fails on purpose", self.name),
            ChildMsg::Exit => myself.stop(None),
            ChildMsg::Hang => {
                let _ = self.events.send(format!("hang {}", self.name));
                tokio::time::sleep(Duration::from_secs(3_600)).await;
            }
        }
        Ok(())
    }
}

/// The parent of a supervisor under test: reports how the supervisor ended.
struct Parent {
    events: UnboundedSender<String>,
}

impl Actor for Parent {
    type Msg = ();
    type State = ();
    type Arguments = Supervisor;

    async fn pre_start(
        &self,
        myself: ActorRef<()>,
        supervisor: Supervisor,
    ) -> Result<(), ActorProcessingErr> {
        Actor::spawn_linked(None, supervisor, (), myself.get_cell()).await?;
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        (): &mut (),
    ) -> Result<(), ActorProcessingErr> {
        let report = match event {
            SupervisionEvent::ActorFailed(_, error) => format!("supervisor failed: {error}"),
            SupervisionEvent::ActorTerminated(_, _, reason) => {
                format!("supervisor terminated: {reason:?}")
            }
            _ => return Ok(()),
        };
        let _ = self.events.send(report);
        Ok(())
    }
}

/// A supervisor of test children and what the test watches it with.
struct Harness {
    events: UnboundedReceiver<String>,
    tx: UnboundedSender<String>,
    cells: Cells,
}

impl Harness {
    fn new() -> Self {
        let (tx, events) = unbounded_channel();
        Self { events, tx, cells: Arc::default() }
    }

    /// A supervisor named `test` over `children` (name, restart type, shutdown timeout), its
    /// restart log on tokio's (paused) clock.
    fn supervisor(
        &self,
        strategy: Strategy,
        intensity: Intensity,
        children: &[(&'static str, RestartType, Duration)],
    ) -> Supervisor {
        let children = children
            .iter()
            .map(|&(name, restart, shutdown)| {
                let (events, cells) = (self.tx.clone(), Arc::clone(&self.cells));
                ChildSpec {
                    name,
                    restart,
                    shutdown,
                    start: Arc::new(move |sup: ActorCell| {
                        let child =
                            Child { name, events: events.clone(), cells: Arc::clone(&cells) };
                        Box::pin(async move {
                            Actor::spawn_linked(None, child, (), sup)
                                .await
                                .map(|(a, _)| a.get_cell())
                        })
                    }),
                }
            })
            .collect();
        let origin = Instant::now();
        Supervisor {
            name: "test",
            strategy,
            intensity,
            children,
            elapsed: Arc::new(move || origin.elapsed()),
        }
    }

    /// Starts a supervisor with no parent; returns once every child has started.
    async fn start(
        &mut self,
        strategy: Strategy,
        restart: &[(&'static str, RestartType)],
    ) -> (ActorRef<SupervisorMsg>, tokio::task::JoinHandle<()>) {
        let children: Vec<_> = restart.iter().map(|&(n, r)| (n, r, SECOND)).collect();
        let sup = self.supervisor(strategy, Intensity::new(3, SECOND * 5), &children);
        let started = Actor::spawn(None, sup, ()).await.unwrap();
        let expected: Vec<String> = restart.iter().map(|(n, _)| format!("start {n}")).collect();
        assert_eq!(self.next(expected.len()).await, expected);
        started
    }

    /// The next `n` events (a missing one fails the test once the paused clock has run a
    /// minute ahead with nothing else to do).
    async fn next(&mut self, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for _ in 0..n {
            let event = tokio::time::timeout(Duration::from_secs(60), self.events.recv()).await;
            out.push(event.expect("an event within a minute").expect("the channel is open"));
        }
        out
    }

    /// Every event sent so far, without waiting.
    fn sent(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            match self.events.try_recv() {
                Ok(e) => out.push(e),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => return out,
            }
        }
    }

    /// The current incarnation of `name`.
    fn cell(&self, name: &str) -> ActorCell {
        let cells = self.cells.lock().unwrap();
        cells.iter().rev().find(|(n, _)| *n == name).map(|(_, c)| c.clone()).unwrap()
    }

    /// How many times each of `names` was started.
    fn incarnations(&self, names: &[&str]) -> Vec<usize> {
        let cells = self.cells.lock().unwrap();
        names.iter().map(|name| cells.iter().filter(|(n, _)| n == name).count()).collect()
    }

    /// Sends `msg` to the current `name` and returns once that incarnation has ended: its
    /// exit is then queued at the supervisor, ahead of any message sent afterwards.
    async fn end(&self, name: &str, msg: ChildMsg) -> ActorCell {
        let cell = self.cell(name);
        cell.send_message(msg).unwrap();
        cell.wait(None).await.unwrap();
        cell
    }
}

const SECOND: Duration = Duration::from_secs(1);

/// Stops every child through the supervisor and returns once it has answered: a barrier
/// behind every exit already queued at the supervisor (exits are handled before messages).
async fn shutdown(sup: &ActorRef<SupervisorMsg>) {
    ractor::call!(sup, SupervisorMsg::Shutdown).unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_for_one_restarts_the_failed_child_alone() {
    let mut h = Harness::new();
    let (sup, join) =
        h.start(Strategy::OneForOne, &[("a", Permanent), ("b", Permanent), ("c", Permanent)]).await;
    let (a, c) = (h.cell("a").get_id(), h.cell("c").get_id());
    let failed = h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(1).await, ["start b"]);
    assert_ne!(h.cell("b").get_id(), failed.get_id(), "a new incarnation");
    assert_eq!((h.cell("a").get_id(), h.cell("c").get_id()), (a, c), "the others kept running");
    assert_eq!(h.cell("a").get_status(), ActorStatus::Running);
    assert_eq!(h.incarnations(&["a", "b", "c"]), [1, 2, 1]);
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop c", "stop b", "stop a"]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn one_for_all_stops_the_others_in_reverse_order_and_restarts_all_in_start_order() {
    let mut h = Harness::new();
    let (sup, join) =
        h.start(Strategy::OneForAll, &[("a", Permanent), ("b", Permanent), ("c", Permanent)]).await;
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(5).await, ["stop c", "stop a", "start a", "start b", "start c"]);
    assert_eq!(h.incarnations(&["a", "b", "c"]), [2, 2, 2]);
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop c", "stop b", "stop a"]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn rest_for_one_restarts_the_failed_child_and_those_started_after_it() {
    let mut h = Harness::new();
    let children = [("a", Permanent), ("b", Permanent), ("c", Permanent), ("d", Permanent)];
    let (sup, join) = h.start(Strategy::RestForOne, &children).await;
    let a = h.cell("a").get_id();
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(5).await, ["stop d", "stop c", "start b", "start c", "start d"]);
    assert_eq!(h.cell("a").get_id(), a);
    assert_eq!(h.incarnations(&["a", "b", "c", "d"]), [1, 2, 2, 2]);
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop d", "stop c", "stop b", "stop a"]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_temporary_child_that_fails_is_not_restarted() {
    let mut h = Harness::new();
    let (sup, join) = h.start(Strategy::OneForOne, &[("a", Permanent), ("t", Temporary)]).await;
    h.end("t", ChildMsg::Fail).await;
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop a"]);
    assert_eq!(h.incarnations(&["a", "t"]), [1, 1]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_temporary_child_is_not_restarted_by_a_sibling_one_for_all_restart() {
    let mut h = Harness::new();
    let (sup, join) = h.start(Strategy::OneForAll, &[("t", Temporary), ("b", Permanent)]).await;
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(2).await, ["stop t", "start b"]);
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop b"]);
    assert_eq!(h.incarnations(&["t", "b"]), [1, 2]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_that_stops_normally_is_not_restarted() {
    let mut h = Harness::new();
    let (sup, join) = h.start(Strategy::OneForOne, &[("a", Permanent), ("t", Transient)]).await;
    h.end("t", ChildMsg::Exit).await;
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop t", "stop a"]);
    assert_eq!(h.incarnations(&["a", "t"]), [1, 1]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_that_fails_is_restarted() {
    let mut h = Harness::new();
    let (sup, join) = h.start(Strategy::OneForOne, &[("a", Permanent), ("t", Transient)]).await;
    h.end("t", ChildMsg::Fail).await;
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["start t", "stop t", "stop a"]);
    assert_eq!(h.incarnations(&["a", "t"]), [1, 2]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_transient_child_killed_by_someone_else_is_restarted() {
    // A kill the supervisor did not order is an abnormal exit (OTP reason `killed`).
    let mut h = Harness::new();
    let (sup, join) = h.start(Strategy::OneForOne, &[("a", Permanent), ("t", Transient)]).await;
    let t = h.cell("t");
    t.kill();
    // A killed actor may report its exit after `wait` returns: wait for the restart itself.
    assert_eq!(h.next(1).await, ["start t"]);
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop t", "stop a"]);
    assert_eq!(h.incarnations(&["a", "t"]), [1, 2]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_permanent_child_that_stops_normally_is_restarted() {
    let mut h = Harness::new();
    let (sup, join) = h.start(Strategy::OneForOne, &[("a", Permanent), ("p", Permanent)]).await;
    h.end("p", ChildMsg::Exit).await;
    assert_eq!(h.next(2).await, ["stop p", "start p"]);
    shutdown(&sup).await;
    assert_eq!(h.sent(), ["stop p", "stop a"]);
    assert_eq!(h.incarnations(&["a", "p"]), [1, 2]);
    sup.stop(None);
    join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn beyond_its_intensity_the_supervisor_stops_its_children_and_fails() {
    let mut h = Harness::new();
    let children = [("a", Permanent, SECOND), ("b", Permanent, SECOND), ("c", Permanent, SECOND)];
    let sup = h.supervisor(Strategy::OneForOne, Intensity::new(2, SECOND * 10), &children);
    let (parent, parent_join) =
        Actor::spawn(None, Parent { events: h.tx.clone() }, sup).await.unwrap();
    assert_eq!(h.next(3).await, ["start a", "start b", "start c"]);
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(1).await, ["start b"]);
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(1).await, ["start b"]);
    // The third restart within ten seconds is one too many.
    h.end("b", ChildMsg::Fail).await;
    let events = h.next(3).await;
    assert_eq!(events[..2], ["stop c", "stop a"], "the others are stopped in reverse order");
    assert!(
        events[2].starts_with("supervisor failed: test: restart intensity exceeded after b exited"),
        "{}",
        events[2]
    );
    let supervisor = parent.get_children();
    assert!(supervisor.is_empty(), "the failed supervisor is gone from its parent");
    assert_eq!(h.incarnations(&["a", "b", "c"]), [1, 3, 1]);
    for name in ["a", "b", "c"] {
        assert_eq!(h.cell(name).get_status(), ActorStatus::Stopped, "{name}");
    }
    parent.stop(None);
    parent_join.await.unwrap();
    assert!(h.sent().is_empty(), "nothing restarted after the supervisor failed");
}

#[tokio::test(start_paused = true)]
async fn restarts_older_than_the_window_do_not_count() {
    let mut h = Harness::new();
    let sup = h.supervisor(
        Strategy::OneForOne,
        Intensity::new(1, SECOND * 10),
        &[("a", Permanent, SECOND), ("b", Permanent, SECOND)],
    );
    let (parent, parent_join) =
        Actor::spawn(None, Parent { events: h.tx.clone() }, sup).await.unwrap();
    assert_eq!(h.next(2).await, ["start a", "start b"]);
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(1).await, ["start b"]);
    tokio::time::advance(SECOND * 11).await;
    // The first restart is out of the window: this one is the only one in it.
    h.end("b", ChildMsg::Fail).await;
    assert_eq!(h.next(1).await, ["start b"]);
    // A second one within the window is one too many.
    h.end("b", ChildMsg::Fail).await;
    let events = h.next(2).await;
    assert_eq!(events[0], "stop a");
    assert!(
        events[1].starts_with("supervisor failed: test: restart intensity exceeded"),
        "{}",
        events[1]
    );
    assert_eq!(h.incarnations(&["a", "b"]), [1, 3]);
    parent.stop(None);
    parent_join.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_children_in_reverse_order_and_kills_one_that_overstays_its_timeout() {
    let mut h = Harness::new();
    let children =
        [("a", Permanent, SECOND), ("b", Permanent, SECOND), ("c", Permanent, SECOND * 2)];
    let sup = h.supervisor(Strategy::OneForOne, Intensity::default(), &children);
    let (sup, join) = Actor::spawn(None, sup, ()).await.unwrap();
    assert_eq!(h.next(3).await, ["start a", "start b", "start c"]);
    let c = h.cell("c");
    c.send_message(ChildMsg::Hang).unwrap();
    assert_eq!(h.next(1).await, ["hang c"]);

    let began = Instant::now();
    shutdown(&sup).await;
    // c never saw its stop request: it was killed after its own two seconds (no `stop c`,
    // which only a graceful stop reports); b and a then stopped gracefully, in that order.
    assert_eq!(began.elapsed(), SECOND * 2);
    c.wait(None).await.unwrap();
    assert_eq!(h.sent(), ["stop b", "stop a"]);
    for name in ["a", "b", "c"] {
        assert_eq!(h.cell(name).get_status(), ActorStatus::Stopped, "{name}");
    }
    // The exits it ordered are not failures: nothing is restarted, even after a while.
    tokio::time::advance(SECOND * 60).await;
    shutdown(&sup).await;
    assert!(h.sent().is_empty());
    assert_eq!(h.incarnations(&["a", "b", "c"]), [1, 1, 1]);
    assert_eq!(sup.get_status(), ActorStatus::Running);
    sup.stop(None);
    join.await.unwrap();
}
