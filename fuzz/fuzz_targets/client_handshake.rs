#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| nextrush_fuzz::client_handshake(data));
