#![no_main]
use libfuzzer_sys::fuzz_target;
// Boot loader entries on the ESP, and their file names (boot counting).
use strata_boot::bls::{Entry, EntryName};
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = Entry::parse(text) {
        let _ = e.karg("root");
        let _ = Entry::parse(&e.to_text());
    }
    let _ = EntryName::parse(text.lines().next().unwrap_or(""));
});
