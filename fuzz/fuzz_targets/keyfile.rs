#![no_main]
use libfuzzer_sys::fuzz_target;
// Key files: the repository config, remotes, deployment origins.
use strata_store::config::Config;
fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(c) = Config::parse(text) {
        let names: Vec<String> = c.section_names().map(str::to_owned).collect();
        for s in &names {
            for (k, _) in c.entries(s) {
                let _ = c.get(s, k);
            }
        }
    }
});
