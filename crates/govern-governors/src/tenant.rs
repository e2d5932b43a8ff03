//! Tenant governor: the tenant itself, from provisioning through service to deprovisioning.
//!
//! A tenant is provisioned with a resource quota (repeatably, while still provisioning), then
//! activated. An active tenant may be suspended, marked degraded, or put into a maintenance
//! window that closes by itself at its end (default 60 minutes, the seed's one-hour window).
//! The seed's arrow `suspended → degraded` is not adopted: it would silently lift a
//! suspension, so a suspended tenant must be re-activated first. Deprovisioning is final.

use crate::args::{ArgError, ArgReader, Args, CommandSpec};
use crate::codec::{StateCodec, StateCodecError, StateReader, StateWriter};
use crate::governor::{Governor, StateTimeout, Transition};
use crate::kind::GovernorKind;
use crate::limits::MAINTENANCE_MINUTES_MAX;
use crate::rejection::Rejection;
use crate::time::{Ctx, MINUTE_MS, Timestamp};

/// Length of a maintenance window scheduled without `duration_minutes`.
pub const MAINTENANCE_MINUTES_DEFAULT: u32 = 60;

const _: () = assert!(
    MAINTENANCE_MINUTES_DEFAULT >= 1 && MAINTENANCE_MINUTES_DEFAULT <= MAINTENANCE_MINUTES_MAX
);

crate::define_states! {
    /// Where a tenant is in its life.
    pub enum State {
        /// Created; the quota is set here, then the tenant is activated.
        Provisioning => "provisioning",
        /// In service.
        Active => "active",
        /// Service withheld by the operator.
        Suspended => "suspended",
        /// In service with reduced capacity or health.
        Degraded => "degraded",
        /// In a maintenance window until `window_end`.
        Maintenance => "maintenance",
        /// Removed; kept for the record only.
        Deprovisioned => "deprovisioned",
    }
    terminal: [Deprovisioned]
}

/// The resources a tenant is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ResourceQuota {
    /// Storage in gigabytes.
    pub storage_gb: u64,
    /// Compute units.
    pub compute_units: u64,
    /// Network bandwidth in megabits per second.
    pub bandwidth_mbps: u64,
}

/// What a quota argument must be, for the message.
const QUOTA_EXPECTED: &str = "a quota greater than zero";

/// What a maintenance duration must be, for the message.
const DURATION_EXPECTED: &str = "1 to 10080 minutes";

/// What can be asked of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Sets (or, while provisioning, replaces) the tenant's resource quota.
    ProvisionTenant {
        /// The quota; every resource greater than zero.
        quota: ResourceQuota,
    },
    /// Puts the tenant in service: first activation, end of a suspension, or recovery.
    ActivateTenant,
    /// Withholds service.
    SuspendTenant,
    /// Records that service runs degraded.
    MarkDegraded,
    /// Opens a maintenance window of `duration_minutes` (default [`MAINTENANCE_MINUTES_DEFAULT`]).
    ScheduleMaintenance {
        /// Window length in minutes, 1 to [`MAINTENANCE_MINUTES_MAX`]; `None` means the default.
        duration_minutes: Option<u32>,
    },
    /// Closes the maintenance window, early or by the state timeout at `window_end`.
    EndMaintenance,
    /// Removes the tenant for good.
    DeprovisionTenant,
}

