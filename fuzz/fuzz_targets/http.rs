#![no_main]
use libfuzzer_sys::fuzz_target;
// Responses as our pipelining HTTP/1.1 client reads them.
fuzz_target!(|data: &[u8]| {
    strata_remote::fuzzing::http_responses(data);
});
