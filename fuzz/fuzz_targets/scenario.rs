//! libFuzzer target `scenario`: the body is `govern_fuzz::scenario::run` (its properties are documented
//! there and in docs/reliability.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govern_fuzz::scenario::run(data));
