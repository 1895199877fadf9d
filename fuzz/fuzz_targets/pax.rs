#![no_main]
use libfuzzer_sys::fuzz_target;
// pax extended header records of a tar commit.
fuzz_target!(|data: &[u8]| {
    let _ = strata_store::write::tar::parse_pax(data);
});
