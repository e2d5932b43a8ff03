//! Metered usage, quotas, rate limits, check receipts and catalog reloads through the runtime:
//! usage drives the meter's quota governor across 75 / 90 / 100 %, a check of a metered
//! feature is refused at the limit with the time until the period resets, counters and
//! deduplication survive a restart, refusals and allowed checks are receipted (bounded), and
//! a catalog reload is validated and receipted.

use std::time::Duration;

use govern_governors::GovernorKind;
use govern_runtime::{Refusal, UsageRecorded};

use super::{T0, builder, resource};

fn pricing() -> govern_plans::Catalog {
    govern_plans::load(&crate::repo_path("examples/plans/pricing.toml")).unwrap()
}

/// A runtime with the pricing catalog and tenant `acme` on `starter` (reports: 10 a month,
/// 5 requests per second).
async fn acme_on_starter(
    b: govern_runtime::RuntimeBuilder,
) -> (govern_runtime::Runtime, govern_governors::TenantId) {
    let rt = b.catalog(pricing()).start().await.unwrap();
    let acme = super::acme_paying_for_starter(&rt.handle()).await;
    (rt, acme)
}

fn counted(r: &UsageRecorded) -> (u64, Vec<&'static str>, &'static str) {
    match r {
        UsageRecorded::Counted { value, crossed, quota, .. } => (*value, crossed.clone(), *quota),
        other => panic!("not counted: {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn usage_moves_the_quota_across_its_thresholds_and_a_check_is_refused_at_the_limit() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    let now = h.now();
    let r = h.record_usage(&acme, "reports", 7, "e1", now).await.unwrap();
    assert_eq!(counted(&r), (7, vec![], "normal"));
    let r = h.record_usage(&acme, "reports", 1, "e2", now).await.unwrap();
    assert_eq!(counted(&r), (8, vec!["warning"], "warning"));
    let r = h.record_usage(&acme, "reports", 1, "e3", now).await.unwrap();
    assert_eq!(counted(&r), (9, vec!["throttle"], "throttled"));
    // A duplicate changes nothing and writes nothing.
    let before = h.head().next_seq;
    assert_eq!(
        h.record_usage(&acme, "reports", 1, "e3", now).await.unwrap(),
        UsageRecorded::Duplicate
    );
    assert_eq!(h.head().next_seq, before);

    // One more report fits (9 + 1 = 10); two do not.
    assert!(h.check(&acme, "report_builder", "create", 1).unwrap().is_allowed());
    let d = h.check(&acme, "report_builder", "create", 2).unwrap();
    let refusal = d.refusal().unwrap();
    assert_eq!((refusal.code, refusal.status), ("quota_exceeded", 429));
    // T0 is 2026-01-01T00:00Z: the month resets 31 days later.
    assert_eq!(refusal.retry_after_secs, Some(31 * 86_400));

    let r = h.record_usage(&acme, "reports", 1, "e4", now).await.unwrap();
    assert_eq!(counted(&r), (10, vec!["exceeded"], "exceeded"));
    let d = h.check(&acme, "report_builder", "create", 1).unwrap();
    assert_eq!(d.refusal().unwrap().code, "quota_exceeded");
    // A feature without a meter is not held to it.
    assert!(h.check(&acme, "export_pdf", "create", 1).unwrap().is_allowed());

    let trail: Vec<String> = h
        .receipts(&acme, Some(GovernorKind::Quota), Some(&resource("reports")))
        .unwrap()
        .iter()
        .map(|r| {
            let a = &r.body.args;
            format!(
                "{} {}->{} usage={} limit={}",
                r.body.command, r.body.state_from, r.body.state_to, a["usage"], a["limit"]
            )
        })
        .collect();
    assert_eq!(
        trail,
        [
            "record_usage normal->normal usage=7 limit=10",
            "record_usage normal->warning usage=8 limit=10",
            "record_usage warning->throttled usage=9 limit=10",
            "record_usage throttled->exceeded usage=10 limit=10",
        ]
    );

    // The next month the counter starts again and the quota follows it back to normal.
    tokio::time::advance(Duration::from_millis(31 * govern_governors::DAY_MS)).await;
    let r = h.record_usage(&acme, "reports", 1, "e5", h.now()).await.unwrap();
    assert_eq!(counted(&r), (1, vec![], "normal"));
    assert!(h.check(&acme, "report_builder", "create", 1).unwrap().is_allowed());
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn bad_usage_is_a_typed_refusal_and_changes_nothing() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    let before = h.head().next_seq;
    let now = h.now();
    let code = |r: Result<UsageRecorded, Refusal>| match r.unwrap_err() {
        Refusal::Usage(e) => e.to_string(),
        other => panic!("not a usage refusal: {other:?}"),
    };
    assert_eq!(code(h.record_usage(&acme, "reports", 0, "z", now).await), "quantity is zero");
    assert_eq!(
        code(h.record_usage(&acme, "unknown_meter", 1, "u", now).await),
        "meter \"unknown_meter\" is not defined"
    );
    let future = now.plus_ms(3_600_000);
    assert!(code(h.record_usage(&acme, "reports", 1, "f", future).await).contains("after now"));
    assert_eq!(h.head().next_seq, before);
    let e = h.record_usage(&acme, "reports", 0, "z", now).await.unwrap_err();
    assert_eq!((e.code(), e.http_status()), ("bad_usage", 422));

    // The quota's record_usage is the runtime's own.
    let raw = govern_governors::quota::Command::RecordUsage(govern_governors::quota::UsageBatch {
        meter: "reports".into(),
        period: 0,
        total: 1,
        usage: 1,
        limit: Some(10),
        events: vec![(T0.as_ms(), "x".into())],
    });
    let refused = h
        .governor::<govern_governors::quota::Quota>(&acme, &resource("reports"))
        .send(raw, "forged")
        .await
        .unwrap_err();
    assert_eq!((refused.code(), refused.http_status()), ("reserved", 403));
    assert_eq!(h.head().next_seq, before);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn usage_counters_and_deduplication_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let (rt, acme) = acme_on_starter(builder().data_dir(&data)).await;
    let h = rt.handle();
    let now = h.now();
    let events: Vec<govern_usage::UsageEvent> = (0..9)
        .map(|i| govern_usage::UsageEvent::new("reports", 1, &format!("r{i}"), now).unwrap())
        .collect();
    let results = h.record_usage_batch(&acme, events).await.unwrap();
    assert_eq!(results.len(), 9);
    assert_eq!(counted(results[7].as_ref().unwrap()), (8, vec!["warning"], "throttled"));
    assert_eq!(counted(results[8].as_ref().unwrap()), (9, vec!["throttle"], "throttled"));
    // One flush, one receipt for the nine.
    assert_eq!(h.receipts(&acme, Some(GovernorKind::Quota), None).unwrap().len(), 1);
    rt.shutdown().await.unwrap();

    let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    assert_eq!(
        h.record_usage(&acme, "reports", 1, "r3", now).await.unwrap(),
        UsageRecorded::Duplicate
    );
    let d = h.check(&acme, "report_builder", "create", 2).unwrap();
    assert_eq!(
        d.refusal().map(|r| r.code),
        Some("quota_exceeded"),
        "9 used of 10 after the restart"
    );
    let r = h.record_usage(&acme, "reports", 1, "r9", now).await.unwrap();
    assert_eq!(counted(&r), (10, vec!["exceeded"], "exceeded"));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_plans_rate_limit_refuses_with_a_retry_after() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    // Starter: 5 requests per second, a burst of 5.
    for _ in 0..5 {
        assert!(h.check(&acme, "api_access", "call", 1).unwrap().is_allowed());
    }
    let d = h.check(&acme, "api_access", "call", 1).unwrap();
    let r = d.refusal().unwrap();
    assert_eq!((r.code, r.status, r.retry_after_secs), ("rate_limited", 429, Some(1)));
    assert_eq!(r.decided_by.to_string(), "limit:requests_per_second");
    // A refused request is not counted against the rate; a fifth of a second later one fits.
    tokio::time::advance(Duration::from_millis(200)).await;
    assert!(h.check(&acme, "api_access", "call", 1).unwrap().is_allowed());
    assert!(!h.check(&acme, "api_access", "call", 1).unwrap().is_allowed());
    // A refusal of the entitlement does not spend the rate.
    tokio::time::advance(Duration::from_secs(1)).await;
    for _ in 0..3 {
        assert_eq!(h.check(&acme, "sso", "login", 1).unwrap().refusal().unwrap().status, 402);
    }
    for _ in 0..5 {
        assert!(h.check(&acme, "api_access", "call", 1).unwrap().is_allowed());
    }
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn refusals_are_receipted_once_per_kind_and_window_and_allowed_checks_are_counted() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    let audit_records = |h: &govern_runtime::RuntimeHandle| -> Vec<String> {
        h.receipts(&acme, Some(GovernorKind::Audit), None)
            .unwrap()
            .iter()
            .map(|r| {
                let a = &r.body.args;
                match r.body.command.as_ref() {
                    "record_refusals" => format!(
                        "refusals {} {} {} x{}",
                        a["feature"], a["code"], a["decided_by"], a["count"]
                    ),
                    "record_checks" => format!("checks {:?}", a["allowed"]),
                    other => other.to_owned(),
                }
            })
            .collect()
    };
    for _ in 0..4 {
        h.check(&acme, "sso", "login", 1).unwrap();
    }
    h.check(&acme, "export_pdf", "view", 1).unwrap();
    h.check(&acme, "export_pdf", "view", 1).unwrap();
    h.check(&acme, "api_access", "call", 1).unwrap();
    // The first refusal is receipted at once (once its governor has taken it).
    let _ = h.audit(&acme).snapshot().await.unwrap();
    h.fire_due_timeouts().await;
    assert_eq!(audit_records(&h), ["refusals sso plan_upgrade_required default x1"]);
    h.flush_check_counts().await;
    assert_eq!(
        audit_records(&h),
        [
            "refusals sso plan_upgrade_required default x1",
            "refusals sso plan_upgrade_required default x3",
            "checks \"1 api_access\\n2 export_pdf\"",
        ]
    );
    let trail = h.audit(&acme).snapshot().await.unwrap();
    assert_eq!((trail.machine.refusals(), trail.machine.allowed_checks()), (4, 3));
    // A new window: the same refusal is receipted at once again.
    tokio::time::advance(Duration::from_secs(60)).await;
    h.check(&acme, "sso", "login", 1).unwrap();
    let _ = h.audit(&acme).snapshot().await.unwrap();
    h.fire_due_timeouts().await;
    assert_eq!(audit_records(&h).len(), 4);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_catalog_reload_is_checked_receipted_and_then_decides() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    assert_eq!(h.check(&acme, "forecast", "run", 1).unwrap().refusal().unwrap().status, 402);
    let text = std::fs::read_to_string(crate::repo_path("examples/plans/pricing.toml")).unwrap();

    // Without `starter`, which acme is on: refused, nothing changes.
    let without = text
        .replace("[plans.starter]", "[plans.starter-old]")
        .replace("[plans.starter.", "[plans.starter-old.");
    let catalog = govern_plans::validate(&without, "pricing.toml").unwrap();
    let before = h.head().next_seq;
    let e = h.reload_catalog(catalog).await.unwrap_err();
    assert_eq!(e.code(), "bad_catalog");
    assert!(e.to_string().contains("plan `starter` is in use"), "{e}");
    assert_eq!(h.head().next_seq, before);

    // Starter gains forecasts: receipted in acme's trail, then checks decide with it.
    let with_sso = text.replace("version = \"2026-12-06\"", "version = \"2026-12-07\"").replace(
        "features = [\"report_builder\", \"export_pdf\", \"api_access\"]",
        "features = [\"report_builder\", \"export_pdf\", \"api_access\", \"forecast\"]",
    );
    let catalog = govern_plans::validate(&with_sso, "pricing.toml").unwrap();
    assert_eq!(h.reload_catalog(catalog).await.unwrap(), 1);
    let last = h.receipts(&acme, Some(GovernorKind::Audit), None).unwrap().pop().unwrap();
    assert_eq!(last.body.command, "record_catalog");
    assert_eq!(last.body.args["version"], "2026-12-07");
    assert!(h.check(&acme, "forecast", "run", 1).unwrap().is_allowed());
    assert_eq!(h.catalog_in_force().unwrap().version, "2026-12-07");

    // Back to the original: the cached allow is not served after the reload.
    let catalog = govern_plans::validate(&text, "pricing.toml").unwrap();
    assert_eq!(h.reload_catalog(catalog).await.unwrap(), 1);
    assert_eq!(h.check(&acme, "forecast", "run", 1).unwrap().refusal().unwrap().status, 402);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_tenants_provisioned_quota_is_enforced_through_the_same_path() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    // quota(): 100 GB of storage. The plan's own `storage_bytes` is another meter.
    let r = h.record_usage(&acme, "storage_gb", 95, "s1", h.now()).await.unwrap();
    assert_eq!(counted(&r), (95, vec!["warning", "throttle"], "throttled"));
    let r = h.record_usage(&acme, "storage_gb", 5, "s2", h.now()).await.unwrap();
    assert_eq!(counted(&r), (100, vec!["exceeded"], "exceeded"));
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn the_tenants_provisioned_quota_is_enforced_after_a_restart() {
    // The quota comes from the tenant's own receipt: a restart restores it with the plans,
    // from runtime.snap and from every receipt alike.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let (rt, acme) = acme_on_starter(builder().data_dir(&data)).await;
    let h = rt.handle();
    let r = h.record_usage(&acme, "storage_gb", 95, "s1", h.now()).await.unwrap();
    assert_eq!(counted(&r), (95, vec!["warning", "throttle"], "throttled"));
    rt.shutdown().await.unwrap();
    // From runtime.snap, then from every receipt: the quota still counts against 100 GB.
    let expected = [(97, vec![], "throttled"), (100, vec!["exceeded"], "exceeded")];
    for (i, (from_every_receipt, expected)) in [false, true].into_iter().zip(expected).enumerate() {
        if from_every_receipt {
            std::fs::remove_file(data.join("runtime.snap")).unwrap();
        }
        let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
        let h = rt.handle();
        let (n, id) = ([2, 3][i], format!("r{i}"));
        let r = h.record_usage(&acme, "storage_gb", n, &id, h.now()).await.unwrap();
        assert_eq!(counted(&r), expected, "from every receipt: {from_every_receipt}");
        rt.shutdown().await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_quota_governor_crashing_in_a_flush_loses_no_acknowledged_event() {
    use govern_runtime::CrashPoint;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ledger");
    let (rt, acme) = acme_on_starter(builder().data_dir(&data)).await;
    let h = rt.handle();
    let now = h.now();
    assert_eq!(counted(&h.record_usage(&acme, "reports", 1, "c1", now).await.unwrap()).0, 1);
    // The next batch's receipt is written, then the governor panics before applying it: its
    // supervisor restarts it and it replays.
    h.inject_crash(&acme, GovernorKind::Quota, &resource("reports"), CrashPoint::AfterNextAppend)
        .await
        .unwrap();
    let second = h.record_usage(&acme, "reports", 2, "c2", now).await;
    match &second {
        Ok(r) => assert_eq!(counted(r).0, 3),
        // Not acknowledged: a retry with the same id is safe either way.
        Err(_) => {
            let r = h.record_usage(&acme, "reports", 2, "c2", now).await.unwrap();
            assert!(matches!(
                r,
                UsageRecorded::Counted { value: 3, .. } | UsageRecorded::Duplicate
            ));
        }
    }
    assert_eq!(counted(&h.record_usage(&acme, "reports", 1, "c3", now).await.unwrap()).0, 4);
    rt.shutdown().await.unwrap();

    // What the receipts say after a restart: every acknowledged event, once.
    let rt = builder().catalog(pricing()).data_dir(&data).start().await.unwrap();
    let h = rt.handle();
    for id in ["c1", "c2", "c3"] {
        assert_eq!(
            h.record_usage(&acme, "reports", 1, id, now).await.unwrap(),
            UsageRecorded::Duplicate
        );
    }
    assert_eq!(counted(&h.record_usage(&acme, "reports", 1, "c4", now).await.unwrap()).0, 5);
    rt.shutdown().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_meter_the_plan_prices_without_limiting_is_counted_per_month() {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    // Starter prices api_calls (docs/pricing.md) but sets no limit on them.
    let r = h.record_usage(&acme, "api_calls", 1_500, "c1", h.now()).await.unwrap();
    assert!(
        matches!(r, UsageRecorded::Counted { value: 1_500, limit: None, quota: "normal", .. }),
        "{r:?}"
    );
    let receipt =
        h.receipts(&acme, Some(GovernorKind::Quota), Some(&resource("api_calls"))).unwrap();
    assert_eq!(receipt[0].body.args.get("total").map(String::as_str), Some("1500"));
    // A meter neither limited nor priced is still refused.
    let e = h.record_usage(&acme, "gpu_hours", 1, "g1", h.now()).await.unwrap_err();
    assert_eq!(e.code(), "bad_usage");
    rt.shutdown().await.unwrap();
}

/// One script of usage and checks on `acme`, with `evict` between its steps (at once, or after
/// the rate limiter's bucket refilled); the transcript of every answer.
async fn evicted_or_not(evict: bool) -> (Vec<String>, Vec<(usize, usize)>) {
    let (rt, acme) = acme_on_starter(builder()).await;
    let h = rt.handle();
    let mut out = Vec::new();
    let mut resident = Vec::new();
    let passivate = |h: govern_runtime::RuntimeHandle| async move {
        if evict {
            h.passivate_idle(Duration::ZERO).await;
        }
        h.resident_tenant_states()
    };
    let now = h.now();
    for i in 0..7 {
        let r = h.record_usage(&acme, "reports", 1, &format!("e{i}"), now).await;
        out.push(format!("{r:?}"));
    }
    // The rate's bucket is spent: an eviction now keeps it (the sixth call is refused either way).
    for _ in 0..5 {
        out.push(format!("{:?}", h.check(&acme, "api_access", "call", 1)));
    }
    resident.push(passivate(h.clone()).await);
    out.push(format!("{:?}", h.check(&acme, "api_access", "call", 1)));
    out.push(format!("{:?}", h.check(&acme, "report_builder", "create", 4)));
    // Two seconds on: the bucket is full again, everything idle goes.
    tokio::time::advance(Duration::from_secs(2)).await;
    resident.push(passivate(h.clone()).await);
    // A check first: the counters come back from the ledger on its path (7 used of 10).
    out.push(format!("{:?}", h.check(&acme, "report_builder", "create", 3)));
    out.push(format!("{:?}", h.check(&acme, "report_builder", "create", 4)));
    out.push(format!("{:?}", h.meter_usage(&acme)));
    resident.push(passivate(h.clone()).await);
    // Usage first: an acknowledged id is a duplicate still, new ones count on from 7.
    for id in ["e3", "e6", "e7", "e8", "e8", "e9"] {
        let r = h.record_usage(&acme, "reports", 1, id, h.now()).await;
        out.push(format!("{r:?}"));
    }
    resident.push(passivate(h.clone()).await);
    out.push(format!("{:?}", h.meter_usage(&acme)));
    out.push(format!("{:?}", h.check(&acme, "report_builder", "create", 1)));
    out.push(format!("{:?}", h.check(&acme, "sso", "login", 1)));
    for _ in 0..6 {
        out.push(format!("{:?}", h.check(&acme, "api_access", "call", 1)));
    }
    // The next month the counter starts again, evicted or not.
    tokio::time::advance(Duration::from_millis(31 * govern_governors::DAY_MS)).await;
    resident.push(passivate(h.clone()).await);
    out.push(format!("{:?}", h.record_usage(&acme, "reports", 1, "e10", h.now()).await));
    out.push(format!("{:?}", h.meter_usage(&acme)));
    // The counts of the checks, receipted: the same records either way.
    h.flush_check_counts().await;
    let audit: Vec<String> = h
        .receipts(&acme, Some(GovernorKind::Audit), None)
        .unwrap()
        .iter()
        .map(|r| format!("{} {:?}", r.body.command, r.body.args))
        .collect();
    out.push(format!("{audit:#?}"));
    rt.shutdown().await.unwrap();
    (out, resident)
}

#[tokio::test(start_paused = true)]
async fn an_evicted_tenant_decides_counts_and_deduplicates_as_its_twin_never_evicted() {
    let (evicted, resident) = evicted_or_not(true).await;
    let (kept, kept_resident) = evicted_or_not(false).await;
    assert_eq!(evicted, kept);
    // The twin's transcript is what it says: 7 + 3 fits, duplicates, then 10 of 10.
    let text = kept.join("\n");
    assert!(text.contains("Duplicate"), "{text}");
    assert!(text.contains("quota_exceeded"), "{text}");
    assert!(text.contains("rate_limited"), "{text}");
    // Check inputs and usage counters resident after each step's eviction: the counters go
    // every time; the inputs stay while the plan's rate bucket (5 a second) may not be full
    // again, that is within a second of their last use, and go after two seconds.
    assert_eq!(resident, [(1, 0), (0, 0), (1, 0), (1, 0), (0, 0)]);
    assert_eq!(kept_resident, [(1, 1); 5]);
}

#[tokio::test(start_paused = true)]
async fn the_periodic_sweep_evicts_an_idle_tenants_commercial_state_and_its_next_use_rebuilds_it() {
    let (rt, acme) = acme_on_starter(builder().idle_after(Duration::from_secs(10))).await;
    let h = rt.handle();
    let r = h.record_usage(&acme, "reports", 9, "e1", h.now()).await.unwrap();
    assert_eq!(counted(&r), (9, vec!["warning", "throttle"], "throttled"));
    assert!(h.check(&acme, "report_builder", "create", 1).unwrap().is_allowed());
    assert_eq!(h.resident_tenant_states(), (1, 1));
    // Idle for 10 s: a sweep (every 5 s, on the paused clock) evicts both.
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(h.resident_tenant_states(), (0, 0));
    // Rebuilt at the next use: 9 of 10 used, the id still a duplicate.
    let d = h.check(&acme, "report_builder", "create", 2).unwrap();
    assert_eq!(d.refusal().map(|r| r.code), Some("quota_exceeded"));
    // The check of a metered feature read the counters back.
    assert_eq!(h.resident_tenant_states(), (1, 1));
    tokio::time::sleep(Duration::from_secs(16)).await;
    assert_eq!(h.resident_tenant_states(), (0, 0));
    assert_eq!(
        h.record_usage(&acme, "reports", 9, "e1", h.now()).await.unwrap(),
        UsageRecorded::Duplicate
    );
    assert_eq!(h.resident_tenant_states(), (1, 1));
    rt.shutdown().await.unwrap();
}
