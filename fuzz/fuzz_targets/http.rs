//! libFuzzer target `http`: the body is `govern_fuzz::http::run` (its properties are documented
//! there and in docs/reliability.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govern_fuzz::http::run(data));
