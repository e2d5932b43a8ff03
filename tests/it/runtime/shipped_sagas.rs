//! The shipped plan-upgrade and billing-run sagas through the runtime (onboarding is in
//! `sagas.rs`): each completes with its steps in order; a failure at every step compensates
//! the completed ones last first; a coordinator crash at every record boundary (after a
//! record, and after a step's action but before its record) resumes after a restart to the
//! same end with the same receipts, no step done twice; real failures (a gate, an endpoint
//! that gives the invoice up) fail the run where they should.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use govern_governors::{Governor as _, GovernorKind, StateSpec as _, TenantId, Timestamp};
use govern_runtime::notify::{
    Endpoint, EventKind, Notifications, Outbound, RetryPolicy, Sent, Transport,
};
use govern_runtime::{RuntimeBuilder, RuntimeHandle, SagaEnd, SagaFaults};

use super::{acme_paying_for_starter, builder, resource, tenant};

const DAY_MS: u64 = 86_400_000;

fn pricing() -> govern_plans::Catalog {
    govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap()
}

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn upgrade_params() -> BTreeMap<String, String> {
    params(&[("to", "pro"), ("amount", "20.00"), ("transaction", "tx_1"), ("feature", "sso")])
}

fn billing_params() -> BTreeMap<String, String> {
    params(&[("period", "2026-01")])
}

/// `governor/resource command` of each of `tenant`'s receipts but the saga's and the
/// notifier's delivery records, in order.
fn effects(h: &RuntimeHandle, t: &TenantId) -> Vec<String> {
    h.receipts(t, None, None)
        .unwrap()
        .iter()
        .filter(|r| {
            r.body.governor != GovernorKind::Saga && r.body.command != "record_notification"
        })
        .map(|r| format!("{}/{} {}", r.body.governor, r.body.resource, r.body.command))
        .collect()
}

/// The plan the subscription is on.
async fn plan(h: &RuntimeHandle, t: &TenantId) -> String {
    let sub = h.subscription(t, &resource("sub-1")).snapshot().await.unwrap().machine;
    sub.plan().unwrap().to_owned()
}

/// What the plan-upgrade saga does, step by step, after acme's setup.
const UPGRADE_DONE: [&str; 7] = [
    // check gates: nothing written
    "",
    "billing/upgrade-run-1 request_payment",
    "billing/upgrade-run-1 authorize_payment",
    "subscription/sub-1 change_plan",
    "entitlement/grant-sso-run-1 grant_entitlement",
    "entitlement/grant-sso-run-1 approve_grant",
    "billing/upgrade-run-1 settle_payment",
];
/// What undoes each step (none: nothing to undo, or an earlier step's compensation does).
const UPGRADE_UNDO: [Option<&str>; 7] = [
    None,
    Some("billing/upgrade-run-1 fail_payment"),
    None,
    Some("subscription/sub-1 rollback_plan"),
    Some("entitlement/grant-sso-run-1 revoke_entitlement"),
    None,
    None,
];

/// What the billing-run saga does, step by step.
const BILLING_DONE: [&str; 4] = [
    "audit/acme record_invoice",
    "billing/invoice-2026-01 request_payment",
    // notification: the delivery records are left out of `effects`
    "",
    "audit/acme finalize_invoice",
];
const BILLING_UNDO: [Option<&str>; 4] =
    [None, Some("billing/invoice-2026-01 fail_payment"), None, None];

/// The effects a completed run leaves after `setup`'s.
fn done_effects(setup: &[String], done: &[&str]) -> Vec<String> {
    let mut want = setup.to_vec();
    want.extend(done.iter().filter(|d| !d.is_empty()).map(|d| (*d).to_owned()));
    want
}

/// The effects a run failing at step `fail` leaves after `setup`'s.
fn failed_effects(
    setup: &[String],
    done: &[&str],
    undo: &[Option<&str>],
    fail: usize,
) -> Vec<String> {
    let mut want = setup.to_vec();
    want.extend(done[..fail].iter().filter(|d| !d.is_empty()).map(|d| (*d).to_owned()));
    want.extend(undo[..fail].iter().rev().flatten().map(|u| (*u).to_owned()));
    want
}

/// A runtime for the upgrade: the pricing catalog, acme paying for starter.
async fn upgrade_runtime(b: RuntimeBuilder) -> (govern_runtime::Runtime, Vec<String>) {
    let rt = b.catalog(pricing()).start().await.unwrap();
    acme_paying_for_starter(&rt.handle()).await;
    let setup = effects(&rt.handle(), &tenant("acme"));
    (rt, setup)
}

