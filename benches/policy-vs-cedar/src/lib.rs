//! Nothing here: the benchmark is `benches/decide.rs`.
