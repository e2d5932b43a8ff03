//! The simulator's own checks: a run is a function of its seed (every count and the chain's
//! head); runs with and without
//! faults keep every invariant over a few hundred seeds (CI's share; `GOVERN_SIM_SEEDS=N`
//! runs N seeds of each kind, `govern simulate` and `just simulate` many more).

use super::{SimConfig, simulate};

/// Seeds of each kind: CI's share, or `GOVERN_SIM_SEEDS`.
fn seeds(ci: u64) -> u64 {
    std::env::var("GOVERN_SIM_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(ci)
}

#[test]
fn one_seed_gives_one_run() {
    let config = SimConfig { seed: 42, steps: 300, ..SimConfig::default() };
    let a = simulate(&config).unwrap_or_else(|e| panic!("{e}"));
    let b = simulate(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b, "the same seed, the same run");
    assert!(a.accepted > 0 && a.rejected > 0, "{a:?}");
    // The whole workload ran: usage (counted, found again, refused), checks, onboarding
    // sagas, and the runtime's own receipts taken into the model.
    assert!(a.usage_counted > 0 && a.usage_duplicates > 0 && a.usage_refused > 0, "{a:?}");
    assert!(a.checks_decided > 0 && a.sagas_completed + a.sagas_compensated > 0, "{a:?}");
    assert!(a.adopted > 0, "{a:?}");
    let other = simulate(&SimConfig { seed: 43, ..config }).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(a.head, other.head, "another seed, another run");
}

#[test]
fn seeds_without_faults_keep_every_invariant() {
    for seed in 0..seeds(100) {
        let config =
            SimConfig { seed, steps: 60, faults: false, check_every: 20, ..SimConfig::default() };
        if let Err(e) = simulate(&config) {
            panic!("{e}");
        }
    }
}

#[test]
fn seeds_with_faults_keep_every_invariant() {
    let n = seeds(150);
    let mut faults = 0;
    let mut timeouts = 0;
    let mut resumed = 0;
    for seed in 1_000..1_000 + n {
        let config = SimConfig { seed, steps: 50, check_every: 20, ..SimConfig::default() };
        match simulate(&config) {
            Ok(report) => {
                faults += report.faults.values().sum::<u64>();
                timeouts += report.timeouts_fired;
                resumed += report.sagas_resumed;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(faults >= n / 2, "{faults} faults injected over {n} seeds");
    assert!(timeouts > 0, "no state timeout fired over {n} seeds");
    assert!(resumed > 0, "no saga run resumed after a coordinator crash over {n} seeds");
}

#[test]
fn a_bad_configuration_is_refused_with_the_replay_command() {
    let e = simulate(&SimConfig { tenants: 0, ..SimConfig::default() }).unwrap_err();
    assert!(e.what.contains("tenants 1 to"), "{e}");
    assert!(e.replay.starts_with("govern simulate --seed 1 "), "{e}");
}
