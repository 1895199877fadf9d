//! Progress of long operations, reported to whoever renders it.

/// What a pull has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PullProgress {
    /// Objects fetched and verified.
    pub fetched: u64,
    /// Objects known to be needed so far (grows while the tree is walked).
    pub needed: u64,
    /// Bytes received.
    pub bytes: u64,
    /// True once every needed object is known (the tree walk is done).
    pub walk_done: bool,
}

/// Receives progress; called from worker threads, so it must be `Sync`.
pub trait Progress: Sync {
    /// Called with the totals so far.
    fn update(&self, p: PullProgress);
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {
    fn update(&self, _: PullProgress) {}
}
