//! The objects a pull still has to fetch, shared by its fetch workers.
//!
//! Directory listings go first, since each one reveals more work. A worker
//! takes a batch at a time, its fair share of what is queued (at most
//! `batch`), so it can pipeline the requests and the others still find
//! work. The queue runs dry when nothing is queued or being worked on, and
//! at the first error; workers waiting then wake up and stop.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use strata_store::{Checksum, ObjectType};

use crate::error::Error;

/// One object to fetch (or, for a directory listing already stored, to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Item {
    pub checksum: Checksum,
    pub kind: ObjectType,
}

#[derive(Default)]
struct State {
    listings: VecDeque<Item>,
    others: VecDeque<Item>,
    /// Queued, or taken and not yet done.
    busy: usize,
    /// Workers waiting in [`Queue::take`].
    waiting: usize,
}

pub struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    seen: Mutex<HashSet<Item>>,
    error: Mutex<Option<Error>>,
    failed: AtomicBool,
    workers: usize,
    batch: usize,
}

impl Queue {
    pub fn new(workers: usize, batch: usize) -> Self {
        Queue {
            state: Mutex::default(),
            changed: Condvar::new(),
            seen: Mutex::default(),
            error: Mutex::default(),
            failed: AtomicBool::new(false),
            workers: workers.max(1),
            batch: batch.max(1),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A worker that panicked while holding the lock left the counts as
        // they were: still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True the first time `item` is offered (as `Transaction::claim` in
    /// the store).
    pub fn claim(&self, item: Item) -> bool {
        self.seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(item)
    }

    /// Queues `items`, waking as many waiting workers as they can keep busy.
    pub fn push(&self, items: impl IntoIterator<Item = Item>) {
        let mut s = self.state();
        let before = s.busy;
        for item in items {
            if item.kind == ObjectType::DirTree {
                s.listings.push_back(item);
            } else {
                s.others.push_back(item);
            }
            s.busy += 1;
        }
        let wake = (s.busy - before).min(s.waiting);
        drop(s);
        if wake == 1 {
            self.changed.notify_one();
        } else if wake > 1 {
            self.changed.notify_all();
        }
    }

    /// The next batch; `None` when the work is done or has failed.
    pub fn take(&self) -> Option<Vec<Item>> {
        let mut s = self.state();
        loop {
            if self.failed() {
                return None;
            }
            let queued = s.listings.len() + s.others.len();
            if queued > 0 {
                let n = queued.div_ceil(self.workers).clamp(1, self.batch);
                let from_listings = n.min(s.listings.len());
                let mut out: Vec<Item> = s.listings.drain(..from_listings).collect();
                let rest = (n - out.len()).min(s.others.len());
                out.extend(s.others.drain(..rest));
                return Some(out);
            }
            if s.busy == 0 {
                return None;
            }
            s.waiting += 1;
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
            s.waiting -= 1;
        }
    }

    /// Marks `n` taken items done (after any items they revealed were pushed).
    pub fn done(&self, n: usize) {
        let mut s = self.state();
        s.busy = s.busy.saturating_sub(n);
        let finished = s.busy == 0 && s.waiting > 0;
        drop(s);
        if finished {
            self.changed.notify_all();
        }
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Keeps the first error and stops the work.
    pub fn record(&self, r: Result<(), Error>) {
        if let Err(e) = r
            && !self.failed.swap(true, Ordering::AcqRel)
        {
            *self.error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
            // Taken under the lock, so no worker is between its check and its wait.
            drop(self.state());
            self.changed.notify_all();
        }
    }

    pub fn into_error(self) -> Option<Error> {
        self.error.into_inner().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u8, kind: ObjectType) -> Item {
        Item {
            checksum: Checksum::of(&[n]),
            kind,
        }
    }

    #[test]
    fn listings_first_in_fair_batches() {
        let q = Queue::new(2, 3);
        q.push((0..5).map(|n| item(n, ObjectType::File)));
        q.push([item(9, ObjectType::DirTree)]);
        // 6 queued, 2 workers: a batch of 3, the listing first.
        let b = q.take().expect("work");
        assert_eq!(b[0], item(9, ObjectType::DirTree));
        assert_eq!(
            &b[1..],
            [item(0, ObjectType::File), item(1, ObjectType::File)]
        );
        assert_eq!(
            q.take().expect("work").len(),
            2,
            "3 queued: half, rounded up"
        );
        assert_eq!(q.take().expect("work").len(), 1);
        q.done(5);
        assert!(q.claim(item(7, ObjectType::File)));
        assert!(!q.claim(item(7, ObjectType::File)), "offered once");
        q.done(1);
        assert!(q.take().is_none(), "nothing queued, nothing busy");
    }

    #[test]
    fn waiting_workers_wake_at_the_end_and_at_an_error() {
        for fail in [false, true] {
            let q = Queue::new(2, 16);
            q.push([item(1, ObjectType::DirTree)]);
            let taken = q.take().expect("work");
            std::thread::scope(|s| {
                let waiter = s.spawn(|| q.take());
                std::thread::sleep(std::time::Duration::from_millis(50));
                assert!(!waiter.is_finished(), "a batch is busy: the waiter waits");
                if fail {
                    q.record(Err(Error::Refused("boom".into())));
                } else {
                    q.done(taken.len());
                }
                assert!(waiter.join().expect("joins").is_none());
            });
            assert_eq!(q.into_error().is_some(), fail);
        }
    }
}
