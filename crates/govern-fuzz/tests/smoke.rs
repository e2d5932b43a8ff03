//! Every fuzz target's body over its seed corpus and a bounded number of inputs mutated from
//! it (a fixed-seed generator, no coverage feedback): what `cargo test` runs of the fuzzing,
//! in a few seconds. `GOVERN_FUZZ_SMOKE_INPUTS` sets the mutated inputs per target (default
//! below); `UPDATE_DOCS=1` writes the generated seeds to `fuzz/corpus/<target>/`.

use std::path::{Path, PathBuf};

use govern_fuzz::TARGETS;
use govern_fuzz::mutate::{Rng, mutate};
use govern_fuzz::seeds::Seed;

/// Mutated inputs per target by default, so that all six run in a few seconds.
const INPUTS_DEFAULT: usize = 1_500;
/// The `http` and the two segment targets cost more per input (a request through the
/// runtime; a ledger opened twice): this fraction of the others' count.
const COSTLY_DIVISOR: usize = 5;
/// The mutated inputs' size bound (the engine's default `-max_len` is 4 096; the seeds are
/// larger, and mutations may grow them a little).
const INPUT_BYTES_MAX: usize = 64 * 1024;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn corpus(target: &str) -> PathBuf {
    root().join("fuzz/corpus").join(target)
}

/// The generated seeds of every target, written to the corpus under `UPDATE_DOCS=1`.
fn seeds() -> Vec<Seed> {
    let seeds = govern_fuzz::seeds::all(&root()).expect("seeds");
    if std::env::var_os("UPDATE_DOCS").is_some() {
        for s in &seeds {
            let dir = corpus(s.target);
            std::fs::create_dir_all(&dir).expect("corpus dir");
            std::fs::write(dir.join(&s.name), &s.bytes).expect("write seed");
        }
    }
    seeds
}

/// The target's corpus: its generated seeds, then every file of its corpus directory (the
/// committed seeds and the inputs of crashes found, kept as regressions).
fn inputs(target: &str, seeds: &[Seed]) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = seeds
        .iter()
        .filter(|s| s.target == target)
        .map(|s| (format!("generated {}", s.name), s.bytes.clone()))
        .collect();
    if let Ok(dir) = std::fs::read_dir(corpus(target)) {
        let mut files: Vec<PathBuf> = dir.filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        for f in files {
            let bytes = std::fs::read(&f).expect("corpus file");
            out.push((f.display().to_string(), bytes));
        }
    }
    out
}

fn run_one(target: &str, run: fn(&[u8]), name: &str, input: &[u8]) {
    if std::panic::catch_unwind(|| run(input)).is_err() {
        let hex: String = input.iter().map(|b| format!("{b:02x}")).collect();
        panic!("target {target} failed on {name}; input ({} bytes, hex): {hex}", input.len());
    }
}

#[test]
fn every_target_survives_its_corpus_and_mutations_of_it() {
    let seeds = seeds();
    let budget: usize = std::env::var("GOVERN_FUZZ_SMOKE_INPUTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(INPUTS_DEFAULT);
    for target in TARGETS {
        let corpus = inputs(target.name, &seeds);
        assert!(corpus.len() >= 2, "{}: {} seeds", target.name, corpus.len());
        for (name, input) in &corpus {
            run_one(target.name, target.run, name, input);
        }
        let n = if matches!(target.name, "http" | "segment" | "segment_records") {
            budget / COSTLY_DIVISOR
        } else {
            budget
        };
        let mut rng = Rng::new(0x5eed ^ target.name.len() as u64);
        for i in 0..n {
            let (_, base) = &corpus[rng.below(corpus.len())];
            let (_, other) = &corpus[rng.below(corpus.len())];
            let mut input = base.clone();
            mutate(&mut rng, &mut input, other, INPUT_BYTES_MAX);
            run_one(target.name, target.run, &format!("mutation {i}"), &input);
        }
    }
}

/// The properties can fail: a receipt record with one byte changed in its hash still decodes
/// (the decoder checks form, not hash), but a record whose bytes trail is refused by both
/// decoders alike; a header that parses but carries a MAC of the wrong length is refused.
#[test]
fn the_targets_see_what_they_check() {
    let seeds = seeds();
    let record = &seeds.iter().find(|s| s.target == "receipt").expect("a receipt seed").bytes;
    assert!(govern_receipt::Receipt::decode(record).is_ok());
    let mut trailing = record.clone();
    trailing.push(0);
    assert!(govern_receipt::Receipt::decode(&trailing).is_err());
    govern_fuzz::receipt::run(&trailing);
    let segment = &seeds.iter().find(|s| s.target == "segment").expect("a segment seed").bytes;
    let files = govern_fuzz::segment::files(segment);
    assert_eq!(files.len(), 4, "the seed ledger's segments: {:?}", files.keys());
    let result = std::panic::catch_unwind(|| {
        govern_fuzz::assert_position("a\nb", 3, 1, "past the end");
    });
    assert!(result.is_err(), "a position past the text passes");
}
