//! Plan changes through the runtime (`simulate_plan_change`, `apply_plan_change`): the
//! inputs gathered from usage, compliance audits and the subscription's last change; the
//! refusal typed with every failing gate's reason; the receipted `change_plan`, its cooldown
//! and its rollback.

use govern_governors::GovernorKind;
use govern_governors::compliance::{Command as AuditCommand, Domain};
use govern_governors::subscription::{Command as SubCommand, PlanChangeKind};
use govern_plans::{ChangeKind, Gate, Verdict};
use govern_runtime::{CommandError, PlanChangeError, Refusal};

use super::{DAY, builder, quota, resource, tenant};

fn pricing() -> govern_plans::Catalog {
    govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap()
}

fn verdict(s: &govern_plans::Simulation, g: Gate) -> Verdict {
    s.gates.iter().find(|r| r.gate == g).unwrap().verdict
}

#[tokio::test(start_paused = true)]
async fn a_downgrade_over_the_targets_limits_is_refused_naming_each_and_an_upgrade_waits_for_its_gates()
 {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let sub_id = resource("sub-1");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &sub_id);
    sub.activate(Some("pro"), "signed up").await.unwrap();
    assert_eq!(h.sole_subscription(&acme).unwrap(), sub_id);
    h.record_usage(&acme, "reports", 50, "e1", h.now()).await.unwrap();

    // Pro -> Starter: a downgrade; 50 reports this month pass Starter's 10.
    let s = h.simulate_plan_change(&acme, &sub_id, "starter").await.unwrap();
    assert_eq!(s.kind(), Some(ChangeKind::Downgrade));
    assert_eq!(verdict(&s, Gate::ResourceAvailability), Verdict::Fail);
    assert_eq!(verdict(&s, Gate::SlaCompliance), Verdict::Skip, "no SLA data yet");
    let before = h.verify().unwrap().next_seq;
    let err = h.apply_plan_change(&acme, &sub_id, "starter", "cheaper").await.unwrap_err();
    let PlanChangeError::Refused { reasons, .. } = err else { panic!("{err:?}") };
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert!(reasons[0].contains("reports usage 50 > limit 10"), "{reasons:?}");
    assert_eq!(h.verify().unwrap().next_seq, before, "a refused change writes nothing");

    // Pro -> Enterprise: Enterprise requires evidence, and no audit says the tenant complies.
    let err = h.apply_plan_change(&acme, &sub_id, "pricing-enterprise", "grow").await.unwrap_err();
    let PlanChangeError::Refused { simulation, .. } = err else { panic!("{err:?}") };
    assert_eq!(verdict(&simulation, Gate::CertificationValid), Verdict::Fail);
    let audit = h.governor::<govern_governors::compliance::Audit>(&acme, &resource("soc2"));
    audit.send(AuditCommand::StartAudit { domain: Domain::Soc2 }, "yearly").await.unwrap();
    audit.send(AuditCommand::BeginReview, "review").await.unwrap();
    audit.send(AuditCommand::MarkCompliant, "passed").await.unwrap();
    let applied = h.apply_plan_change(&acme, &sub_id, "pricing-enterprise", "grow").await.unwrap();
    assert_eq!((applied.accepted.from, applied.accepted.to), ("active", "active"));
    assert_eq!(h.meter_usage(&acme).plans, ["pricing-enterprise"], "checks see the new plan");
    let last = h.receipts(&acme, Some(GovernorKind::Subscription), None).unwrap();
    let last = &last.last().unwrap().body;
    assert_eq!(last.command, "change_plan");
    assert_eq!(last.args.get("previous").map(String::as_str), Some("pro"));
    assert_eq!(last.args.get("kind").map(String::as_str), Some("upgrade"));

    // A host cannot send change_plan around the gates.
    let raw = sub
        .send(
            SubCommand::ChangePlan {
                plan: "starter".into(),
                previous: "pricing-enterprise".into(),
                kind: PlanChangeKind::Downgrade,
            },
            "around the gates",
        )
        .await
        .unwrap_err();
    assert_eq!(raw, CommandError::Refused(Refusal::Reserved { command: "change_plan" }));

    // Rollback restores Pro, within its window.
    assert_eq!(
        sub.send(SubCommand::RollbackPlan { plan: "pro".into() }, "oops").await.unwrap().to,
        "active"
    );
    assert_eq!(h.meter_usage(&acme).plans, ["pro"]);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_cooldown_counts_from_the_subscriptions_last_plan_change() {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let sub_id = resource("sub-1");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    h.subscription(&acme, &sub_id).activate(Some("starter"), "signed up").await.unwrap();
    let audit = h.governor::<govern_governors::compliance::Audit>(&acme, &resource("soc2"));
    audit.send(AuditCommand::StartAudit { domain: Domain::Soc2 }, "yearly").await.unwrap();
    audit.send(AuditCommand::BeginReview, "review").await.unwrap();
    audit.send(AuditCommand::MarkCompliant, "passed").await.unwrap();
    // Starter -> Pro has no cooldown; Pro -> Enterprise 14 days from the last change.
    h.apply_plan_change(&acme, &sub_id, "pro", "grow").await.unwrap();
    tokio::time::advance(DAY * 13).await;
    let err = h.apply_plan_change(&acme, &sub_id, "pricing-enterprise", "grow").await.unwrap_err();
    let PlanChangeError::Refused { reasons, simulation, refusal } = err else { panic!("{err:?}") };
    assert!(reasons[0].starts_with("upgrade_cooldown"), "{reasons:?}");
    assert!(simulation.gates.iter().all(|g| g.verdict != Verdict::Fail), "only the cooldown");
    // The answer: the catalog's status for `upgrade_cooldown`, and exactly the day left.
    assert_eq!((refusal.code.as_str(), refusal.status), ("upgrade_cooldown", 429));
    assert_eq!(refusal.retry_after_ms, Some(u64::try_from(DAY.as_millis()).unwrap()));
    assert_eq!(refusal.retry_after_secs(), Some(86_400));
    tokio::time::advance(DAY).await;
    h.apply_plan_change(&acme, &sub_id, "pricing-enterprise", "grow").await.unwrap();
    // A subscription that is not active does not change plan.
    h.subscription(&acme, &sub_id).pause("holiday").await.unwrap();
    let err = h.simulate_plan_change(&acme, &sub_id, "pro").await.unwrap_err();
    assert!(matches!(err, PlanChangeError::NotActive { state: "paused", .. }), "{err:?}");
    rt.shutdown().await.unwrap();
}