impl CommandSpec for Command {
    const NAMES: &'static [&'static str] = &[
        "provision_tenant",
        "activate_tenant",
        "suspend_tenant",
        "mark_degraded",
        "schedule_maintenance",
        "end_maintenance",
        "deprovision_tenant",
    ];

    fn name(&self) -> &'static str {
        match self {
            Self::ProvisionTenant { .. } => "provision_tenant",
            Self::ActivateTenant => "activate_tenant",
            Self::SuspendTenant => "suspend_tenant",
            Self::MarkDegraded => "mark_degraded",
            Self::ScheduleMaintenance { .. } => "schedule_maintenance",
            Self::EndMaintenance => "end_maintenance",
            Self::DeprovisionTenant => "deprovision_tenant",
        }
    }

    fn args(&self) -> Args {
        let mut a = Args::new();
        match self {
            Self::ProvisionTenant { quota } => {
                a.insert("storage_gb".into(), quota.storage_gb.to_string());
                a.insert("compute_units".into(), quota.compute_units.to_string());
                a.insert("bandwidth_mbps".into(), quota.bandwidth_mbps.to_string());
            }
            Self::ScheduleMaintenance { duration_minutes: Some(minutes) } => {
                a.insert("duration_minutes".into(), minutes.to_string());
            }
            Self::ScheduleMaintenance { duration_minutes: None }
            | Self::ActivateTenant
            | Self::SuspendTenant
            | Self::MarkDegraded
            | Self::EndMaintenance
            | Self::DeprovisionTenant => {}
        }
        a
    }

    fn parse(name: &str, args: &Args) -> Result<Self, ArgError> {
        let mut r = ArgReader::for_command(name, Self::NAMES, args)?;
        let cmd = match r.command() {
            "provision_tenant" => Self::ProvisionTenant {
                quota: ResourceQuota {
                    storage_gb: r.positive_u64("storage_gb", QUOTA_EXPECTED)?,
                    compute_units: r.positive_u64("compute_units", QUOTA_EXPECTED)?,
                    bandwidth_mbps: r.positive_u64("bandwidth_mbps", QUOTA_EXPECTED)?,
                },
            },
            "activate_tenant" => Self::ActivateTenant,
            "suspend_tenant" => Self::SuspendTenant,
            "mark_degraded" => Self::MarkDegraded,
            "schedule_maintenance" => Self::ScheduleMaintenance {
                duration_minutes: r.optional_u32_in(
                    "duration_minutes",
                    1,
                    MAINTENANCE_MINUTES_MAX,
                    DURATION_EXPECTED,
                )?,
            },
            "end_maintenance" => Self::EndMaintenance,
            _ => Self::DeprovisionTenant,
        };
        r.finish()?;
        Ok(cmd)
    }

    fn samples(_ctx: &Ctx) -> Vec<Self> {
        vec![
            Self::ProvisionTenant {
                quota: ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 },
            },
            Self::ActivateTenant,
            Self::SuspendTenant,
            Self::MarkDegraded,
            Self::ScheduleMaintenance { duration_minutes: Some(120) },
            Self::ScheduleMaintenance { duration_minutes: None },
            Self::EndMaintenance,
            Self::DeprovisionTenant,
        ]
    }
}

/// One tenant: its state and the data that travels with it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tenant {
    state: StateCell,
    /// The resource quota; set by `provision_tenant`, which activation requires.
    quota: Option<ResourceQuota>,
    /// When the current maintenance window closes; arms the end-of-maintenance timeout.
    window_end: Option<Timestamp>,
    /// When the tenant was first put in service.
    activated_at: Option<Timestamp>,
    /// When the tenant was removed.
    deprovisioned_at: Option<Timestamp>,
}

impl Tenant {
    /// The resource quota, once provisioned.
    #[must_use]
    pub fn quota(&self) -> Option<ResourceQuota> {
        self.quota
    }

    /// When the current maintenance window closes, while in maintenance.
    #[must_use]
    pub fn window_end(&self) -> Option<Timestamp> {
        self.window_end
    }

    /// When the tenant was first activated.
    #[must_use]
    pub fn activated_at(&self) -> Option<Timestamp> {
        self.activated_at
    }

    /// When the tenant was deprovisioned.
    #[must_use]
    pub fn deprovisioned_at(&self) -> Option<Timestamp> {
        self.deprovisioned_at
    }
}

impl Governor for Tenant {
    const KIND: GovernorKind = GovernorKind::Tenant;
    type State = State;
    type Command = Command;

