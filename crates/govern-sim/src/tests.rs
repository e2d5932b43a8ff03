//! The simulator's own checks: a run is a function of its seed; runs with and without
//! faults keep every invariant over a few hundred seeds (CI's share; `govern simulate` and
//! `just simulate` run many more).

use super::{SimConfig, simulate};

#[test]
fn one_seed_gives_one_run() {
    let config = SimConfig { seed: 42, steps: 300, ..SimConfig::default() };
    let a = simulate(&config).unwrap_or_else(|e| panic!("{e}"));
    let b = simulate(&config).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b, "the same seed, the same run");
    assert!(a.accepted > 0 && a.rejected > 0, "{a:?}");
    let other = simulate(&SimConfig { seed: 43, ..config }).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(a.head, other.head, "another seed, another run");
}

#[test]
fn seeds_without_faults_keep_every_invariant() {
    for seed in 0..50 {
        let config = SimConfig { seed, steps: 200, faults: false, ..SimConfig::default() };
        if let Err(e) = simulate(&config) {
            panic!("{e}");
        }
    }
}

#[test]
fn seeds_with_faults_keep_every_invariant() {
    let mut faults = 0;
    for seed in 1_000..1_200 {
        let config = SimConfig { seed, steps: 200, ..SimConfig::default() };
        match simulate(&config) {
            Ok(report) => faults += report.faults.values().sum::<u64>(),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(faults > 200, "{faults} faults injected over 200 seeds");
}
