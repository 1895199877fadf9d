#![no_main]
use libfuzzer_sys::fuzz_target;
// Content object headers: `.filez` (size-prefixed archive header, then
// zlib), the bare-user `user.ostreemeta` value, the split of a stream.
use strata_store::FileHeader;
use strata_store::objects::file_header::{read_prefixed, split_prefixed};
fuzz_target!(|data: &[u8]| {
    if let Ok(header) = read_prefixed(&mut &data[..], data.len() as u64, 1 << 20) {
        let _ = FileHeader::from_archive(&header);
    }
    let _ = FileHeader::from_archive(data);
    let _ = FileHeader::from_bare_user_meta(data);
    let _ = split_prefixed(data);
});
