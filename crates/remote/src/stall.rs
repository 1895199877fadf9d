//! Stalled transfers: a download that receives fewer than a set number of
//! bytes per second over a window fails, as libcurl's `LOW_SPEED_LIMIT`
//! and `LOW_SPEED_TIME` make ostree's fetches fail (1000 bytes/s over 30 s
//! by default, our defaults too).
//!
//! Why: a read timeout alone bounds one read, so a server sending a byte a
//! minute keeps a pull alive forever. The window is checked on every read,
//! and the socket's read timeout is set to the window, so a read that
//! blocks a whole window counts as a stall as well.

use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, Instant};

/// When a transfer counts as stalled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StallLimit {
    /// Fewer than [`StallLimit::min_bytes`] received in this long is a
    /// stall; so is a read (or a connect, or a response head) that takes
    /// this long.
    pub window: Duration,
    /// Bytes per second a transfer must average over the window (0: any
    /// byte in the window will do).
    pub min_speed: u64,
}

impl StallLimit {
    /// ostree's `LOW_SPEED_TIME`.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);
    /// ostree's `LOW_SPEED_LIMIT`, in bytes per second.
    pub const DEFAULT_MIN_SPEED: u64 = 1000;

    /// The bytes a window must bring.
    pub fn min_bytes(&self) -> u64 {
        let bytes = u128::from(self.min_speed) * self.window.as_millis() / 1000;
        u64::try_from(bytes).unwrap_or(u64::MAX)
    }
}

impl Default for StallLimit {
    fn default() -> Self {
        StallLimit {
            window: Self::DEFAULT_WINDOW,
            min_speed: Self::DEFAULT_MIN_SPEED,
        }
    }
}

impl fmt::Display for StallLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the transfer stalled: fewer than {} bytes in {} s (stall-min-speed {} bytes/s; on a slow link, raise the window with `strata pull --stall-timeout SECS` or the remote's stall-timeout)",
            self.min_bytes().max(1),
            self.window.as_secs_f64(),
            self.min_speed,
        )
    }
}

/// The error a stalled transfer fails with ([`io::ErrorKind::TimedOut`]).
pub fn stalled(limit: StallLimit) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, limit.to_string())
}

/// One transfer's progress against a [`StallLimit`], in windows that
/// follow one another. Pure: the caller passes the time.
#[derive(Debug, Clone)]
pub struct Watch {
    limit: StallLimit,
    /// When the current window began.
    start: Instant,
    /// Bytes received in the current window.
    bytes: u64,
}

impl Watch {
    /// A watch whose first window begins at `now`.
    pub fn new(limit: StallLimit, now: Instant) -> Self {
        Watch {
            limit,
            start: now,
            bytes: 0,
        }
    }

    /// Begins a new window at `now`: time spent away from the transfer
    /// (processing what came) is not the server's.
    pub fn restart(&mut self, now: Instant) {
        self.start = now;
        self.bytes = 0;
    }

    /// Counts `n` bytes received at `now`. Fails when the window that
    /// ends with them brought too few; otherwise a window that is over
    /// gives way to a new one.
    pub fn record(&mut self, n: u64, now: Instant) -> io::Result<()> {
        self.bytes = self.bytes.saturating_add(n);
        if now.saturating_duration_since(self.start) < self.limit.window {
            return Ok(());
        }
        if self.bytes < self.limit.min_bytes().max(1) {
            return Err(stalled(self.limit));
        }
        self.restart(now);
        Ok(())
    }
}

/// A reader whose reads are watched. Its source must time a blocked read
/// out after the window (a socket read timeout): `is_timeout` tells such
/// an error, which is a stall too.
pub struct Watched<R> {
    inner: R,
    watch: Watch,
    is_timeout: fn(&io::Error) -> bool,
}

