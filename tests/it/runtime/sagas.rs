//! Sagas through the runtime: the shipped onboarding completes; a failure at every step
//! compensates the completed ones last first; a compensation that keeps failing ends the run
//! stuck; a coordinator crash at every record boundary (after a record, and after a step's
//! command but before its record) resumes after a restart to the same end, and no step runs
//! twice.

use std::collections::BTreeMap;

use govern_governors::GovernorKind;
use govern_runtime::{Refusal, RuntimeHandle, SagaDef, SagaEnd};

use super::{builder, quota, resource, tenant};

fn params(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

fn onboarding_params() -> BTreeMap<String, String> {
    params(&[("email", "ada@example.com"), ("plan", "pro"), ("feature", "sso")])
}

/// `(governor/resource command)` of each of `tenant`'s receipts but the saga's, in order.
fn effects(h: &RuntimeHandle, t: &govern_governors::TenantId) -> Vec<String> {
    h.receipts(t, None, None)
        .unwrap()
        .iter()
        .filter(|r| r.body.governor != GovernorKind::Saga)
        .map(|r| format!("{}/{} {}", r.body.governor, r.body.resource, r.body.command))
        .collect()
}

/// The saga records of run `id`, as `command` or `command step`.
fn records(h: &RuntimeHandle, t: &govern_governors::TenantId, id: &str) -> Vec<String> {
    h.receipts(t, Some(GovernorKind::Saga), Some(&resource(id)))
        .unwrap()
        .iter()
        .map(|r| match r.body.args.get("step") {
            Some(s) => format!("{} {s}", r.body.command),
            None => r.body.command.to_string(),
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_shipped_onboarding_runs_every_step_in_order() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let end = h.run_saga(&acme, &resource("onboard-1"), "onboarding", &onboarding_params()).await;
    assert_eq!(end.unwrap(), SagaEnd::Completed);
    assert_eq!(
        effects(&h, &acme),
        [
            "tenant/acme provision_tenant",
            "tenant/acme activate_tenant",
            "account/account-1 create_account",
            "account/account-1 verify_account",
            "subscription/sub-1 start_trial",
            "entitlement/grant-sso grant_entitlement",
            "entitlement/grant-sso approve_grant",
        ]
    );
    let r = records(&h, &acme, "onboard-1");
    assert_eq!(r.len(), 8);
    assert_eq!((r[0].as_str(), r[7].as_str()), ("begin", "step_done 6"));
    // Each step carries its idempotency key.
    let trial = &h.receipts(&acme, Some(GovernorKind::Subscription), None).unwrap()[0];
    assert_eq!(trial.body.metadata["idempotency_key"], "saga:onboard-1:4:do");
    // Run again: it answers how it ended, and does nothing.
    let head = h.head();
    let p = onboarding_params();
    let again = h.run_saga(&acme, &resource("onboard-1"), "onboarding", &p).await;
    assert_eq!(again.unwrap(), SagaEnd::Completed);
    assert_eq!(h.head(), head);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_saga_that_cannot_run_is_refused_before_it_begins() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let head = h.head();
    let e = h.run_saga(&acme, &resource("x-1"), "payroll", &params(&[])).await.unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("bad_saga", 422));
    let e = h.run_saga(&acme, &resource("x-1"), "onboarding", &params(&[])).await.unwrap_err();
    assert!(matches!(&e, Refusal::BadSaga { problem } if problem.contains("has no value")), "{e}");
    // A value that would add a parameter when the recorded `KEY=VALUE` lines are read back.
    let mut smuggled = onboarding_params();
    smuggled.insert("email".into(), "ada@example.com\nplan=enterprise".into());
    let e = h.run_saga(&acme, &resource("x-1"), "onboarding", &smuggled).await.unwrap_err();
    assert!(matches!(&e, Refusal::BadSaga { problem } if problem.contains("line breaks")), "{e}");
    assert_eq!(h.head(), head);
    rt.shutdown().await.unwrap();
}

/// Three steps that each can be undone, with a step that always fails (archiving a
/// subscription that never started: `invalid_transition`) at `fail_at`.
fn failing_def(fail_at: usize) -> SagaDef {
    let good = [
        r#"[[steps]]
name = "open account"
governor = "account"
resource = "acc-1"
command = "create_account"
args = { email = "ada@example.com" }
compensate = { command = "close_account" }
"#,
        r#"[[steps]]
name = "start trial"
governor = "subscription"
resource = "sub-1"
command = "start_trial"
args = { plan = "pro", trial_days = "14" }
compensate = { command = "request_cancellation" }
"#,
        r#"[[steps]]
name = "grant"
governor = "entitlement"
resource = "grant-sso"
command = "grant_entitlement"
args = { feature = "sso" }
compensate = { command = "revoke_entitlement" }
"#,
    ];
    let bad = r#"[[steps]]
name = "archive a subscription that never began"
governor = "subscription"
resource = "sub-never"
command = "archive"
"#;
    let mut steps: Vec<&str> = good.to_vec();
    steps.insert(fail_at, bad);
    let text = format!("name = \"failing\"\n{}", steps.concat());
    SagaDef::parse(&text, "failing.toml").unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_failure_at_every_step_compensates_the_completed_ones_last_first() {
    let undo = [
        "account/acc-1 close_account",
        "subscription/sub-1 request_cancellation",
        "entitlement/grant-sso revoke_entitlement",
    ];
    let done = [
        "account/acc-1 create_account",
        "subscription/sub-1 start_trial",
        "entitlement/grant-sso grant_entitlement",
    ];
    for fail_at in 0..=3 {
        let rt = builder().saga(failing_def(fail_at)).start().await.unwrap();
        let h = rt.handle();
        let acme = tenant("acme");
        h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
        let end = h.run_saga(&acme, &resource("run-1"), "failing", &params(&[])).await.unwrap();
        let SagaEnd::Compensated { step, failure } = end else { panic!("{fail_at}: {end:?}") };
        assert_eq!(step, u32::try_from(fail_at).unwrap());
        assert!(failure.contains("invalid transition") || failure.contains("archive"), "{failure}");
        let mut want: Vec<&str> =
            vec!["tenant/acme provision_tenant", "tenant/acme activate_tenant"];
        want.extend(&done[..fail_at]);
        want.extend(undo[..fail_at].iter().rev());
        assert_eq!(effects(&h, &acme), want, "failing at {fail_at}");
        let mut r = vec!["begin".to_owned()];
        r.extend((0..fail_at).map(|i| format!("step_done {i}")));
        r.push(format!("step_failed {fail_at}"));
        r.extend((0..fail_at).rev().map(|i| format!("compensated {i}")));
        assert_eq!(records(&h, &acme, "run-1"), r, "failing at {fail_at}");
        rt.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_keeps_failing_ends_the_run_stuck_with_its_reason() {
    // The trial's compensation archives it, which a trial refuses: every attempt fails.
    let text = r#"name = "stubborn"
[[steps]]
name = "start trial"
governor = "subscription"
resource = "sub-1"
command = "start_trial"
args = { plan = "pro", trial_days = "14" }
compensate = { command = "archive" }
[[steps]]
name = "fail"
governor = "subscription"
resource = "sub-never"
command = "archive"
"#;
    let def = SagaDef::parse(text, "stubborn.toml").unwrap();
    let rt = builder().saga(def).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let end = h.run_saga(&acme, &resource("run-1"), "stubborn", &params(&[])).await.unwrap();
    let SagaEnd::Stuck { failure } = end else { panic!("{end:?}") };
    assert!(failure.starts_with("undoing step 0 (start trial) failed 5 times"), "{failure}");
    assert_eq!(
        records(&h, &acme, "run-1"),
        [
            "begin",
            "step_done 0",
            "step_failed 1",
            "compensation_failed 0",
            "compensation_failed 0",
            "compensation_failed 0",
            "compensation_failed 0",
            "give_up",
        ]
    );
    // An operator deals with it and resolves the run.
    let run = h.governor::<govern_governors::saga::Saga>(&acme, &resource("run-1"));
    run.send(govern_governors::saga::Command::Resolve, "refunded by hand").await.unwrap();
    let end = h.run_saga(&acme, &resource("run-1"), "stubborn", &params(&[])).await.unwrap();
    assert!(matches!(end, SagaEnd::Compensated { step: 1, .. }), "{end:?}");
    rt.shutdown().await.unwrap();
}

/// Runs `saga` as run `run-1` on a fresh data directory, crashing the coordinator at its
/// `n`-th record (after, or before it), restarts, resumes, and returns the end and the
/// effects; `None` when the run ended before the crash point.
async fn crash_and_resume(
    def: Option<SagaDef>,
    saga: &str,
    p: &BTreeMap<String, String>,
    provision: bool,
    n: usize,
    before: bool,
) -> Option<(SagaEnd, Vec<String>)> {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let acme = tenant("acme");
    let mut b = builder().data_dir(&data).resume_sagas_at_start(false);
    if let Some(d) = def.clone() {
        b = b.saga(d);
    }
    let rt = b.start().await.unwrap();
    let h = rt.handle();
    if provision {
        h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    }
    let crashed = h.run_saga_crashing_at(&acme, &resource("run-1"), saga, p, n, before).await;
    rt.shutdown().await.unwrap();
    if crashed.unwrap().is_some() {
        return None;
    }
    let mut b = builder().data_dir(&data).resume_sagas_at_start(false);
    if let Some(d) = def {
        b = b.saga(d);
    }
    let rt = b.start().await.unwrap();
    let h = rt.handle();
    let resumed = h.resume_sagas().await;
    let end = match resumed.into_iter().next() {
        Some((t, id, end)) => {
            assert_eq!((t, id), (acme.clone(), resource("run-1")));
            end.unwrap()
        }
        // The crash came after the run's last record: nothing to resume; asked again, the
        // run answers how it ended and does nothing.
        None => h.run_saga(&acme, &resource("run-1"), saga, p).await.unwrap(),
    };
    let out = (end, effects(&h, &acme));
    rt.shutdown().await.unwrap();
    Some(out)
}

#[tokio::test(start_paused = true)]
async fn a_coordinator_crash_at_every_boundary_resumes_to_the_same_end_and_runs_no_step_twice() {
    // The reference runs, without a crash.
    let onboarding = {
        let rt = builder().start().await.unwrap();
        let h = rt.handle();
        let (acme, run, p) = (tenant("acme"), resource("run-1"), onboarding_params());
        let end = h.run_saga(&acme, &run, "onboarding", &p).await.unwrap();
        let out = (end, effects(&h, &tenant("acme")));
        rt.shutdown().await.unwrap();
        out
    };
    let failing = {
        let rt = builder().saga(failing_def(2)).start().await.unwrap();
        let h = rt.handle();
        h.provision_tenant(&tenant("acme"), quota(), "onboarding").await.unwrap();
        let end = h.run_saga(&tenant("acme"), &resource("run-1"), "failing", &params(&[])).await;
        let out = (end.unwrap(), effects(&h, &tenant("acme")));
        rt.shutdown().await.unwrap();
        out
    };
    // Onboarding: 8 records; the failing run: begin, 2 done, failed, 2 compensated = 6.
    let mut boundaries = 0;
    for before in [false, true] {
        for n in 1..=8 {
            if let Some(got) =
                crash_and_resume(None, "onboarding", &onboarding_params(), false, n, before).await
            {
                assert_eq!(got, onboarding, "onboarding, crash at record {n} (before: {before})");
                boundaries += 1;
            }
        }
        for n in 1..=6 {
            let got =
                crash_and_resume(Some(failing_def(2)), "failing", &params(&[]), true, n, before)
                    .await;
            if let Some(got) = got {
                assert_eq!(got, failing, "failing, crash at record {n} (before: {before})");
                boundaries += 1;
            }
        }
    }
    // Every boundary: after and before each of the 8 + 6 records.
    assert_eq!(boundaries, 2 * (8 + 6), "boundaries exercised");
}

#[tokio::test(start_paused = true)]
async fn the_onboarding_compensates_correctly_at_every_failure_point() {
    use govern_runtime::SagaFaults;
    let done = [
        "tenant/acme provision_tenant",
        "tenant/acme activate_tenant",
        "account/account-1 create_account",
        "account/account-1 verify_account",
        "subscription/sub-1 start_trial",
        "entitlement/grant-sso grant_entitlement",
        "entitlement/grant-sso approve_grant",
    ];
    // What undoes each step (none: nothing, or an earlier step's compensation does).
    let undo: [Option<&str>; 7] = [
        Some("tenant/acme deprovision_tenant"),
        None,
        Some("account/account-1 close_account"),
        None,
        Some("subscription/sub-1 request_cancellation"),
        Some("entitlement/grant-sso revoke_entitlement"),
        None,
    ];
    for fail in 0..7usize {
        let rt = builder().start().await.unwrap();
        let h = rt.handle();
        let acme = tenant("acme");
        let faults =
            SagaFaults { fail_step: Some(u32::try_from(fail).unwrap()), ..SagaFaults::default() };
        let end = h
            .run_saga_with_faults(
                &acme,
                &resource("run-1"),
                "onboarding",
                &onboarding_params(),
                faults,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            end,
            SagaEnd::Compensated {
                step: u32::try_from(fail).unwrap(),
                failure: "injected failure".into()
            }
        );
        let mut want: Vec<&str> = done[..fail].to_vec();
        want.extend(undo[..fail].iter().rev().flatten());
        assert_eq!(effects(&h, &acme), want, "failing at step {fail}");
        if fail > 0 {
            assert_eq!(h.tenant_state(&acme), Some(govern_governors::tenant::State::Deprovisioned));
        }
        rt.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn the_coordinator_actor_restarted_after_a_crash_resumes_the_unfinished_runs() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let p = onboarding_params();
    // The run's task stops after its third record (begin, provision, activate) ...
    let run = resource("run-1");
    let stopped = h.run_saga_crashing_at(&acme, &run, "onboarding", &p, 3, false).await;
    assert_eq!(stopped.unwrap(), None);
    // ... and the coordinator actor itself fails: the root supervisor restarts it, and the
    // new incarnation resumes the run from its receipts, by itself.
    assert!(h.inject_saga_coordinator_crash());
    // Watch the run's record until it ends (a bounded loop of scheduler turns, no sleep);
    // nothing else drives it.
    let record = h.governor::<govern_governors::saga::Saga>(&acme, &run);
    let mut state = None;
    for _ in 0..10_000 {
        let s = record.state().await.unwrap();
        if s != govern_governors::saga::State::Running {
            state = Some(s);
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(state, Some(govern_governors::saga::State::Completed));
    let end = Some(h.run_saga(&acme, &run, "onboarding", &p).await.unwrap());
    assert_eq!(end, Some(SagaEnd::Completed));
    assert_eq!(effects(&h, &acme).len(), 7, "every step once: {:?}", effects(&h, &acme));
    assert_eq!(records(&h, &acme, "run-1").len(), 8);
    rt.shutdown().await.unwrap();
}

/// A saga whose second step activates `sub-1`, with a time limit of its own or not.
fn activation_def(name: &str, step_timeout: Option<&str>) -> SagaDef {
    let timeout = step_timeout.map(|t| format!("timeout = \"{t}\"\n")).unwrap_or_default();
    let text = format!(
        r#"name = "{name}"
[[steps]]
name = "grant"
governor = "entitlement"
resource = "grant-{name}"
command = "grant_entitlement"
args = {{ feature = "sso" }}
compensate = {{ command = "revoke_entitlement" }}
[[steps]]
name = "activate"
governor = "subscription"
resource = "sub-1"
command = "activate"
{timeout}"#
    );
    SagaDef::parse(&text, "activation.toml").unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_step_past_its_time_limit_fails_the_run_which_compensates() {
    // sub-1 is quarantined for 1 s (its first crash, with no restart allowed): its commands
    // are refused `governor_unavailable` meanwhile, a momentary refusal the coordinator
    // retries after 100, 200, 400 ms...
    let rt = builder()
        .governor_restarts(0, std::time::Duration::from_secs(60))
        .saga(activation_def("patient", None))
        .saga(activation_def("hasty", Some("250ms")))
        .start()
        .await
        .unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    let quarantine = async {
        sub.inject_crash(govern_runtime::CrashPoint::Now).await.unwrap();
    };
    quarantine.await;
    // ...so with a 250 ms limit the step gives up after its retry at 100 ms (the next would
    // be at 300 ms) and the grant is revoked.
    let end = h.run_saga(&acme, &resource("run-1"), "hasty", &params(&[])).await.unwrap();
    let SagaEnd::Compensated { step: 1, failure } = end else { panic!("{end:?}") };
    assert!(
        failure.starts_with("step activate timed out after 250ms (2 attempts; last: "),
        "{failure}"
    );
    assert_eq!(
        records(&h, &acme, "run-1"),
        ["begin", "step_done 0", "step_failed 1", "compensated 0"]
    );
    // Without a limit of its own the step outlasts the quarantine and the run completes.
    let end = h.run_saga(&acme, &resource("run-2"), "patient", &params(&[])).await;
    match end.unwrap() {
        SagaEnd::Completed => {
            assert_eq!(govern_governors::StateSpec::name(sub.state().await.unwrap()), "active");
        }
        other => panic!("{other:?}"),
    }
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_same_run_started_twice_at_once_runs_once() {
    let rt = builder().start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    let (p, run) = (onboarding_params(), resource("onboard-1"));
    let (a, b) = tokio::join!(
        h.run_saga(&acme, &run, "onboarding", &p),
        h.run_saga(&acme, &run, "onboarding", &p)
    );
    let mut ends = [a, b];
    ends.sort_by_key(Result::is_err);
    assert_eq!(ends[0], Ok(SagaEnd::Completed));
    assert!(matches!(&ends[1], Err(Refusal::IdempotencyInFlight { .. })), "{:?}", ends[1]);
    // Each step ran once.
    let steps = effects(&h, &acme);
    assert_eq!(steps.len(), 7, "{steps:?}");
    rt.shutdown().await.unwrap();
}
