//! Restart decisions: every strategy, restart type and exit; the intensity window; edge indices.

use std::time::Duration;

use proptest::prelude::*;
use proptest::strategy::Strategy as Gen;

use super::{Decision, Exit, Intensity, RestartLog, RestartType, Strategy, decide, shutdown_order};

use Exit::{Failed, Normal, Shutdown};
use RestartType::{Permanent, Temporary, Transient};
use Strategy::{OneForAll, OneForOne, RestForOne};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn restart(stop: &[usize], remove: &[usize], start: &[usize]) -> Decision {
    Decision::Restart { stop: stop.to_vec(), remove: remove.to_vec(), start: start.to_vec() }
}

fn escalate(stop: &[usize]) -> Decision {
    Decision::Escalate { stop: stop.to_vec() }
}

/// One decision with a fresh log and the default intensity; also returns the log's length.
fn decide_once(
    strategy: Strategy,
    children: &[RestartType],
    failed: usize,
    exit: Exit,
) -> (Decision, usize) {
    let mut log = RestartLog::new();
    let d = decide(strategy, children, failed, exit, &mut log, Intensity::default(), secs(0));
    (d, log.len())
}

#[test]
fn every_strategy_type_and_exit_for_the_middle_of_three() {
    let remove = Decision::Remove { child: 1 };
    let one = restart(&[], &[], &[1]);
    let all = restart(&[2, 0], &[], &[0, 1, 2]);
    let rest = restart(&[2], &[], &[1, 2]);
    #[rustfmt::skip]
    let table = [
        (OneForOne,  Permanent, Normal,   one.clone()),
        (OneForOne,  Permanent, Shutdown, one.clone()),
        (OneForOne,  Permanent, Failed,   one.clone()),
        (OneForOne,  Transient, Normal,   remove.clone()),
        (OneForOne,  Transient, Shutdown, remove.clone()),
        (OneForOne,  Transient, Failed,   one),
        (OneForOne,  Temporary, Normal,   remove.clone()),
        (OneForOne,  Temporary, Shutdown, remove.clone()),
        (OneForOne,  Temporary, Failed,   remove.clone()),
        (OneForAll,  Permanent, Normal,   all.clone()),
        (OneForAll,  Permanent, Shutdown, all.clone()),
        (OneForAll,  Permanent, Failed,   all.clone()),
        (OneForAll,  Transient, Normal,   remove.clone()),
        (OneForAll,  Transient, Shutdown, remove.clone()),
        (OneForAll,  Transient, Failed,   all),
        (OneForAll,  Temporary, Normal,   remove.clone()),
        (OneForAll,  Temporary, Shutdown, remove.clone()),
        (OneForAll,  Temporary, Failed,   remove.clone()),
        (RestForOne, Permanent, Normal,   rest.clone()),
        (RestForOne, Permanent, Shutdown, rest.clone()),
        (RestForOne, Permanent, Failed,   rest.clone()),
        (RestForOne, Transient, Normal,   remove.clone()),
        (RestForOne, Transient, Shutdown, remove.clone()),
        (RestForOne, Transient, Failed,   rest),
        (RestForOne, Temporary, Normal,   remove.clone()),
        (RestForOne, Temporary, Shutdown, remove.clone()),
        (RestForOne, Temporary, Failed,   remove),
    ];
    let mut seen = Vec::new();
    for (strategy, middle, exit, expected) in table {
        // A transient first sibling is still restarted by one_for_all: only temporaries are not.
        let children = [Transient, middle, Permanent];
        let (d, logged) = decide_once(strategy, &children, 1, exit);
        let context = format!("{strategy:?} {middle:?} {exit:?}");
        let expected_logged = usize::from(matches!(expected, Decision::Restart { .. }));
        assert_eq!(d, expected, "{context}");
        assert_eq!(logged, expected_logged, "{context}: only a due restart is logged");
        assert_eq!(middle.restarts_after(exit), expected_logged == 1, "{context}");
        seen.push((strategy, middle, exit));
    }
    seen.sort_by_key(|k| format!("{k:?}"));
    seen.dedup();
    assert_eq!(seen.len(), 27, "every combination once");
}