impl<R> Watched<R> {
    /// Watches `inner` against `limit` from now.
    pub fn new(inner: R, limit: StallLimit, is_timeout: fn(&io::Error) -> bool) -> Self {
        Watched {
            inner,
            watch: Watch::new(limit, Instant::now()),
            is_timeout,
        }
    }

    /// Begins a new window now (see [`Watch::restart`]).
    pub fn restart(&mut self) {
        self.watch.restart(Instant::now());
    }

    /// The source.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }
}

/// A socket read timeout, as the standard library reports it.
pub fn is_socket_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.inner.read(buf) {
            // The end of a body is no stall, however long it took.
            Ok(0) => Ok(0),
            Ok(n) => {
                self.watch.record(n as u64, Instant::now())?;
                Ok(n)
            }
            Err(e) if (self.is_timeout)(&e) => Err(stalled(self.watch.limit)),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(window_ms: u64, min_speed: u64) -> StallLimit {
        StallLimit {
            window: Duration::from_millis(window_ms),
            min_speed,
        }
    }

    /// Each case: reads as (milliseconds after the start, bytes); the
    /// index of the read that fails, if one does.
    #[test]
    fn windows() {
        type Case = (StallLimit, &'static [(u64, u64)], Option<usize>);
        let cases: &[Case] = &[
            // A byte every 300 ms against 1000 bytes/s over 1 s.
            (
                limit(1000, 1000),
                &[(300, 1), (600, 1), (900, 1), (1200, 1)],
                Some(3),
            ),
            // Fast enough, window after window.
            (
                limit(1000, 1000),
                &[(500, 600), (1000, 500), (1900, 1000), (2100, 1)],
                None,
            ),
            // Enough in the first window, too little in the second.
            (
                limit(1000, 1000),
                &[(100, 5000), (1100, 1), (1500, 1), (2200, 1)],
                Some(3),
            ),
            // Speed 0: any byte in a window will do.
            (limit(1000, 0), &[(900, 1), (1800, 1), (2700, 1)], None),
            (limit(1000, 0), &[(900, 1), (1000, 0), (2000, 0)], Some(2)),
            // The byte a minute of the issue, against the default.
            (StallLimit::default(), &[(59_000, 1)], Some(0)),
        ];
        for (i, (limit, reads, fails)) in cases.iter().enumerate() {
            let t0 = Instant::now();
            let mut w = Watch::new(*limit, t0);
            let got = reads
                .iter()
                .position(|&(ms, n)| w.record(n, t0 + Duration::from_millis(ms)).is_err());
            assert_eq!(got, *fails, "case {i}: {reads:?}");
        }
    }

    #[test]
    fn restart_forgives_time_away() {
        let t0 = Instant::now();
        let mut w = Watch::new(limit(1000, 1000), t0);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(w.record(500, at(500)).is_ok());
        w.restart(at(5000));
        assert!(w.record(1000, at(5900)).is_ok());
        assert!(w.record(0, at(6000)).is_ok(), "1000 bytes in the window");
    }

    #[test]
    fn message_and_sizes() {
        assert_eq!(StallLimit::default().min_bytes(), 30_000);
        assert_eq!(limit(1500, 1000).min_bytes(), 1500);
        let e = stalled(limit(2000, 1000));
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(
            e.to_string()
                .contains("stalled: fewer than 2000 bytes in 2 s"),
            "{e}"
        );
    }

    #[test]
    fn a_timed_out_read_is_a_stall() {
        struct Blocked;
        impl Read for Blocked {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        let mut r = Watched::new(Blocked, limit(10, 0), is_socket_timeout);
        let e = r.read(&mut [0; 4]).expect_err("blocked");
        assert!(e.to_string().contains("stalled"), "{e}");
        let mut r = Watched::new(&b"abc"[..], limit(10_000, 1), is_socket_timeout);
        let mut out = Vec::new();
        r.read_to_end(&mut out).expect("a quick read is no stall");
        assert_eq!(out, b"abc");
    }
}
