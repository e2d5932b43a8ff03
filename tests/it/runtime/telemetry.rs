//! The runtime's metrics (docs/metrics.md) as a recorder sees them: each test installs a
//! `DebuggingRecorder` as this thread's recorder (tokio's current-thread test runtime runs
//! every actor on it), so tests do not share counters, and reads the values back by name and
//! labels.

use std::collections::BTreeMap;
use std::time::Duration;

use govern_governors::GovernorKind;
use govern_governors::quota::{Command as QuotaCommand, Quota};
use govern_runtime::CrashPoint;
use govern_runtime::metric_names::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};

use super::{MINUTE, builder, quota, raw_command, resource, tenant};

/// A metric as read back: its name and sorted labels.
type Series = (String, Vec<(String, String)>);

/// Every series of a snapshot (which resets counters and histograms, as the recorder does).
fn read(snapshotter: &Snapshotter) -> BTreeMap<Series, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let mut labels: Vec<(String, String)> =
                key.labels().map(|l| (l.key().to_owned(), l.value().to_owned())).collect();
            labels.sort();
            ((key.name().to_owned(), labels), value)
        })
        .collect()
}

fn series(name: &str, labels: &[(&str, &str)]) -> Series {
    let mut labels: Vec<(String, String)> =
        labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    labels.sort();
    (name.to_owned(), labels)
}

fn counter(read: &BTreeMap<Series, DebugValue>, name: &str, labels: &[(&str, &str)]) -> u64 {
    match read.get(&series(name, labels)) {
        Some(DebugValue::Counter(n)) => *n,
        Some(other) => panic!("{name} {labels:?} is not a counter: {other:?}"),
        None => 0,
    }
}

fn gauge(read: &BTreeMap<Series, DebugValue>, name: &str, labels: &[(&str, &str)]) -> f64 {
    match read.get(&series(name, labels)) {
        Some(DebugValue::Gauge(v)) => v.into_inner(),
        other => panic!("{name} {labels:?} is not a gauge: {other:?}"),
    }
}

fn histogram(read: &BTreeMap<Series, DebugValue>, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
    match read.get(&series(name, labels)) {
        Some(DebugValue::Histogram(v)) => v.iter().map(|x| x.into_inner()).collect(),
        None => Vec::new(),
        Some(other) => panic!("{name} {labels:?} is not a histogram: {other:?}"),
    }
}

const SUB: (&str, &str) = ("governor", "subscription");

