//! The compressed content of archive-mode `.filez` objects: raw deflate.

use std::io::{Read, Write};

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

/// A raw deflate stream into `out`, for content too large to hold: write
/// the content, then `finish` it.
pub fn deflater<W: Write>(out: W, level: u32) -> DeflateEncoder<W> {
    DeflateEncoder::new(out, Compression::new(level))
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
    check_ratio_of(compressed.len() as u64, size)
}

fn check_ratio_of(compressed_len: u64, size: u64) -> Result<(), String> {
    if size > compressed_len.saturating_mul(MAX_RATIO) + 1024 {
        return Err(format!(
            "header declares {size} bytes, more than {compressed_len} compressed bytes can hold"
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

/// Why [`inflate_to`] stopped.
#[derive(Debug)]
pub enum StreamError {
    /// The compressed data is bad, or does not hold exactly the declared size.
    Data(String),
    /// Reading the compressed data failed.
    Read(std::io::Error),
    /// `out` refused what it was given.
    Write(std::io::Error),
}

/// Piece of output [`inflate_to`] hands on at a time.
const STREAM_CHUNK: usize = 256 << 10;

/// Inflates the raw deflate stream read from `compressed` (`compressed_len`
/// bytes) into `out`, a piece at a time: memory stays small whatever the
/// size. The stream must hold exactly `size` bytes; a stream that goes on
/// past them stops there.
pub fn inflate_to(
    compressed: &mut dyn Read,
    compressed_len: u64,
    size: u64,
    out: &mut dyn Write,
) -> Result<(), StreamError> {
    check_ratio_of(compressed_len, size).map_err(StreamError::Data)?;
    if size == 0 && compressed_len == 0 {
        return Ok(()); // as `inflate_whole` takes it
    }
    let mut input = vec![0; STREAM_CHUNK];
    let mut output = vec![0; STREAM_CHUNK];
    let (mut start, mut end) = (0, 0);
    let mut dec = Decompress::new(false);
    let mut written = 0u64;
    loop {
        if start == end {
            end = compressed.read(&mut input).map_err(StreamError::Read)?;
            start = 0;
        }
        let (before_in, before_out) = (dec.total_in(), dec.total_out());
        let status = dec
            .decompress(&input[start..end], &mut output, FlushDecompress::None)
            .map_err(|e| StreamError::Data(format!("bad compressed data: {e}")))?;
        start += (dec.total_in() - before_in) as usize;
        let produced = (dec.total_out() - before_out) as usize;
        written += produced as u64;
        if written > size {
            return Err(StreamError::Data(format!(
                "content inflates to more than {size} bytes, header declares {size}"
            )));
        }
        out.write_all(&output[..produced])
            .map_err(StreamError::Write)?;
        if status == Status::StreamEnd {
            break;
        }
        if end == 0 && produced == 0 {
            return Err(StreamError::Data(format!(
                "bad compressed data: the stream ends early, after {written} of {size} bytes"
            )));
        }
    }
    if written != size {
        return Err(StreamError::Data(format!(
            "content inflates to {written} bytes, header declares {size}"
        )));
    }
    Ok(())
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
        let z = deflate(&small, DEFAULT_LEVEL);
        assert!(i.inflate(&z, 2).is_err(), "longer than declared");
        assert!(i.inflate(&z, 4).is_err(), "shorter than declared");
    }

    /// Regression test for 187a8a0: an inflater let go of its buffer only
    /// past 64 MiB (WHOLE_BUFFER_MAX), so each of eight fetch threads kept
    /// its largest object's buffer, up to 64 MiB apiece. Past KEEP_BUFFER
    /// (8 MiB) the buffer is dropped before the next object.
    #[test]
    fn inflater_drops_a_buffer_past_keep_buffer() {
        let mut i = Inflater::default();
        let large = vec![7u8; KEEP_BUFFER + 1];
        let z = deflate(&large, 1);
        assert_eq!(
            i.inflate(&z, large.len() as u64).expect("large"),
            &large[..]
        );
        assert!(i.out.capacity() > KEEP_BUFFER, "the large object was held");
        let small = b"abc".to_vec();
        let z = deflate(&small, DEFAULT_LEVEL);
        assert_eq!(i.inflate(&z, 3).expect("small after large"), &small[..]);
        assert!(
            i.out.capacity() < KEEP_BUFFER,
            "kept {} bytes after a small object",
            i.out.capacity()
        );
        // Up to KEEP_BUFFER the buffer is kept: reuse is what it is for.
        let kept = vec![7u8; KEEP_BUFFER];
        let z = deflate(&kept, 1);
        i.inflate(&z, kept.len() as u64).expect("at the limit");
        let z = deflate(&small, DEFAULT_LEVEL);
        i.inflate(&z, 3).expect("small after");
        assert!(
            i.out.capacity() >= KEEP_BUFFER,
            "a buffer at the limit is kept"
        );
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

    fn stream(z: &[u8], size: u64) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        inflate_to(&mut &z[..], z.len() as u64, size, &mut out).map(|()| out)
    }

    #[test]
    fn streaming_round_trip_and_size_checks() {
        // Several output pieces, from a few input pieces.
        let data: Vec<u8> = (0..(3 * STREAM_CHUNK as u32 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let z = deflate(&data, 1);
        assert!(stream(&z, data.len() as u64).expect("inflates") == data);
        assert_eq!(stream(&deflate(b"", 6), 0).expect("empty"), b"");
        assert_eq!(stream(b"", 0).expect("no stream at all"), b"");
        assert!(stream(b"", 1).is_err(), "no stream for a byte");
        for (size, what) in [
            (data.len() as u64 - 1, "more than"),
            (data.len() as u64 + 1, "inflates to"),
        ] {
            match stream(&z, size) {
                Err(StreamError::Data(e)) => assert!(e.contains(what), "{e}"),
                other => panic!("declared {size}: {other:?}"),
            }
        }
        match stream(&z[..z.len() / 2], data.len() as u64) {
            Err(StreamError::Data(e)) => assert!(e.contains("ends early"), "{e}"),
            other => panic!("truncated: {other:?}"),
        }
        // The ratio check comes first: nothing is inflated for a bomb.
        match stream(&deflate(b"x", 6), 32 << 20) {
            Err(StreamError::Data(e)) => assert!(e.contains("can hold"), "{e}"),
            other => panic!("bomb: {other:?}"),
        }
    }

    #[test]
    fn streaming_passes_on_write_errors() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let z = deflate(b"some content", 6);
        match inflate_to(&mut &z[..], z.len() as u64, 12, &mut Full) {
            Err(StreamError::Write(e)) => assert_eq!(e.raw_os_error(), Some(28)),
            other => panic!("{other:?}"),
        }
    }
}
