#![no_main]
use libfuzzer_sys::fuzz_target;
// Every metadata object type a pull or fsck parses: commit, dirtree,
// dirmeta, detached metadata (.commitmeta, summary.sig).
use strata_store::objects::commit::parse_detached;
use strata_store::{Commit, DirMeta, DirTree};
fuzz_target!(|data: &[u8]| {
    if let Ok(c) = Commit::from_bytes(data) {
        let _ = c.ref_bindings();
    }
    if let Ok(t) = DirTree::from_bytes(data) {
        assert_eq!(t.to_bytes(), data, "a dirtree re-encodes to its bytes");
    }
    let _ = DirMeta::from_bytes(data);
    let _ = parse_detached(data);
});
