//! The compressed content of archive-mode `.filez` objects: raw deflate.

use std::io::Write;

use flate2::Compression;
use flate2::write::DeflateEncoder;
use flate2::{Decompress, FlushDecompress, Status};

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

/// Objects up to this size are inflated in one call by libdeflate (about a
/// third faster than zlib here); larger ones stream through zlib, growing
/// the output as it comes.
const WHOLE_BUFFER_MAX: u64 = 64 << 20;
/// An [`Inflater`]'s buffer larger than this is not kept for the next object.
const KEEP_BUFFER: usize = 8 << 20;
/// Deflate cannot expand past 1032:1 (a 258-byte match costs at least 2 bits).
const MAX_RATIO: u64 = 1032;

/// Inflates a raw deflate stream that must hold exactly `size` bytes; a
/// stream that would inflate past the declared size is refused without
/// inflating the excess (a decompression bomb costs us nothing).
pub fn inflate(compressed: &[u8], size: u64) -> Result<Vec<u8>, String> {
    if size > WHOLE_BUFFER_MAX {
        return inflate_streaming(compressed, size);
    }
    check_ratio(compressed, size)?;
    let mut out = vec![0; size as usize];
    inflate_whole(&mut libdeflater::Decompressor::new(), compressed, &mut out)?;
    Ok(out)
}

/// [`inflate`] for many objects in turn: keeps its decompressor and output
/// buffer, so an object costs no allocation and no zeroing. One per thread.
#[derive(Default)]
pub struct Inflater {
    decompressor: Option<libdeflater::Decompressor>,
    out: Vec<u8>,
}

impl Inflater {
    /// Like [`inflate`]; the content lives until the next call.
    pub fn inflate(&mut self, compressed: &[u8], size: u64) -> Result<&[u8], String> {
        // Not kept after a large object: one per thread, they add up.
        if self.out.len() > KEEP_BUFFER {
            self.out = Vec::new();
        }
        if size > WHOLE_BUFFER_MAX {
            self.out = inflate_streaming(compressed, size)?;
            return Ok(&self.out);
        }
        check_ratio(compressed, size)?;
        let size = size as usize;
        if self.out.len() < size {
            self.out.resize(size, 0);
        }
        let out = &mut self.out[..size];
        let d = self
            .decompressor
            .get_or_insert_with(libdeflater::Decompressor::new);
        inflate_whole(d, compressed, out)?;
        Ok(out)
    }
}

fn check_ratio(compressed: &[u8], size: u64) -> Result<(), String> {
    if size > (compressed.len() as u64).saturating_mul(MAX_RATIO) + 1024 {
        return Err(format!(
            "header declares {size} bytes, more than {} compressed bytes can hold",
            compressed.len()
        ));
    }
    Ok(())
}

/// Inflates into exactly `out`: refused when the stream holds more or less.
fn inflate_whole(
    d: &mut libdeflater::Decompressor,
    compressed: &[u8],
    out: &mut [u8],
) -> Result<(), String> {
    let size = out.len();
    if size == 0 && compressed.is_empty() {
        return Ok(());
    }
    let got = d.deflate_decompress(compressed, out).map_err(|e| match e {
        libdeflater::DecompressionError::InsufficientSpace => {
            format!("content inflates to more than {size} bytes, header declares {size}")
        }
        libdeflater::DecompressionError::BadData => "bad compressed data".to_owned(),
    })?;
    if got != size {
        return Err(format!(
            "content inflates to {got} bytes, header declares {size}"
        ));
    }
    Ok(())
}

/// [`inflate`] for large objects: the output grows as the stream goes, so
/// a header's word alone never makes us allocate much.
fn inflate_streaming(compressed: &[u8], size: u64) -> Result<Vec<u8>, String> {
    check_ratio(compressed, size)?;
    let cap = usize::try_from(size).map_err(|_| format!("declared size {size} too large"))?;
    // One byte of room past the declared size, to notice a stream that
    // goes on. The first allocation is capped: the size is the server's word.
    let mut out = Vec::with_capacity(cap.min(1 << 26).saturating_add(1));
    let mut dec = Decompress::new(false);
    loop {
        if out.len() == out.capacity() {
            out.reserve((cap.saturating_add(1) - out.len()).min(1 << 26));
        }
        let (before_in, before_out) = (dec.total_in(), out.len());
        let status = dec
            .decompress_vec(
                &compressed[before_in as usize..],
                &mut out,
                FlushDecompress::Finish,
            )
            .map_err(|e| format!("bad compressed data: {e}"))?;
        if out.len() > cap {
            return Err(format!(
                "content inflates to more than {cap} bytes, header declares {size}"
            ));
        }
        if status == Status::StreamEnd {
            break;
        }
        if dec.total_in() == before_in && out.len() == before_out {
            return Err(format!(
                "bad compressed data: the stream ends early, after {} of {size} bytes",
                out.len()
            ));
        }
    }
    if out.len() != cap {
        return Err(format!(
            "content inflates to {} bytes, header declares {size}",
            out.len()
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

    #[test]
    fn inflater_reuses_its_buffer() {
        let mut i = Inflater::default();
        let big = b"0123456789".repeat(1000);
        let small = b"abc".to_vec();
        for data in [&big, &small, &big, &Vec::new()] {
            let z = deflate(data, DEFAULT_LEVEL);
            assert_eq!(
                i.inflate(&z, data.len() as u64).expect("inflates"),
                &data[..]
            );
        }
        // Past KEEP_BUFFER, the buffer is let go before the next object.
        let large = vec![7u8; KEEP_BUFFER + 1];
        let z = deflate(&large, 1);
        assert_eq!(
            i.inflate(&z, large.len() as u64).expect("large"),
            &large[..]
        );
        let z = deflate(&small, DEFAULT_LEVEL);
        assert_eq!(i.inflate(&z, 3).expect("small after large"), &small[..]);
        assert!(i.out.capacity() < KEEP_BUFFER, "the large buffer is gone");
        assert!(i.inflate(&z, 2).is_err(), "longer than declared");
        assert!(i.inflate(&z, 4).is_err(), "shorter than declared");
    }

    #[test]
    fn empty_and_larger_than_first_allocation() {
        assert_eq!(inflate(&deflate(b"", 6), 0).expect("empty"), b"");
        assert!(inflate(&deflate(b"x", 6), 0).is_err(), "longer than 0");
        // A header's word alone never makes us allocate: 32 MiB from 3 bytes.
        let err = inflate(&deflate(b"x", 6), 32 << 20).expect_err("bomb");
        assert!(err.contains("more than"), "{err}");
        // Past the first 64 MiB allocation: the output grows as needed.
        let big: Vec<u8> = (0..(65u32 << 20)).map(|i| (i % 251) as u8).collect();
        let z = deflate(&big, 1);
        assert!(inflate(&z, big.len() as u64).expect("inflates") == big);
        assert!(inflate(&z, big.len() as u64 + 1).is_err(), "shorter");
    }
}
