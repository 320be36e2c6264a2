#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nextrush_fuzz::server_handshake(data));
