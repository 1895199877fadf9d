//! Publishing and pulling: ed25519 signatures, the summary file, remotes
//! in the repository config, a verified parallel pull over static HTTP (or
//! `file://`), and a small development server. The wire format is OSTree's,
//! so ostree clients and servers work with ours. The library never prints;
//! progress goes through [`progress::Progress`].

pub mod error;
mod fetch;
mod http1;
pub mod keys;
pub mod progress;
pub mod pull;
mod queue;
pub mod remotes;
pub mod serve;
pub mod sign;
pub mod stall;
pub mod summary;

pub use error::{Error, Result};

/// Entry points for the fuzz targets in `fuzz/`: the parsers of what a
/// server sends, on bytes. Not an API.
#[doc(hidden)]
pub mod fuzzing {
    use std::io::{self, BufReader};

    /// Reads `data` as a stream of pipelined HTTP/1.1 responses (heads,
    /// then bodies by length, chunked or to the close) until it ends or
    /// fails; each body is bounded to 64 KiB.
    pub fn http_responses(data: &[u8]) {
        let mut r = BufReader::new(data);
        let mut buf = Vec::new();
        let spool = || Err(io::Error::other("no spool files while fuzzing"));
        for _ in 0..16 {
            buf.clear();
            let mut bodies = crate::http1::Bodies {
                buf: &mut buf,
                memory: 1 << 20,
                spool: &spool,
                spools: 0,
            };
            match crate::http1::read_response(&mut r, 64 << 10, &mut bodies) {
                Ok((_, true)) | Err(_) => return,
                Ok((_, false)) => {}
            }
        }
    }
}
