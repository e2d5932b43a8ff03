//! The runtime's table of domains, indexed by governor kind: typed access for typed handles
//! ([`Domains::get`]), kind-erased access ([`AnyDomain`]) for work chosen by a kind at run
//! time (a miss the registry routes, a due timeout, a receipt being re-armed) or done for
//! each kind in turn. The table is built by [`crate::hosted::dispatch`], so a ninth kind
//! needs no edit here.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use govern_governors::{ArgError, Args, CommandSpec, GovernorKind, StateTimeout, Timestamp};
use ractor::{Actor, ActorCell};

use crate::domain::{Domain, DomainSupervisor};
use crate::governor::{CrashPoint, Envelope, Slot};
use crate::hosted::{Hosted, KindVisitor, dispatch};
use crate::registry::{Admission, Key};
use crate::supervisor::policy::RestartType;
use crate::supervisor::{ChildSpec, StartFn};

/// A future a kind-erased domain returns.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The eight domains of a runtime, one per kind, in [`GovernorKind::ALL`] order.
pub struct Domains {
    table: Vec<(Arc<dyn AnyDomain>, Arc<dyn Any + Send + Sync>)>,
}

impl std::fmt::Debug for Domains {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Domains")
    }
}

/// Builds one kind's domain.
pub(crate) trait DomainFactory {
    fn make<G: Hosted>(&self) -> Domain<G>;
}

struct Build<'a, F>(&'a F);

impl<F: DomainFactory> KindVisitor for Build<'_, F> {
    type Out = (Arc<dyn AnyDomain>, Arc<dyn Any + Send + Sync>);
    fn visit<G: Hosted>(self) -> Self::Out {
        let domain: Arc<Domain<G>> = Arc::new(self.0.make::<G>());
        (Arc::clone(&domain) as Arc<dyn AnyDomain>, domain as Arc<dyn Any + Send + Sync>)
    }
}

impl Domains {
    pub(crate) fn new(factory: &impl DomainFactory) -> Self {
        let table = GovernorKind::ALL.into_iter().map(|k| dispatch(k, Build(factory))).collect();
        Self { table }
    }

    fn index(kind: GovernorKind) -> usize {
        GovernorKind::ALL.iter().position(|k| *k == kind).unwrap_or(0)
    }

    /// The domain of `kind`, kind-erased.
    pub(crate) fn by_kind(&self, kind: GovernorKind) -> &dyn AnyDomain {
        match self.table.get(Self::index(kind)) {
            Some((domain, _)) => &**domain,
            None => unreachable_kind(kind),
        }
    }

    /// The domain of `G`.
    pub(crate) fn get<G: Hosted>(&self) -> &Domain<G> {
        let typed = self.table.get(Self::index(G::KIND)).map(|(_, any)| &**any);
        match typed.and_then(|any| any.downcast_ref::<Domain<G>>()) {
            Some(domain) => domain,
            None => unreachable_kind(G::KIND),
        }
    }

    /// Every domain, in kind order, shared.
    pub(crate) fn all_shared(&self) -> impl Iterator<Item = Arc<dyn AnyDomain>> + '_ {
        self.table.iter().map(|(d, _)| Arc::clone(d))
    }

    /// Every domain, in kind order.
    pub(crate) fn all(&self) -> impl Iterator<Item = &dyn AnyDomain> {
        self.table.iter().map(|(d, _)| &**d)
    }
}

#[cold]
fn unreachable_kind(kind: GovernorKind) -> ! {
    // `Domains::new` builds one entry per kind of `GovernorKind::ALL`, each of its kind's type.
    panic!("the domain table has no {kind} domain")
}