#[test]
fn default_intensity_is_three_in_five_seconds() {
    const I: Intensity = Intensity::new(3, Duration::from_secs(5));
    assert_eq!(Intensity::default(), I);
    assert_eq!(I.restarts_max, 3);
    assert_eq!(I.window, secs(5));
}

#[test]
fn three_restarts_in_the_window_pass_and_the_fourth_escalates() {
    let children = [Permanent, Permanent, Permanent];
    let intensity = Intensity::default();
    let mut log = RestartLog::new();
    for (t, logged) in [(0, 1), (1, 2), (2, 3)] {
        let d = decide(OneForOne, &children, 1, Failed, &mut log, intensity, secs(t));
        assert_eq!(d, restart(&[], &[], &[1]), "restart at {t}s");
        assert_eq!(log.len(), logged);
    }
    let d = decide(OneForOne, &children, 1, Failed, &mut log, intensity, secs(3));
    assert_eq!(d, escalate(&[2, 1, 0]));
    assert_eq!(log.len(), 4);
    // Still spent a moment later: the supervisor is expected to be gone by then anyway.
    let d = decide(OneForOne, &children, 0, Failed, &mut log, intensity, secs(4));
    assert_eq!(d, escalate(&[2, 1, 0]));
    assert_eq!(log.len(), 4, "bounded at restarts_max + 1");
}

#[test]
fn an_entry_exactly_one_window_old_still_counts() {
    let intensity = Intensity::default();
    let mut log = RestartLog::new();
    for t in [0, 1, 2] {
        assert!(log.record(intensity, secs(t)));
    }
    // 5 s after the first: OTP keeps R >= Now - Period, so the restart at 0 s still counts.
    assert!(!log.record(intensity, secs(5)));
    assert_eq!(log.len(), 4);

    let mut log = RestartLog::new();
    for t in [0, 1, 2] {
        assert!(log.record(intensity, secs(t)));
    }
    // One nanosecond later, the restart at 0 s has left the window.
    assert!(log.record(intensity, secs(5) + Duration::from_nanos(1)));
    assert_eq!(log.len(), 3);
}

#[test]
fn restarts_spaced_beyond_the_window_never_escalate() {
    let children = [Permanent, Transient, Permanent];
    let intensity = Intensity::default();
    let mut log = RestartLog::new();
    for n in 0..1_000 {
        let d = decide(RestForOne, &children, 1, Failed, &mut log, intensity, secs(6 * n));
        assert_eq!(d, restart(&[2], &[], &[1, 2]), "restart {n}");
        assert_eq!(log.len(), 1, "older entries are dropped");
    }
}

#[test]
fn restarts_at_the_allowed_rate_never_escalate() {
    // Three restarts every 5 s plus a nanosecond: always three in any window.
    let intensity = Intensity::default();
    let mut log = RestartLog::new();
    let step = Duration::from_secs(5) / 3 + Duration::from_nanos(1);
    let mut now = Duration::ZERO;
    for n in 0..1_000 {
        assert!(log.record(intensity, now), "restart {n} at {now:?}");
        assert!(log.len() <= 3);
        now += step;
    }
}

#[test]
fn the_log_stays_bounded_however_many_restarts() {
    let intensity = Intensity::default();
    let mut log = RestartLog::new();
    for n in 0..10_000 {
        let within = log.record(intensity, secs(1));
        assert_eq!(within, n < 3);
        assert_eq!(log.len(), (n + 1).min(4));
    }
    log.clear();
    assert!(log.is_empty());
    assert!(log.record(intensity, secs(1)), "a cleared log starts over");
}

#[test]
fn a_window_longer_than_the_elapsed_time_keeps_everything() {
    // now - window would be negative: nothing is dropped, nothing underflows.
    let intensity = Intensity::new(2, secs(60));
    let mut log = RestartLog::new();
    assert!(log.record(intensity, secs(1)));
    assert!(log.record(intensity, secs(30)));
    assert!(!log.record(intensity, secs(59)));
    assert_eq!(log.len(), 3);
}

#[test]
fn a_shrunk_intensity_trims_the_log() {
    let mut log = RestartLog::new();
    for t in 0..5 {
        assert!(log.record(Intensity::new(10, secs(60)), secs(t)));
    }
    assert_eq!(log.len(), 5);
    assert!(!log.record(Intensity::new(1, secs(60)), secs(5)));
    assert_eq!(log.len(), 2);
}