#[tokio::test(start_paused = true)]
async fn commands_refusals_latency_restarts_passivation_and_commits_are_recorded() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let dir = tempfile::tempdir().unwrap();
    let rt = builder().data_dir(dir.path()).root_restarts(1, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    sub.activate(None, "converted").await.unwrap();
    let q = h.governor::<Quota>(&acme, &resource("quota-1"));
    q.send(QuotaCommand::SendWarning, "ops").await.unwrap();
    // Rejected by the governor (twice), refused by the runtime (unknown tenant), and a raw
    // command whose arguments do not parse.
    assert_eq!(sub.archive("too soon").await.unwrap_err().code(), "invalid_transition");
    assert_eq!(sub.resume("not paused").await.unwrap_err().code(), "invalid_transition");
    let ghost = h.subscription(&tenant("ghost"), &resource("sub-1"));
    assert_eq!(ghost.start_trial("pro", 14, "x").await.unwrap_err().code(), "unknown_tenant");
    let bad = raw_command(&acme, GovernorKind::Subscription, "sub-1", "start_trial", &[]);
    assert_eq!(h.command(bad).await.unwrap_err().code(), "invalid_argument");

    // A crash: the governor is restarted with replay, and the next command accepted.
    sub.inject_crash(CrashPoint::Now).await.unwrap();
    sub.suspend("card declined").await.unwrap();
    // A domain supervisor's failure: the root restarts it, and its governor replays.
    assert!(h.inject_domain_crash(GovernorKind::Quota));
    q.send(QuotaCommand::ThrottleTraffic, "ops").await.unwrap();
    assert_eq!(h.domain_restarts(GovernorKind::Quota), 1);

    let mid = read(&snapshotter);
    assert_eq!(gauge(&mid, GOVERNORS_RESIDENT, &[SUB]), 1.0);
    assert_eq!(gauge(&mid, GOVERNORS_RESIDENT, &[("governor", "tenant")]), 1.0);
    assert_eq!(gauge(&mid, GOVERNORS_RESIDENT, &[("governor", "quota")]), 1.0);
    let accepted = [SUB, ("outcome", "accepted")];
    assert_eq!(counter(&mid, COMMANDS_TOTAL, &accepted), 3);
    assert_eq!(counter(&mid, COMMANDS_TOTAL, &[SUB, ("outcome", "rejected")]), 3);
    assert_eq!(counter(&mid, COMMANDS_TOTAL, &[SUB, ("outcome", "refused")]), 1);
    let tenant_accepted = [("governor", "tenant"), ("outcome", "accepted")];
    assert_eq!(counter(&mid, COMMANDS_TOTAL, &tenant_accepted), 2);
    let quota_accepted = [("governor", "quota"), ("outcome", "accepted")];
    assert_eq!(counter(&mid, COMMANDS_TOTAL, &quota_accepted), 2);
    let by_code = |outcome, code| {
        counter(&mid, COMMAND_REFUSALS_TOTAL, &[SUB, ("outcome", outcome), ("code", code)])
    };
    assert_eq!(by_code("rejected", "invalid_transition"), 2);
    assert_eq!(by_code("rejected", "invalid_argument"), 1);
    assert_eq!(by_code("refused", "unknown_tenant"), 1);
    // One latency per command, answered or not.
    let latencies = histogram(&mid, COMMAND_DURATION_SECONDS, &[SUB]);
    assert_eq!(latencies.len(), 7);
    assert!(latencies.iter().all(|s| s.is_finite() && *s >= 0.0 && *s < 60.0), "{latencies:?}");
    assert_eq!(counter(&mid, GOVERNOR_RESTARTS_TOTAL, &[SUB]), 1);
    assert_eq!(counter(&mid, GOVERNOR_QUARANTINES_TOTAL, &[SUB]), 0);
    let quota_domain = [("supervisor", "root"), ("child", "quota")];
    assert_eq!(counter(&mid, SUPERVISOR_RESTARTS_TOTAL, &quota_domain), 1);
    assert_eq!(counter(&mid, SUPERVISOR_ESCALATIONS_TOTAL, &[("supervisor", "root")]), 0);

    // Passivation: every resident governor leaves; the gauges follow.
    assert_eq!(h.passivate_idle(Duration::ZERO).await, 3);
    let after = read(&snapshotter);
    assert_eq!(counter(&after, GOVERNORS_PASSIVATED_TOTAL, &[SUB]), 1);
    assert_eq!(counter(&after, GOVERNORS_PASSIVATED_TOTAL, &[("governor", "tenant")]), 1);
    assert_eq!(gauge(&after, GOVERNORS_RESIDENT, &[SUB]), 0.0);
    assert_eq!(gauge(&after, GOVERNORS_RESIDENT, &[("governor", "quota")]), 0.0);

    // Every durable receipt was in exactly one group commit, each timed.
    let receipts = rt.shutdown().await.unwrap().next_seq;
    assert_eq!(receipts, 7);
    let end = read(&snapshotter);
    let batches: Vec<f64> =
        [mid, after, end].iter().flat_map(|r| histogram(r, LEDGER_COMMIT_RECEIPTS, &[])).collect();
    assert_eq!(batches.iter().sum::<f64>(), receipts as f64, "{batches:?}");
    assert!(batches.iter().all(|b| *b >= 1.0));
}

