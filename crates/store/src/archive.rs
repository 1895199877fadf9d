//! The compressed content of archive-mode `.filez` objects: raw deflate.

use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;

/// The zlib level ostree uses for archive objects.
pub const DEFAULT_LEVEL: u32 = 6;

/// Compresses `content` as a raw deflate stream.
pub fn deflate(content: &[u8], level: u32) -> Vec<u8> {
    let mut enc = DeflateEncoder::new(
        Vec::with_capacity(content.len() / 2 + 64),
        Compression::new(level),
    );
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(content);
    enc.finish().unwrap_or_default()
}

/// Inflates a raw deflate stream that must hold exactly `size` bytes; a
/// stream that would inflate past the declared size is refused without
/// inflating the excess (a decompression bomb costs us nothing).
pub fn inflate(compressed: &[u8], size: u64) -> Result<Vec<u8>, String> {
    if size == 0 && compressed.is_empty() {
        return Ok(Vec::new());
    }
    let cap = usize::try_from(size).map_err(|_| format!("declared size {size} too large"))?;
    let mut out = Vec::with_capacity(cap.min(1 << 26));
    let mut dec = DeflateDecoder::new(compressed).take(size + 1);
    dec.read_to_end(&mut out)
        .map_err(|e| format!("bad compressed data: {e}"))?;
    if out.len() as u64 != size {
        return Err(format!(
            "content inflates to {}{} bytes, header declares {size}",
            if out.len() as u64 > size {
                "more than "
            } else {
                ""
            },
            out.len().min(cap)
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size_checks() {
        let data = b"hello hello hello hello".repeat(100);
        let z = deflate(&data, DEFAULT_LEVEL);
        assert_eq!(inflate(&z, data.len() as u64).expect("inflates"), data);
        assert!(
            inflate(&z, data.len() as u64 - 1).is_err(),
            "longer than declared"
        );
        assert!(
            inflate(&z, data.len() as u64 + 1).is_err(),
            "shorter than declared"
        );
        assert!(
            inflate(&z[..z.len() / 2], data.len() as u64).is_err(),
            "truncated"
        );
    }
}
