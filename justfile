# govern: common tasks. `just` lists them. CI runs `.ci/run`, which is `just ci` spelled out.

default:
    @just --list --unsorted

# Run every test (the README's test command).
test:
    cargo test --workspace

# Lints as CI runs them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Format everything.
fmt:
    cargo fmt --all

# Build the API docs, warnings denied.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps

# Criterion benchmarks (figures go to docs/benchmarks.md with the command and core count).
bench:
    cargo bench --workspace

# Regenerate generated docs (governor pages, receipt test vectors) after an intended change.
bless:
    UPDATE_DOCS=1 cargo test --workspace

# Exactly what CI runs.
ci:
    bash .ci/run

# The deterministic simulator for as long as asked (e.g. `just simulate 30m`), from a seed
# (default: one drawn from the clock), 2 000 steps a run; a failing seed prints its replay.
simulate DURATION="10m" SEED=`date +%s`:
    cargo run --release --bin govern -- simulate --seed {{SEED}} --for {{DURATION}} --steps 2000

# Fuzz one target for SECONDS with libFuzzer, on the stable toolchain (docs/reliability.md,
# "Fuzzing"). Targets: scenario plans segment segment_records receipt webhook http. New inputs go to
# fuzz/work/TARGET (ignored by git); the seeds and regressions are read from fuzz/corpus/TARGET.
# Needs `cargo install cargo-fuzz`. A crash is written to fuzz/artifacts/TARGET/.
fuzz TARGET SECONDS="60":
    mkdir -p fuzz/work/{{TARGET}}
    cd fuzz && cargo +stable fuzz run --sanitizer none --release {{TARGET}} work/{{TARGET}} corpus/{{TARGET}} -- -max_total_time={{SECONDS}} -rss_limit_mb=2048 -max_len=65536 -timeout=10 -print_final_stats=1

# Fuzz every target for SECONDS each, one after the other.
fuzz-all SECONDS="60":
    for t in scenario plans segment segment_records receipt webhook http; do just fuzz $t {{SECONDS}} || exit 1; done
