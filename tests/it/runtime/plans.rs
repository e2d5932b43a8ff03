//! The plan catalog in the runtime: a subscription's plan must be one of the catalog's, and
//! without a catalog a plan is any id.

use govern_governors::GovernorKind;
use govern_runtime::{CommandError, Refusal};

use super::{builder, quota, resource, tenant};

fn pricing() -> govern_plans::Catalog {
    let path = crate::repo_path("examples/plans/pricing.toml");
    govern_plans::load(&path).unwrap()
}

#[tokio::test(start_paused = true)]
async fn with_a_catalog_a_subscription_names_one_of_its_plans_or_is_refused_unknown_plan() {
    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let before = h.verify().unwrap().next_seq;
    let sub = h.subscription(&acme, &resource("sub-1"));

    let refused = sub.start_trial("platinum", 14, "signed up").await.unwrap_err();
    assert_eq!(refused, CommandError::Refused(Refusal::UnknownPlan { plan: "platinum".into() }));
    assert_eq!((refused.code(), refused.http_status()), ("unknown_plan", 422));
    assert_eq!(h.verify().unwrap().next_seq, before, "a refused command writes nothing");

    assert_eq!(sub.start_trial("starter", 14, "signed up").await.unwrap().to, "free_trial");
    // Converting onto another plan names it, and it is checked too; keeping the plan does not.
    let refused = sub.activate(Some("gold"), "converted").await.unwrap_err();
    assert_eq!(refused.code(), "unknown_plan");
    assert_eq!(sub.activate(Some("pro"), "converted").await.unwrap().to, "active");
    assert_eq!(sub.request_cancellation("leaving").await.unwrap().to, "cancellation_requested");
    // Keeping it does not change its plan around the plan-change gates.
    let refused = sub.activate(Some("starter"), "stays, cheaper").await.unwrap_err();
    assert_eq!((refused.code(), refused.http_status()), ("precondition_failed", 409));
    assert_eq!(sub.activate(None, "stays").await.unwrap().to, "active");
    let commands: Vec<String> = h
        .receipts(&acme, Some(GovernorKind::Subscription), None)
        .unwrap()
        .iter()
        .map(|r| format!("{} {:?}", r.body.command, r.body.args.get("plan")))
        .collect();
    assert_eq!(
        commands,
        [
            "start_trial Some(\"starter\")",
            "activate Some(\"pro\")",
            "request_cancellation None",
            "activate None"
        ]
    );
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_catalog_a_plan_is_any_id() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    assert_eq!(sub.start_trial("platinum", 14, "signed up").await.unwrap().to, "free_trial");
    rt.shutdown().await.unwrap();
}

/// A check's answer as `allowed by X` or `code status by X`.
fn said(d: &govern_policy::Decision) -> String {
    match d.refusal() {
        None => format!("allowed by {}", d.decided_by()),
        Some(r) => format!("{} {} by {}", r.code, r.status, r.decided_by),
    }
}