/// The receipt actor records a group commit's acceptances together (one clock read, one
/// increment per kind): each is still counted once and timed once, by kind, with the tenant
/// label too when opted in.
#[tokio::test(start_paused = true)]
async fn a_group_commits_acceptances_are_each_counted_and_timed_once() {
    const SUBS: usize = 30;
    const QUOTAS: usize = 10;
    for opted_in in [false, true] {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let dir = tempfile::tempdir().unwrap();
        let commits = govern_runtime::ledger::CommitOptions {
            batch_delay: Duration::from_millis(1),
            ..govern_runtime::ledger::CommitOptions::default()
        };
        let rt = builder()
            .data_dir(dir.path())
            .group_commit(commits)
            .metrics_tenant_labels(opted_in)
            .start()
            .await
            .unwrap();
        let h = rt.handle();
        let acme = tenant("acme");
        h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
        let subs = (0..SUBS).map(|i| {
            let s = h.subscription(&acme, &resource(&format!("sub-{i}")));
            async move { s.start_trial("pro", 14, "signed up").await }
        });
        let quotas = (0..QUOTAS).map(|i| {
            let q = h.governor::<Quota>(&acme, &resource(&format!("quota-{i}")));
            async move { q.send(QuotaCommand::SendWarning, "ops").await }
        });
        let (subs, quotas) = futures::future::join(
            futures::future::join_all(subs),
            futures::future::join_all(quotas),
        )
        .await;
        assert!(subs.iter().chain(&quotas).all(Result::is_ok), "{subs:?} {quotas:?}");
        let receipts = rt.shutdown().await.unwrap().next_seq;
        // The tenant's provisioning is two commands (provision, activate).
        assert_eq!(receipts, 2 + (SUBS + QUOTAS) as u64);
        let read = read(&snapshotter);

        let accepted = |kind: &'static str| {
            let mut labels = vec![("governor", kind), ("outcome", "accepted")];
            if opted_in {
                labels.push(("tenant", "acme"));
            }
            counter(&read, COMMANDS_TOTAL, &labels)
        };
        assert_eq!(accepted("subscription"), SUBS as u64);
        assert_eq!(accepted("quota"), QUOTAS as u64);
        assert_eq!(accepted("tenant"), 2);
        let latencies = |kind| histogram(&read, COMMAND_DURATION_SECONDS, &[("governor", kind)]);
        assert_eq!(latencies("subscription").len(), SUBS);
        assert_eq!(latencies("quota").len(), QUOTAS);
        assert!(latencies("subscription").iter().all(|s| s.is_finite() && *s >= 0.0));
        // They were answered in batches: the test tests what it says.
        let batches = histogram(&read, LEDGER_COMMIT_RECEIPTS, &[]);
        assert_eq!(batches.iter().sum::<f64>(), receipts as f64, "{batches:?}");
        assert!(batches.iter().any(|b| *b >= 10.0), "{batches:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn quarantines_and_escalations_are_counted_by_domain() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let _local = metrics::set_default_local_recorder(&recorder);
    let rt = builder().governor_restarts(0, MINUTE).root_restarts(0, MINUTE).start().await.unwrap();
    let h = rt.handle();
    let acme = tenant("acme");
    h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
    let sub = h.subscription(&acme, &resource("sub-1"));
    sub.start_trial("pro", 14, "signed up").await.unwrap();
    let q = h.governor::<Quota>(&acme, &resource("quota-1"));
    q.send(QuotaCommand::SendWarning, "ops").await.unwrap();
    // With no restart allowed, the first crash quarantines the governor.
    let (crashed, after) = tokio::join!(sub.inject_crash(CrashPoint::Now), sub.snapshot());
    crashed.unwrap();
    assert_eq!(after.unwrap_err().code(), "governor_unavailable");
    // With no restart allowed at the root, a domain's failure escalates: the runtime stops.
    assert!(h.inject_domain_crash(GovernorKind::Quota));
    q.send(QuotaCommand::ThrottleTraffic, "ops").await.unwrap_err();
    assert!(h.is_down());
    let read = read(&snapshotter);
    assert_eq!(counter(&read, GOVERNOR_QUARANTINES_TOTAL, &[SUB]), 1);
    assert_eq!(counter(&read, GOVERNOR_RESTARTS_TOTAL, &[SUB]), 0);
    assert_eq!(counter(&read, SUPERVISOR_ESCALATIONS_TOTAL, &[("supervisor", "root")]), 1);
    assert_eq!(
        counter(&read, SUPERVISOR_RESTARTS_TOTAL, &[("supervisor", "root"), ("child", "quota")]),
        0
    );
    rt.shutdown().await.unwrap();
}

/// The label names of every series of `name`.
fn label_names(read: &BTreeMap<Series, DebugValue>, name: &str) -> Vec<Vec<String>> {
    read.keys()
        .filter(|(n, _)| n == name)
        .map(|(_, labels)| labels.iter().map(|(k, _)| k.clone()).collect())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn tenant_ids_are_label_values_only_when_the_host_opts_in() {
    for opted_in in [false, true] {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        let _local = metrics::set_default_local_recorder(&recorder);
        let rt = builder().metrics_tenant_labels(opted_in).start().await.unwrap();
        let h = rt.handle();
        let acme = tenant("acme");
        h.provision_tenant(&acme, quota(), "onboarding").await.unwrap();
        let sub = h.subscription(&acme, &resource("sub-1"));
        sub.start_trial("pro", 14, "signed up").await.unwrap();
        sub.archive("too soon").await.unwrap_err();
        rt.shutdown().await.unwrap();
        let read = read(&snapshotter);

        fn with_tenant(
            labels: &[(&'static str, &'static str)],
        ) -> Vec<(&'static str, &'static str)> {
            let mut all = labels.to_vec();
            all.push(("tenant", "acme"));
            all
        }
        let accepted = [SUB, ("outcome", "accepted")];
        let rejected = [SUB, ("outcome", "rejected"), ("code", "invalid_transition")];
        if opted_in {
            assert_eq!(counter(&read, COMMANDS_TOTAL, &with_tenant(&accepted)), 1);
            assert_eq!(counter(&read, COMMAND_REFUSALS_TOTAL, &with_tenant(&rejected)), 1);
            // Only the command counters carry it, and they carry it on every series.
            for name in [COMMANDS_TOTAL, COMMAND_REFUSALS_TOTAL] {
                assert!(label_names(&read, name).iter().all(|l| l.contains(&"tenant".to_owned())));
            }
        } else {
            assert_eq!(counter(&read, COMMANDS_TOTAL, &accepted), 1);
            assert_eq!(counter(&read, COMMAND_REFUSALS_TOTAL, &rejected), 1);
        }
        let carrying: Vec<&Series> =
            read.keys().filter(|(_, labels)| labels.iter().any(|(_, v)| v == "acme")).collect();
        let allowed = if opted_in { vec![COMMANDS_TOTAL, COMMAND_REFUSALS_TOTAL] } else { vec![] };
        assert!(carrying.iter().all(|(n, _)| allowed.contains(&n.as_str())), "{carrying:?}");
        assert_eq!(!carrying.is_empty(), opted_in, "{carrying:?}");
        // Every series is one of the documented metrics.
        assert!(read.keys().all(|(n, _)| METRIC_NAMES.contains(&n.as_str())));
    }
}
