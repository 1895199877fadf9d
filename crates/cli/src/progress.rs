//! Rendering progress: a bar on a terminal, nothing otherwise (commands
//! print one summary line when done).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use strata_remote::progress::{Progress, PullProgress};
use tracing_subscriber::filter::LevelFilter;

pub struct Bar {
    bar: Option<indicatif::ProgressBar>,
    last: Mutex<Instant>,
}

impl Bar {
    /// A bar when stderr is a terminal, silence otherwise. Also silence
    /// when info logs are on (-v): log lines and a bar redrawn over them
    /// would garble each other, and the logs say what happens.
    pub fn on_terminal() -> Self {
        let logging = LevelFilter::current() >= LevelFilter::INFO;
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        let bar = (terminal && !logging).then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {pos}/{len} objects {wide_bar} {msg} {binary_bytes_per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b
        });
        Bar {
            bar,
            last: Mutex::new(Instant::now()),
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn update(&self, p: PullProgress) {
        let Some(bar) = &self.bar else { return };
        // The workspace's one poison policy: the guarded `Instant` is
        // whole whatever a panicking holder did, so keep using it.
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() < Duration::from_millis(100) {
            return;
        }
        *last = Instant::now();
        bar.set_length(p.needed);
        bar.set_position(p.fetched);
        bar.set_message(format!(
            "{} received{}",
            indicatif::BinaryBytes(p.bytes),
            if p.walk_done { "" } else { ", scanning" }
        ));
    }
}
