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