#[tokio::test(start_paused = true)]
async fn a_check_decides_from_durable_plans_grants_and_the_tenants_state() {
    use govern_governors::entitlement::{Command as Grant, Entitlement};
    use govern_governors::tenant::Command as TenantCommand;

    let rt = builder().catalog(pricing()).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let check = |feature: &str| said(&h.check(&acme, feature, "use", 1).unwrap());
    assert_eq!(
        h.check(&acme, "report_builder", "use", 1).unwrap_err(),
        Refusal::UnknownTenant(acme.clone())
    );
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    // No subscription yet: a feature some plan has is 402, one no plan has is 403.
    assert_eq!(check("report_builder"), "plan_upgrade_required 402 by default");
    assert_eq!(check("teleport"), "not_entitled 403 by default");

    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("starter", 14, "signed up").await.unwrap();
    assert_eq!(check("report_builder"), "allowed by plan_feature:report_builder");
    assert_eq!(check("forecast"), "plan_upgrade_required 402 by default");
    sub.activate(Some("pro"), "converted").await.unwrap();
    assert_eq!(check("forecast"), "allowed by plan_feature:forecast");
    assert_eq!(check("sso"), "plan_upgrade_required 402 by default", "enterprise only");

    // A grant (the entitlement governor) beats the plan.
    let grant = h.governor::<Entitlement>(&acme, &resource("grant-sso"));
    grant
        .send(
            Grant::GrantEntitlement {
                feature: "sso".into(),
                expires_at: None,
                kind: govern_governors::entitlement::GrantKind::Promotional,
                priority: 5,
            },
            "deal",
        )
        .await
        .unwrap();
    assert_eq!(check("sso"), "plan_upgrade_required 402 by default", "requested, not yet entitled");
    grant.send(Grant::ApproveGrant, "approved").await.unwrap();
    assert_eq!(check("sso"), "allowed by grant:grant-sso (promotional)");

    // A suspended subscription serves no features; the grant still holds.
    sub.suspend("card declined").await.unwrap();
    assert_eq!(check("forecast"), "plan_upgrade_required 402 by default");
    assert_eq!(check("sso"), "allowed by grant:grant-sso (promotional)");
    sub.resume("card updated").await.unwrap();
    assert_eq!(check("forecast"), "allowed by plan_feature:forecast");
    grant.send(Grant::RevokeEntitlement, "ended").await.unwrap();
    assert_eq!(check("sso"), "plan_upgrade_required 402 by default");

    // The tenant's state comes first.
    h.tenant(&acme).send(TenantCommand::SuspendTenant, "unpaid").await.unwrap();
    assert_eq!(check("forecast"), "tenant_suspended 403 by state:suspended");
    h.tenant(&acme).send(TenantCommand::ActivateTenant, "paid").await.unwrap();
    assert_eq!(check("forecast"), "allowed by plan_feature:forecast");
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn without_a_catalog_a_check_is_refused_no_catalog() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let refused = h.check(&acme, "report_builder", "use", 1).unwrap_err();
    assert_eq!((refused.code(), refused.http_status()), ("no_catalog", 501));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_runtime_continuing_a_ledger_checks_as_the_one_before_it() {
    use govern_governors::entitlement::{Command as Grant, Entitlement, GrantKind};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let acme = tenant("acme");
    let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    h.subscription(&acme, &resource("sub-1")).start_trial("pro", 14, "signed up").await.unwrap();
    h.subscription(&acme, &resource("sub-2")).start_trial("starter", 14, "second").await.unwrap();
    // A second subscription, no longer live: its plan does not count after the restart.
    let sub_2 = h.subscription(&acme, &resource("sub-2"));
    sub_2.activate(None, "converted").await.unwrap();
    sub_2.suspend("card declined").await.unwrap();
    let grant = h.governor::<Entitlement>(&acme, &resource("grant-sso"));
    let request = Grant::GrantEntitlement {
        feature: "sso".into(),
        expires_at: None,
        kind: GrantKind::Beta,
        priority: 3,
    };
    grant.send(request, "beta").await.unwrap();
    grant.send(Grant::ApproveGrant, "approved").await.unwrap();
    let before: Vec<String> = ["forecast", "sso", "priority_support"]
        .iter()
        .map(|f| said(&h.check(&acme, f, "use", 1).unwrap()))
        .collect();
    assert_eq!(
        before,
        [
            "allowed by plan_feature:forecast",
            "allowed by grant:grant-sso (beta)",
            "plan_upgrade_required 402 by default"
        ]
    );
    rt.shutdown().await.unwrap();

    let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    let after: Vec<String> = ["forecast", "sso", "priority_support"]
        .iter()
        .map(|f| said(&h.check(&acme, f, "use", 1).unwrap()))
        .collect();
    assert_eq!(after, before);
    rt.shutdown().await.unwrap();
}
