//! The three example catalogs validated together in process (parse, schema, the checks across
//! files), and one bad file with many problems: what `govern plans validate` does after the
//! process has started.

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};

fn examples() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/plans");
    ["licensing.toml", "pricing.toml", "platform.toml"]
        .iter()
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(n)).unwrap_or_default();
            ((*n).to_owned(), text)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let owned = examples();
    let files: Vec<(&str, &str)> = owned.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    assert!(govern_plans::validate_files(&files).is_ok(), "the examples must validate");
    c.bench_function("validate_files/examples", |b| {
        b.iter(|| black_box(govern_plans::validate_files(black_box(&files))).is_ok());
    });
    // Every non-free plan's amount written as a float: one problem per such plan (8).
    let bad: Vec<(String, String)> = owned
        .iter()
        .map(|(n, t)| {
            (n.clone(), t.replace("amount = \"", "amount = ").replace("\", currency", ", currency"))
        })
        .collect();
    let bad: Vec<(&str, &str)> = bad.iter().map(|(n, t)| (n.as_str(), t.as_str())).collect();
    c.bench_function("validate_files/examples_with_problems", |b| {
        b.iter(|| black_box(govern_plans::validate_files(black_box(&bad))).is_err());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