/// A domain of any kind.
#[cfg_attr(
    not(feature = "testing"),
    allow(dead_code, reason = "used by the testing feature's hooks")
)]
pub(crate) trait AnyDomain: Send + Sync {
    fn resident(&self) -> usize;
    fn live_actors(&self) -> usize;
    fn incarnations(&self) -> u64;
    fn quarantines(&self) -> u64;
    fn passivate_idle(&self, idle_for: Duration) -> BoxFuture<'_, usize>;
    fn fail_resident(&self, reason: &str);
    fn crash_supervisor(&self) -> bool;
    /// Arms `key`'s state timeout: the command called `command` with `args`, due `at` (at
    /// start, from the runtime's start state).
    fn arm_named(
        &self,
        key: &Key,
        at: Timestamp,
        command: &str,
        args: &Args,
    ) -> Result<(), ArgError>;
    fn deliver_timeout(
        &self,
        key: Key,
        generation: u64,
        admission: Admission,
    ) -> BoxFuture<'_, bool>;
    fn drop_timeout(&self, key: &Key, generation: u64);
    fn inject_crash(
        &self,
        key: Key,
        point: CrashPoint,
    ) -> BoxFuture<'_, Result<(), crate::Refusal>>;
    /// The registry actor routes a miss (the envelope is this kind's).
    fn route(&self, key: Key, envelope: Box<dyn Any + Send>);
    /// The registry actor drops passivated routes (this kind's slots and a reply port).
    fn forget(&self, slots: Box<dyn Any + Send>);
    /// The root's child spec of this domain's supervisor.
    fn child_spec(self: Arc<Self>, shutdown: Duration) -> ChildSpec;
}

impl<G: Hosted> AnyDomain for Domain<G> {
    fn resident(&self) -> usize {
        Domain::resident(self)
    }
    fn live_actors(&self) -> usize {
        Domain::live_actors(self)
    }
    fn incarnations(&self) -> u64 {
        Domain::incarnations(self)
    }
    fn quarantines(&self) -> u64 {
        Domain::quarantines(self)
    }
    fn passivate_idle(&self, idle_for: Duration) -> BoxFuture<'_, usize> {
        Box::pin(Domain::passivate_idle(self, idle_for))
    }
    fn fail_resident(&self, reason: &str) {
        Domain::fail_resident(self, reason);
    }
    fn crash_supervisor(&self) -> bool {
        Domain::crash_supervisor(self)
    }
    fn arm_named(
        &self,
        key: &Key,
        at: Timestamp,
        command: &str,
        args: &Args,
    ) -> Result<(), ArgError> {
        let command = <G::Command as CommandSpec>::parse(command, args)?;
        self.env.timers.arm(key, Some(StateTimeout { at, command }));
        Ok(())
    }
    fn deliver_timeout(
        &self,
        key: Key,
        generation: u64,
        admission: Admission,
    ) -> BoxFuture<'_, bool> {
        Box::pin(Domain::deliver_timeout(self, key, generation, admission))
    }
    fn drop_timeout(&self, key: &Key, generation: u64) {
        Domain::drop_timeout(self, key, generation);
    }
    fn inject_crash(
        &self,
        key: Key,
        point: CrashPoint,
    ) -> BoxFuture<'_, Result<(), crate::Refusal>> {
        Box::pin(Domain::inject_crash(self, key, point))
    }
    fn route(&self, key: Key, envelope: Box<dyn Any + Send>) {
        // Only this domain's `submit` boxes envelopes for this kind.
        if let Ok(envelope) = envelope.downcast::<Envelope<G>>() {
            Domain::route(self, key, *envelope);
        }
    }
    fn forget(&self, slots: Box<dyn Any + Send>) {
        if let Ok(slots) = slots.downcast::<(Vec<Arc<Slot<G>>>, ractor::RpcReplyPort<()>)>() {
            let (slots, reply) = *slots;
            Domain::forget(self, &slots);
            let _ = reply.send(());
        }
    }
    fn child_spec(self: Arc<Self>, shutdown: Duration) -> ChildSpec {
        let start: StartFn = Arc::new(move |sup: ActorCell| {
            let domain = Arc::clone(&self);
            Box::pin(async move {
                Actor::spawn_linked(None, DomainSupervisor { domain }, (), sup)
                    .await
                    .map(|(a, _)| a.get_cell())
            })
        });
        // A domain supervisor stops its governors before itself: give it room for theirs.
        ChildSpec {
            name: G::KIND.name(),
            restart: RestartType::Permanent,
            shutdown: shutdown * 2,
            start,
        }
    }
}
