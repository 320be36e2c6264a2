#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nextrush_fuzz::connection(nextrush_proto::Role::Server, data));
