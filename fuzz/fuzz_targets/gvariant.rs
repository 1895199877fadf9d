#![no_main]
use libfuzzer_sys::fuzz_target;
// A GVariant of any type: a variant carries its own type string, so the
// type parser is fuzzed too; then the metadata dictionaries objects use.
use strata_store::gvariant::{Type, Value};
fuzz_target!(|data: &[u8]| {
    for ty in ["v", "a{sv}", "(a(say)a(sayay))"] {
        let ty = Type::parse(ty).expect("static type");
        if let Ok(v) = Value::from_bytes(&ty, data) {
            // What parses re-encodes to the same bytes (normal form).
            assert_eq!(v.to_bytes(), data, "{ty:?}");
            let _ = v.to_text();
        }
    }
});
