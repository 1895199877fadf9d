//! Log output: `tracing` events from the libraries (and, bridged, the `log`
//! records of ureq and rustls) written to stderr, so stdout stays the
//! command's result.
//!
//! The level comes from `RUST_LOG` when it is set (full `EnvFilter`
//! syntax, e.g. `strata_remote=debug`), else from the number of `-v`:
//! none shows warnings and errors, `-v` info, `-vv` debug, `-vvv` trace.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

/// The level `-v` given `count` times asks for.
fn level(count: u8) -> LevelFilter {
    match count {
        0 => LevelFilter::WARN,
        1 => LevelFilter::INFO,
        2 => LevelFilter::DEBUG,
        _ => LevelFilter::TRACE,
    }
}

/// Installs the subscriber; call once, before any command runs.
pub fn init(verbose: u8) {
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.is_empty() => EnvFilter::builder().parse_lossy(directives),
        _ => EnvFilter::default().add_directive(level(verbose).into()),
    };
    let stderr = std::io::stderr();
    // Best effort: a second subscriber (impossible here) or a `log` logger
    // already set would only mean fewer log lines, never a failed command.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(stderr.is_terminal())
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_v_more_detail() {
        let levels: Vec<_> = (0..5).map(level).collect();
        assert_eq!(
            levels,
            [
                LevelFilter::WARN,
                LevelFilter::INFO,
                LevelFilter::DEBUG,
                LevelFilter::TRACE,
                LevelFilter::TRACE
            ]
        );
    }
}