#[test]
fn the_largest_intensity_does_not_overflow() {
    let intensity = Intensity::new(u32::MAX, Duration::MAX);
    let mut log = RestartLog::new();
    for t in 0..100 {
        assert!(log.record(intensity, secs(t)));
    }
    assert_eq!(log.len(), 100);
}

#[test]
fn restarts_max_zero_escalates_any_restart() {
    let children = [Permanent, Transient, Temporary];
    let intensity = Intensity::new(0, secs(5));
    for strategy in [OneForOne, OneForAll, RestForOne] {
        let mut log = RestartLog::new();
        let d = decide(strategy, &children, 0, Normal, &mut log, intensity, secs(0));
        assert_eq!(d, escalate(&[2, 1, 0]), "{strategy:?}");
        assert_eq!(log.len(), 1);

        // A removal is not a restart: it neither escalates nor is logged.
        let mut log = RestartLog::new();
        for (failed, exit) in [(1, Normal), (1, Shutdown), (2, Failed)] {
            let d = decide(strategy, &children, failed, exit, &mut log, intensity, secs(0));
            assert_eq!(d, Decision::Remove { child: failed }, "{strategy:?}");
        }
        assert!(log.is_empty());
        let d = decide(strategy, &children, 1, Failed, &mut log, intensity, secs(0));
        assert_eq!(d, escalate(&[2, 1, 0]), "{strategy:?}");
    }
}

#[test]
fn clean_exits_of_transients_never_spend_the_budget() {
    let children = [Transient, Transient];
    let intensity = Intensity::default();
    let mut log = RestartLog::new();
    for n in 0..100 {
        let exit = if n % 2 == 0 { Normal } else { Shutdown };
        let d = decide(OneForAll, &children, n % 2, exit, &mut log, intensity, secs(0));
        assert_eq!(d, Decision::Remove { child: n % 2 });
    }
    assert!(log.is_empty());
}

#[test]
fn rest_for_one_with_the_failed_child_first() {
    let children = [Permanent, Transient, Temporary, Permanent];
    let (d, logged) = decide_once(RestForOne, &children, 0, Failed);
    assert_eq!(d, restart(&[3, 2, 1], &[2], &[0, 1, 3]));
    assert_eq!(logged, 1);
}

#[test]
fn rest_for_one_with_the_failed_child_last() {
    let children = [Permanent, Transient, Temporary, Permanent];
    let (d, _) = decide_once(RestForOne, &children, 3, Normal);
    assert_eq!(d, restart(&[], &[], &[3]));
}

#[test]
fn rest_for_one_leaves_earlier_temporaries_alone() {
    let children = [Temporary, Permanent, Temporary];
    let (d, _) = decide_once(RestForOne, &children, 1, Shutdown);
    assert_eq!(d, restart(&[2], &[2], &[1]));
}

#[test]
fn one_for_all_removes_temporaries_instead_of_restarting_them() {
    let children = [Temporary, Permanent, Temporary, Transient];
    let (d, logged) = decide_once(OneForAll, &children, 1, Failed);
    assert_eq!(d, restart(&[3, 2, 0], &[0, 2], &[1, 3]));
    assert_eq!(logged, 1);
}

#[test]
fn one_for_all_with_an_only_child() {
    let (d, _) = decide_once(OneForAll, &[Transient], 0, Failed);
    assert_eq!(d, restart(&[], &[], &[0]));
}

#[test]
fn an_index_outside_the_children_is_removed_without_panic() {
    for strategy in [OneForOne, OneForAll, RestForOne] {
        for exit in [Normal, Shutdown, Failed] {
            assert_eq!(
                decide_once(strategy, &[Permanent, Permanent, Permanent], 3, exit),
                (Decision::Remove { child: 3 }, 0)
            );
            assert_eq!(
                decide_once(strategy, &[Permanent], usize::MAX, exit),
                (Decision::Remove { child: usize::MAX }, 0)
            );
            assert_eq!(decide_once(strategy, &[], 0, exit), (Decision::Remove { child: 0 }, 0));
        }
    }
}