    fn state(&self) -> State {
        self.state.0
    }

    fn decide(&self, command: &Command, _ctx: &Ctx) -> Result<Transition<State>, Rejection> {
        use Command as C;
        use State as S;
        let from = self.state.0;
        let to = match (from, command) {
            (S::Provisioning, C::ProvisionTenant { .. }) => S::Provisioning,
            (S::Provisioning, C::ActivateTenant) => {
                if self.quota.is_none() {
                    return Err(Rejection::unmet(
                        "activate_tenant",
                        "provision_tenant must come first",
                    ));
                }
                S::Active
            }
            (S::Suspended | S::Degraded, C::ActivateTenant) => S::Active,
            (S::Active | S::Degraded, C::SuspendTenant) => S::Suspended,
            (S::Active, C::MarkDegraded) => S::Degraded,
            (S::Active | S::Degraded, C::ScheduleMaintenance { .. }) => S::Maintenance,
            (S::Maintenance, C::EndMaintenance) => S::Active,
            (
                S::Provisioning | S::Active | S::Suspended | S::Degraded | S::Maintenance,
                C::DeprovisionTenant,
            ) => S::Deprovisioned,
            (
                S::Provisioning
                | S::Active
                | S::Suspended
                | S::Degraded
                | S::Maintenance
                | S::Deprovisioned,
                _,
            ) => return Err(self.invalid(command)),
        };
        Ok(Transition { from, to })
    }

    fn evolve(&mut self, command: &Command, to: State, at: Timestamp) {
        match command {
            Command::ProvisionTenant { quota } => {
                self.quota = Some(*quota);
            }
            Command::ActivateTenant => {
                self.activated_at.get_or_insert(at);
            }
            Command::ScheduleMaintenance { duration_minutes } => {
                let minutes = duration_minutes.unwrap_or(MAINTENANCE_MINUTES_DEFAULT);
                self.window_end = Some(at.plus_ms(u64::from(minutes) * MINUTE_MS));
            }
            Command::DeprovisionTenant => {
                self.deprovisioned_at = Some(at);
            }
            Command::SuspendTenant | Command::MarkDegraded | Command::EndMaintenance => {}
        }
        // A window exists only while in maintenance.
        if to != State::Maintenance {
            self.window_end = None;
        }
        self.state.0 = to;
    }

    fn state_timeout(&self) -> Option<StateTimeout<Command>> {
        match self.state.0 {
            State::Maintenance => {
                self.window_end.map(|at| StateTimeout { at, command: Command::EndMaintenance })
            }
            State::Provisioning
            | State::Active
            | State::Suspended
            | State::Degraded
            | State::Deprovisioned => None,
        }
    }
}

impl StateCodec for Tenant {
    const STATE_VERSION: u8 = 1;

    fn encode_fields(&self, w: &mut StateWriter) {
        w.state(self.state.0);
        w.option(self.quota.as_ref(), |w, q| {
            w.u64(q.storage_gb);
            w.u64(q.compute_units);
            w.u64(q.bandwidth_mbps);
        });
        w.opt_timestamp(self.window_end);
        w.opt_timestamp(self.activated_at);
        w.opt_timestamp(self.deprovisioned_at);
    }

    fn decode_fields(r: &mut StateReader<'_>) -> Result<Self, StateCodecError> {
        Ok(Self {
            state: StateCell(r.state()?),
            quota: r.option("quota", |r| {
                Ok(ResourceQuota {
                    storage_gb: r.u64("quota")?,
                    compute_units: r.u64("quota")?,
                    bandwidth_mbps: r.u64("quota")?,
                })
            })?,
            window_end: r.opt_timestamp("window_end")?,
            activated_at: r.opt_timestamp("activated_at")?,
            deprovisioned_at: r.opt_timestamp("deprovisioned_at")?,
        })
    }
}

#[cfg(test)]
mod tests;
