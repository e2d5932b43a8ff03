//! libFuzzer target `segment_records`: the body is `govern_fuzz::segment_records::run` (its
//! properties are documented there and in docs/reliability.md).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| govern_fuzz::segment_records::run(data));
