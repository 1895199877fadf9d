#![no_main]
use libfuzzer_sys::fuzz_target;
// `--timestamp` and durations as the command line parses them.
#[path = "../../crates/cli/src/time.rs"]
#[allow(dead_code, missing_docs)]
mod time;
fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = time::parse_timestamp(s) {
        let _ = time::format_rfc3339(t);
    }
    let _ = time::parse_duration(s);
});
