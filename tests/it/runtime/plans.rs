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