/// A runtime for the billing run: acme paying for starter since T0, the runtime's clock 32
/// days on (January has ended).
async fn billing_runtime(b: RuntimeBuilder) -> (govern_runtime::Runtime, Vec<String>) {
    let rt = b.catalog(pricing()).start().await.unwrap();
    acme_paying_for_starter(&rt.handle()).await;
    tokio::time::advance(Duration::from_millis(32 * DAY_MS)).await;
    let setup = effects(&rt.handle(), &tenant("acme"));
    (rt, setup)
}

#[tokio::test(start_paused = true)]
async fn the_plan_upgrade_saga_charges_changes_the_plan_and_grants_once() {
    let (rt, setup) = upgrade_runtime(builder()).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let end = h.run_saga(&acme, &resource("run-1"), "plan-upgrade", &upgrade_params()).await;
    assert_eq!(end.unwrap(), SagaEnd::Completed);
    assert_eq!(effects(&h, &acme), done_effects(&setup, &UPGRADE_DONE));
    assert_eq!(plan(&h, &acme).await, "pro");
    let pay = h.governor::<govern_governors::billing::Billing>(&acme, &resource("upgrade-run-1"));
    assert_eq!(pay.snapshot().await.unwrap().machine.state().name(), "payment_settled");
    // The change's receipt carries the step's key, by which a resumed run finds it.
    let change = h.receipts(&acme, Some(GovernorKind::Subscription), None).unwrap();
    let change = change.iter().find(|r| r.body.command == "change_plan").unwrap();
    assert_eq!(
        change.body.metadata.get(govern_runtime::IDEMPOTENCY_KEY).map(String::as_str),
        Some("saga:run-1:3:do")
    );
    // Asked again, the run answers how it ended and writes nothing.
    let before = h.verify().unwrap().next_seq;
    let again = h.run_saga(&acme, &resource("run-1"), "plan-upgrade", &upgrade_params()).await;
    assert_eq!(again.unwrap(), SagaEnd::Completed);
    assert_eq!(h.verify().unwrap().next_seq, before);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_plan_upgrade_compensates_correctly_at_every_failure_point() {
    for fail in 0..UPGRADE_DONE.len() {
        let (rt, setup) = upgrade_runtime(builder()).await;
        let h = rt.handle();
        let acme = tenant("acme");
        let step = u32::try_from(fail).unwrap();
        let faults = SagaFaults { fail_step: Some(step), ..SagaFaults::default() };
        let end = h
            .run_saga_with_faults(
                &acme,
                &resource("run-1"),
                "plan-upgrade",
                &upgrade_params(),
                faults,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end, SagaEnd::Compensated { step, failure: "injected failure".into() });
        assert_eq!(
            effects(&h, &acme),
            failed_effects(&setup, &UPGRADE_DONE, &UPGRADE_UNDO, fail),
            "failing at step {fail}"
        );
        assert_eq!(plan(&h, &acme).await, "starter", "failing at step {fail}: plan restored");
        if fail > 1 {
            let pay =
                h.governor::<govern_governors::billing::Billing>(&acme, &resource("upgrade-run-1"));
            let pay = pay.snapshot().await.unwrap().machine;
            assert_eq!(pay.state().name(), "payment_failed", "failing at step {fail}");
        }
        rt.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_gate_that_refuses_fails_the_upgrade_before_anything_is_charged() {
    let (rt, setup) = upgrade_runtime(builder()).await;
    let h = rt.handle();
    let acme = tenant("acme");
    // Starter has no path to Enterprise.
    let mut p = upgrade_params();
    p.insert("to".into(), "pricing-enterprise".into());
    let end = h.run_saga(&acme, &resource("run-1"), "plan-upgrade", &p).await.unwrap();
    let SagaEnd::Compensated { step: 0, failure } = end else { panic!("{end:?}") };
    assert!(failure.starts_with("plan change refused: no upgrade path"), "{failure}");
    assert_eq!(effects(&h, &acme), setup, "nothing charged, nothing changed");
    // The upgrade to Pro goes through, and the run itself is not an open saga to its own
    // clean-receipts gate, nor its own authorized payment a payment under way.
    let end = h.run_saga(&acme, &resource("run-2"), "plan-upgrade", &upgrade_params()).await;
    assert_eq!(end.unwrap(), SagaEnd::Completed);
    // From Pro, Enterprise has a path, but its certification gate wants an audit that says
    // the tenant complies: the run fails at the gates, before any charge.
    let before = effects(&h, &acme);
    let mut up = upgrade_params();
    up.insert("to".into(), "pricing-enterprise".into());
    let end = h.run_saga(&acme, &resource("run-3"), "plan-upgrade", &up).await.unwrap();
    let SagaEnd::Compensated { step: 0, failure } = end else { panic!("{end:?}") };
    assert!(failure.contains("certification"), "{failure}");
    assert_eq!(effects(&h, &acme), before);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_billing_run_saga_invoices_charges_notifies_and_finalizes_once() {
    let (rt, setup) = billing_runtime(builder()).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let end = h.run_saga(&acme, &resource("bill-1"), "billing-run", &billing_params()).await;
    assert_eq!(end.unwrap(), SagaEnd::Completed);
    assert_eq!(effects(&h, &acme), done_effects(&setup, &BILLING_DONE));
    let view = h.invoice(&acme, "2026-01").unwrap();
    assert_eq!(view.doc(&acme).status, "final", "the saga finalized January");
    // The same period run again: every step finds its receipts, nothing is written but the
    // new run's own records.
    let before = effects(&h, &acme);
    let end = h.run_saga(&acme, &resource("bill-2"), "billing-run", &billing_params()).await;
    assert_eq!(end.unwrap(), SagaEnd::Completed);
    assert_eq!(effects(&h, &acme), before);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_billing_run_compensates_correctly_at_every_failure_point_and_runs_again() {
    for fail in 0..BILLING_DONE.len() {
        let (rt, setup) = billing_runtime(builder()).await;
        let h = rt.handle();
        let acme = tenant("acme");
        let step = u32::try_from(fail).unwrap();
        let faults = SagaFaults { fail_step: Some(step), ..SagaFaults::default() };
        let end = h
            .run_saga_with_faults(
                &acme,
                &resource("bill-1"),
                "billing-run",
                &billing_params(),
                faults,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(end, SagaEnd::Compensated { step, failure: "injected failure".into() });
        assert_eq!(
            effects(&h, &acme),
            failed_effects(&setup, &BILLING_DONE, &BILLING_UNDO, fail),
            "failing at step {fail}"
        );
        // Run again, the period completes: the invoice found, a cancelled payment retried.
        let end = h.run_saga(&acme, &resource("bill-2"), "billing-run", &billing_params()).await;
        assert_eq!(end.unwrap(), SagaEnd::Completed, "after failing at step {fail}");
        let pay =
            h.governor::<govern_governors::billing::Billing>(&acme, &resource("invoice-2026-01"));
        let pay = pay.snapshot().await.unwrap().machine;
        assert_eq!(pay.state().name(), "payment_pending", "after failing at step {fail}");
        let invoices = h
            .receipts(&acme, Some(GovernorKind::Audit), None)
            .unwrap()
            .iter()
            .filter(|r| r.body.command == "record_invoice")
            .count();
        assert_eq!(invoices, 1, "one invoice, whatever failed");
        rt.shutdown().await.unwrap();
    }
}

/// A transport that answers every notification with `status`, counting the attempts.
#[derive(Debug)]
struct Answer {
    status: u16,
    sent: std::sync::atomic::AtomicU64,
}

impl Transport for Answer {
    fn send(&self, _request: Outbound) -> Sent {
        self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let status = self.status;
        Box::pin(async move { Ok(status) })
    }
}

fn notifying(status: u16) -> (Notifications, Arc<Answer>) {
    let answer = Arc::new(Answer { status, sent: std::sync::atomic::AtomicU64::new(0) });
    let endpoint = Endpoint::new(tenant("acme"), "books", "http://books.invalid/hook", "s3cret")
        .events([EventKind::InvoiceClosed]);
    let retry = RetryPolicy {
        attempts_max: 3,
        base: Duration::from_secs(1),
        cap: Duration::from_secs(4),
        attempt_timeout: Duration::from_secs(1),
    };
    let config = Notifications::new()
        .endpoint(endpoint)
        .retry(retry)
        .transport(Arc::clone(&answer) as Arc<dyn Transport>);
    (config, answer)
}

#[tokio::test(start_paused = true)]
async fn the_billing_run_waits_for_the_invoice_to_be_delivered_before_it_finalizes() {
    let (config, answer) = notifying(200);
    let (rt, _) = billing_runtime(builder().notifications(config)).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let end = h.run_saga(&acme, &resource("bill-1"), "billing-run", &billing_params()).await;
    assert_eq!(end.unwrap(), SagaEnd::Completed);
    let audit: Vec<String> = h
        .receipts(&acme, Some(GovernorKind::Audit), None)
        .unwrap()
        .iter()
        .map(|r| {
            let outcome = r.body.args.get("outcome").map(|o| format!(" {o}")).unwrap_or_default();
            format!("{}{outcome}", r.body.command)
        })
        .collect();
    assert_eq!(
        audit,
        ["record_invoice", "record_notification delivered", "finalize_invoice"],
        "finalized after the delivery"
    );
    assert_eq!(answer.sent.load(std::sync::atomic::Ordering::Relaxed), 1);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_that_gives_the_invoice_up_fails_the_run_and_cancels_the_payment() {
    let (config, answer) = notifying(503);
    let (rt, setup) = billing_runtime(builder().notifications(config)).await;
    let h = rt.handle();
    let acme = tenant("acme");
    let end = h.run_saga(&acme, &resource("bill-1"), "billing-run", &billing_params()).await;
    let SagaEnd::Compensated { step: 2, failure } = end.unwrap() else { panic!("not step 2") };
    assert!(failure.contains("endpoint books: given_up"), "{failure}");
    assert_eq!(answer.sent.load(std::sync::atomic::Ordering::Relaxed), 3, "three attempts");
    assert_eq!(effects(&h, &acme), failed_effects(&setup, &BILLING_DONE, &BILLING_UNDO, 2));
    rt.shutdown().await.unwrap();
}

/// Runs `saga` as `run` on a fresh data directory set up by `setup`, crashing the
/// coordinator at its `n`-th record (after, or before it: the step's action sent, its record
/// not), restarts with the clock at `restart_at`, resumes, and returns the end and the
/// effects; `None` when the run ended before the crash point.
async fn crash_and_resume(
    billing: bool,
    saga: &str,
    p: &BTreeMap<String, String>,
    n: usize,
    before: bool,
) -> Option<(SagaEnd, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let acme = tenant("acme");
    let b = builder().data_dir(&data).resume_sagas_at_start(false);
    let (rt, _) = if billing { billing_runtime(b).await } else { upgrade_runtime(b).await };
    let h = rt.handle();
    let crashed = h.run_saga_crashing_at(&acme, &resource("run-1"), saga, p, n, before).await;
    let now: Timestamp = h.now();
    rt.shutdown().await.unwrap();
    if crashed.unwrap().is_some() {
        return None;
    }
    let rt = govern_runtime::Runtime::builder()
        .epoch(now)
        .data_dir(&data)
        .resume_sagas_at_start(false)
        .catalog(pricing())
        .start()
        .await
        .unwrap();
    let h = rt.handle();
    let resumed = h.resume_sagas().await;
    let end = match resumed.into_iter().next() {
        Some((t, id, end)) => {
            assert_eq!((t, id), (acme.clone(), resource("run-1")));
            end.unwrap()
        }
        None => h.run_saga(&acme, &resource("run-1"), saga, p).await.unwrap(),
    };
    let out = (end, effects(&h, &acme));
    rt.shutdown().await.unwrap();
    Some(out)
}

#[tokio::test(start_paused = true)]
async fn a_coordinator_crash_at_every_boundary_of_the_shipped_sagas_resumes_and_does_nothing_twice()
{
    let reference = |billing: bool| async move {
        let b = builder();
        let (rt, _) = if billing { billing_runtime(b).await } else { upgrade_runtime(b).await };
        let h = rt.handle();
        let (saga, p) = if billing {
            ("billing-run", billing_params())
        } else {
            ("plan-upgrade", upgrade_params())
        };
        let end = h.run_saga(&tenant("acme"), &resource("run-1"), saga, &p).await.unwrap();
        let out = (end, effects(&h, &tenant("acme")));
        rt.shutdown().await.unwrap();
        out
    };
    let mut boundaries = 0;
    for (billing, saga, p, records) in [
        (false, "plan-upgrade", upgrade_params(), 1 + UPGRADE_DONE.len()),
        (true, "billing-run", billing_params(), 1 + BILLING_DONE.len()),
    ] {
        let want = reference(billing).await;
        assert_eq!(want.0, SagaEnd::Completed);
        for before in [false, true] {
            for n in 1..=records {
                if let Some(got) = crash_and_resume(billing, saga, &p, n, before).await {
                    assert_eq!(got, want, "{saga}, crash at record {n} (before: {before})");
                    boundaries += 1;
                }
            }
        }
    }
    assert_eq!(boundaries, 2 * (8 + 5), "every boundary exercised");
}
