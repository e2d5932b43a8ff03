//! libFuzzer target `receipt`: the body is `govern_fuzz::receipt::run` (its properties are documented
//! there and in docs/reliability.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govern_fuzz::receipt::run(data));
