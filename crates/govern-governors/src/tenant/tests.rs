//! Tenant walks: provisioning, suspension, degradation, maintenance windows, guards, parsing.

use super::{Command as C, MAINTENANCE_MINUTES_DEFAULT, ResourceQuota, State, Tenant};
use crate::args::{ArgProblem, Args, CommandSpec};
use crate::limits::MAINTENANCE_MINUTES_MAX;
use crate::testing::{T0_MS, assert_replay_tracks_live, assert_round_trip, transcript};
use crate::time::{Ctx, DAY_MS, MINUTE_MS, Timestamp};
use crate::{Governor, StateSpec, StateTimeout};

const QUOTA: ResourceQuota =
    ResourceQuota { storage_gb: 100, compute_units: 8, bandwidth_mbps: 1_000 };

fn provision() -> C {
    C::ProvisionTenant { quota: QUOTA }
}

fn args(pairs: &[(&str, &str)]) -> Args {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

#[test]
fn main_walk_through_every_state() {
    let mut t = Tenant::default();
    let bigger = ResourceQuota { storage_gb: 500, ..QUOTA };
    let steps = [
        (0, provision()),
        (0, C::ProvisionTenant { quota: bigger }),
        (1, C::ActivateTenant),
        (2, C::MarkDegraded),
        (3, C::ActivateTenant),
        (4, C::SuspendTenant),
        (5, C::ActivateTenant),
        (6, C::ScheduleMaintenance { duration_minutes: None }),
        (6, C::EndMaintenance),
        (7, C::MarkDegraded),
        (8, C::ScheduleMaintenance { duration_minutes: Some(30) }),
        (8, C::EndMaintenance),
        (9, C::MarkDegraded),
        (10, C::SuspendTenant),
        (11, C::DeprovisionTenant),
    ];
    assert_eq!(
        transcript(&mut t, &steps),
        "provisioning --provision_tenant--> provisioning
provisioning --provision_tenant--> provisioning
provisioning --activate_tenant--> active
active --mark_degraded--> degraded
degraded --activate_tenant--> active
active --suspend_tenant--> suspended
suspended --activate_tenant--> active
active --schedule_maintenance--> maintenance
maintenance --end_maintenance--> active
active --mark_degraded--> degraded
degraded --schedule_maintenance--> maintenance
maintenance --end_maintenance--> active
active --mark_degraded--> degraded
degraded --suspend_tenant--> suspended
suspended --deprovision_tenant--> deprovisioned
"
    );
    assert_eq!(t.quota(), Some(bigger));
    assert_eq!(t.activated_at(), Some(Timestamp(T0_MS + DAY_MS)));
    assert_eq!(t.deprovisioned_at(), Some(Timestamp(T0_MS + 11 * DAY_MS)));
    assert_eq!(t.window_end(), None);
    assert!(t.state().is_terminal());
}

#[test]
fn activation_needs_a_quota() {
    let mut t = Tenant::default();
    assert_eq!(
        transcript(&mut t, &[(0, C::ActivateTenant)]),
        "provisioning --activate_tenant--> rejected precondition_failed: activate_tenant refused: provision_tenant must come first\n"
    );
}

#[test]
fn a_suspended_tenant_cannot_be_marked_degraded() {
    let mut t = Tenant::default();
    let out = transcript(
        &mut t,
        &[(0, provision()), (0, C::ActivateTenant), (1, C::SuspendTenant), (2, C::MarkDegraded)],
    );
    assert_eq!(
        out.lines().last(),
        Some(
            "suspended --mark_degraded--> rejected invalid_transition: mark_degraded is not allowed in state suspended of the tenant governor"
        )
    );
}

#[test]
fn the_quota_is_fixed_once_active_and_nothing_leaves_deprovisioned() {
    let mut t = Tenant::default();
    let out = transcript(
        &mut t,
        &[
            (0, provision()),
            (0, C::ActivateTenant),
            (0, provision()),
            (1, C::DeprovisionTenant),
            (2, C::ActivateTenant),
        ],
    );
    assert_eq!(
        out,
        "provisioning --provision_tenant--> provisioning
provisioning --activate_tenant--> active
active --provision_tenant--> rejected invalid_transition: provision_tenant is not allowed in state active of the tenant governor
active --deprovision_tenant--> deprovisioned
deprovisioned --activate_tenant--> rejected invalid_transition: activate_tenant is not allowed in state deprovisioned of the tenant governor
"
    );
}

#[test]
fn maintenance_arms_its_end_and_leaving_disarms_it() {
    let mut t = Tenant::default();
    for c in [provision(), C::ActivateTenant] {
        t.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
        assert_eq!(t.state_timeout(), None);
    }
    t.apply(&C::ScheduleMaintenance { duration_minutes: None }, &Ctx::at_ms(T0_MS + DAY_MS))
        .unwrap();
    let at = Timestamp(T0_MS + DAY_MS + u64::from(MAINTENANCE_MINUTES_DEFAULT) * MINUTE_MS);
    assert_eq!(t.window_end(), Some(at));
    assert_eq!(t.state_timeout(), Some(StateTimeout { at, command: C::EndMaintenance }));
    // Ended early, before the window closes.
    t.apply(&C::EndMaintenance, &Ctx::at_ms(T0_MS + DAY_MS + MINUTE_MS)).unwrap();
    assert_eq!(t.state(), State::Active);
    assert_eq!(t.state_timeout(), None);
    assert_eq!(t.window_end(), None);
}

#[test]
fn the_maintenance_timeout_fires_at_the_window_end() {
    let mut t = Tenant::default();
    for c in [
        provision(),
        C::ActivateTenant,
        C::MarkDegraded,
        C::ScheduleMaintenance { duration_minutes: Some(90) },
    ] {
        t.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
    }
    let timeout = t.state_timeout().unwrap();
    assert_eq!(
        timeout,
        StateTimeout { at: Timestamp(T0_MS + 90 * MINUTE_MS), command: C::EndMaintenance }
    );
    let tr = t.apply(&timeout.command, &Ctx { now: timeout.at }).unwrap();
    assert_eq!((tr.from, tr.to), (State::Maintenance, State::Active));
    assert_eq!(t.state_timeout(), None);
}

#[test]
fn deprovisioning_during_maintenance_disarms_the_window() {
    let mut t = Tenant::default();
    for c in [
        provision(),
        C::ActivateTenant,
        C::ScheduleMaintenance { duration_minutes: Some(5) },
        C::DeprovisionTenant,
    ] {
        t.apply(&c, &Ctx::at_ms(T0_MS)).unwrap();
    }
    assert_eq!(t.state(), State::Deprovisioned);
    assert_eq!(t.state_timeout(), None);
    assert_eq!(t.window_end(), None);
}

#[test]
fn parse_errors_name_the_argument_and_problem() {
    let full = [("storage_gb", "100"), ("compute_units", "8"), ("bandwidth_mbps", "1000")];
    assert_eq!(C::parse("provision_tenant", &args(&full)), Ok(provision()));
    for name in ["storage_gb", "compute_units", "bandwidth_mbps"] {
        let mut a = args(&full);
        a.insert(name.into(), "0".into());
        let err = C::parse("provision_tenant", &a).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "provision_tenant: argument `{name}` = \"0\": out of range; expected a quota greater than zero"
            )
        );
        a.insert(name.into(), "-1".into());
        let err = C::parse("provision_tenant", &a).unwrap_err();
        assert_eq!(err.problem, ArgProblem::Malformed { expected: "a quota greater than zero" });
        a.remove(name);
        let err = C::parse("provision_tenant", &a).unwrap_err();
        assert_eq!(err.to_string(), format!("provision_tenant: argument `{name}` missing"));
    }
    let mut a = args(&full);
    a.insert("region".into(), "eu".into());
    let err = C::parse("provision_tenant", &a).unwrap_err();
    assert_eq!(
        err.to_string(),
        "provision_tenant: argument `region` not an argument of this command"
    );

    for minutes in ["0", "10081"] {
        let err =
            C::parse("schedule_maintenance", &args(&[("duration_minutes", minutes)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "schedule_maintenance: argument `duration_minutes` = \"{minutes}\": out of range; expected 1 to 10080 minutes"
            )
        );
    }
    let err =
        C::parse("schedule_maintenance", &args(&[("duration_minutes", "an hour")])).unwrap_err();
    assert_eq!(err.problem, ArgProblem::Malformed { expected: "1 to 10080 minutes" });
    let max = MAINTENANCE_MINUTES_MAX.to_string();
    assert_eq!(
        C::parse("schedule_maintenance", &args(&[("duration_minutes", &max)])),
        Ok(C::ScheduleMaintenance { duration_minutes: Some(MAINTENANCE_MINUTES_MAX) })
    );
    assert_eq!(
        C::parse("schedule_maintenance", &Args::new()),
        Ok(C::ScheduleMaintenance { duration_minutes: None })
    );

    let err = C::parse("end_maintenance", &args(&[("duration_minutes", "5")])).unwrap_err();
    assert_eq!(err.argument, "duration_minutes");
    assert_eq!(err.problem, ArgProblem::Unexpected);
    let err = C::parse("delete_tenant", &Args::new()).unwrap_err();
    assert_eq!(err.argument, "command");
    assert!(matches!(err.problem, ArgProblem::UnknownCommand { .. }));
}

#[test]
fn every_sample_round_trips_through_its_args() {
    let samples = C::samples(&Ctx::at_ms(T0_MS));
    for name in C::NAMES {
        assert!(samples.iter().any(|c| c.name() == *name), "{name} has no sample");
    }
    for c in samples {
        assert_round_trip(&c);
    }
    assert_round_trip(&C::ScheduleMaintenance { duration_minutes: None });
    assert_round_trip(&C::ScheduleMaintenance { duration_minutes: Some(1) });
    assert_round_trip(&C::ProvisionTenant {
        quota: ResourceQuota { storage_gb: u64::MAX, compute_units: 1, bandwidth_mbps: 10 },
    });
}

#[test]
fn replaying_the_record_rebuilds_the_machine() {
    let steps = [
        (0, provision()),
        (1, C::ActivateTenant),
        (2, C::MarkDegraded),
        (3, C::ScheduleMaintenance { duration_minutes: None }),
    ];
    assert_replay_tracks_live::<Tenant>(&steps);
}
