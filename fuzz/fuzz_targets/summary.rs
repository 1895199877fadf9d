#![no_main]
use libfuzzer_sys::fuzz_target;
// The summary a remote serves, and its signature file.
use strata_remote::summary::Summary;
fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Summary::from_bytes(data) {
        let _ = s.lookup("os/stable");
    }
    let _ = strata_store::objects::commit::parse_detached(data);
});
