//! The registry actor: owns the routing table and the tenants' lifecycle. A miss (the first
//! command to a governor, or one whose route was passivated or quarantined) comes here: it
//! opens the governor's slot and asks the domain supervisor to start its actor. Every tenant
//! state change comes here too, from the receipt actor once the tenant governor's receipt is
//! durable: the registry records it, releases the state timeouts the tenant held, and only
//! then answers the caller. Hits never come here: callers read the routes and the tenant
//! table (concurrent maps) without a message, as Elixir's `Registry` does.

use std::sync::{Arc, Mutex};

use govern_governors::audit;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::domains::Domains;
use crate::registry::{Key, Registry, RegistryMsg, holds};
use crate::schedule::Schedule;

/// The registry actor (see the module documentation).
#[derive(Clone)]
pub(crate) struct RegistryActor {
    pub(crate) domains: Arc<Domains>,
    pub(crate) tenants: Arc<Registry>,
    pub(crate) schedule: Arc<Schedule>,
    /// Where the other actors find the current incarnation.
    pub(crate) me: Arc<Mutex<Option<ActorRef<RegistryMsg>>>>,
}

impl Actor for RegistryActor {
    type Msg = RegistryMsg;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        myself: ActorRef<RegistryMsg>,
        (): (),
    ) -> Result<(), ActorProcessingErr> {
        *self.me.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(myself);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<RegistryMsg>,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        *self.me.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<RegistryMsg>,
        msg: RegistryMsg,
        _state: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RegistryMsg::Route { kind, key, envelope } => {
                self.domains.by_kind(kind).route(key, envelope);
            }
            RegistryMsg::TenantCommitted { tenant, state, reply, admission } => {
                self.tenants.set_state(&tenant, state);
                // Timeouts held while the tenant did not admit them go back in the schedule,
                // which delivers or drops them by the new state.
                if !holds(Some(state)) {
                    self.schedule.release(&tenant);
                }
                if let Some((tx, accepted)) = reply {
                    let _ = tx.send(Ok(accepted));
                }
                drop(admission);
            }
            RegistryMsg::Forget { kind, slots } => self.domains.by_kind(kind).forget(slots),
            RegistryMsg::Audit { tenant, command } => {
                let Some(admission) = self.tenants.admit_record(&tenant) else {
                    tracing::warn!(tenant_id = %tenant, "audit record for an unknown tenant dropped");
                    return Ok(());
                };
                let reason = match &command {
                    audit::Command::RecordQuarantine { .. } => "governor quarantined",
                    audit::Command::RecordRefusals { .. } | audit::Command::RecordChecks { .. } => {
                        "checks"
                    }
                    audit::Command::RecordCatalog { .. } => "catalog reloaded",
                    audit::Command::RecordWebhook { .. } => "payment provider webhook",
                    audit::Command::RecordInvoice { .. } => "billing period closed",
                    audit::Command::FinalizeInvoice { .. } => "invoice finalized",
                    audit::Command::RecordSla { .. } => "sla monitor",
                    audit::Command::RecordNotification { .. } => "outbound notification",
                };
                let request = crate::governor::runtime_request(command, reason);
                let key = Key { resource: crate::registry::tenant_resource(&tenant), tenant };
                self.domains.get::<audit::Trail>().record(key, request, admission);
            }
        }
        Ok(())
    }
}