#[test]
fn shutdown_is_in_reverse_start_order() {
    assert_eq!(shutdown_order(0).collect::<Vec<_>>(), Vec::<usize>::new());
    assert_eq!(shutdown_order(1).collect::<Vec<_>>(), [0]);
    assert_eq!(shutdown_order(4).collect::<Vec<_>>(), [3, 2, 1, 0]);
    assert_eq!(shutdown_order(1_000_000).len(), 1_000_000);
}

#[test]
fn exits_and_restart_types() {
    assert!(Failed.is_failure());
    assert!(!Normal.is_failure() && !Shutdown.is_failure());
    assert_eq!(Strategy::default(), OneForOne);
    assert_eq!(RestartType::default(), Permanent);
    assert_eq!(RestartLog::default(), RestartLog::new());
}

fn strategy() -> impl Gen<Value = Strategy> {
    prop_oneof![Just(OneForOne), Just(OneForAll), Just(RestForOne)]
}

fn restart_type() -> impl Gen<Value = RestartType> {
    prop_oneof![Just(Permanent), Just(Transient), Just(Temporary)]
}

fn exit() -> impl Gen<Value = Exit> {
    prop_oneof![Just(Normal), Just(Shutdown), Just(Failed)]
}

fn strictly_ascending(v: &[usize]) -> bool {
    v.windows(2).all(|w| w[0] < w[1])
}

proptest! {
    #[test]
    fn decisions_are_ordered_and_in_range(
        strategy in strategy(),
        children in proptest::collection::vec(restart_type(), 0..8),
        restarts_max in 0..5u32,
        window_ms in 0..10_000u64,
        steps in proptest::collection::vec((0..10usize, exit(), 0..3_000u64), 1..40),
    ) {
        let intensity = Intensity::new(restarts_max, Duration::from_millis(window_ms));
        let n = children.len();
        let mut log = RestartLog::new();
        let mut now = Duration::ZERO;
        for (failed, exit, dt_ms) in steps {
            now += Duration::from_millis(dt_ms);
            let before = log.len();
            let d = decide(strategy, &children, failed, exit, &mut log, intensity, now);
            prop_assert!(log.len() <= restarts_max as usize + 1);
            match d {
                Decision::Remove { child } => {
                    prop_assert_eq!(child, failed);
                    prop_assert_eq!(log.len(), before, "a removal is not logged");
                    prop_assert!(
                        failed >= n || !children[failed].restarts_after(exit)
                    );
                }
                Decision::Restart { stop, remove, start } => {
                    prop_assert!(failed < n && children[failed].restarts_after(exit));
                    prop_assert!(strictly_ascending(&start));
                    prop_assert!(strictly_ascending(&remove));
                    let mut stop_asc = stop.clone();
                    stop_asc.reverse();
                    prop_assert!(strictly_ascending(&stop_asc), "stop descends: {:?}", stop);
                    prop_assert!(stop.iter().chain(&remove).chain(&start).all(|&i| i < n));
                    prop_assert!(start.contains(&failed));
                    prop_assert!(!stop.contains(&failed));
                    prop_assert!(remove.iter().all(|i| stop.contains(i)));
                    prop_assert!(remove.iter().all(|&i| children[i] == Temporary));
                    prop_assert!(start.iter().all(|&i| children[i] != Temporary));
                    // Everything stopped is either removed or started again.
                    prop_assert_eq!(stop.len() + 1, remove.len() + start.len());
                }
                Decision::Escalate { stop } => {
                    prop_assert!(failed < n && children[failed].restarts_after(exit));
                    prop_assert_eq!(stop, shutdown_order(n).collect::<Vec<_>>());
                }
            }
        }
    }

    #[test]
    fn the_log_never_exceeds_its_bound(
        restarts_max in 0..6u32,
        window_ms in 0..5_000u64,
        times_ms in proptest::collection::vec(0..20_000u64, 0..200),
    ) {
        // Times in any order, including backwards: the bound holds regardless.
        let intensity = Intensity::new(restarts_max, Duration::from_millis(window_ms));
        let mut log = RestartLog::new();
        for t in times_ms {
            let within = log.record(intensity, Duration::from_millis(t));
            prop_assert!(log.len() <= restarts_max as usize + 1);
            prop_assert_eq!(within, log.len() <= restarts_max as usize);
        }
    }
}
