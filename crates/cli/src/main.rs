//! The `strata` command. Parsing lives in `args`, each command in `cmd`.

mod args;
mod cmd;
mod logging;
mod progress;
mod time;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = args::Cli::parse();
    logging::init(cli.verbose);
    raise_file_limit();
    match cmd::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// The soft limit on open files the process started with (`None`: no
/// limit), before [`raise_file_limit`]: what a toolbox's commands get.
static NOFILE_SOFT: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();

/// The soft limit on open files strata was started with.
pub fn nofile_soft() -> Option<u64> {
    NOFILE_SOFT.get().copied().flatten()
}

/// Raises the soft limit on open files to the hard one, as Go programs and
/// many servers do: a transaction keeps staged objects open as anonymous
/// files until they are durable, as many as half this limit allows (see
/// `strata_store::write`), and the default soft limit is often only 1024.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    let _ = NOFILE_SOFT.set(limit.current);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        // Best effort: with the lower limit, objects are staged by name.
        let _ = setrlimit(Resource::Nofile, limit);
    }
}

/// The error and its causes, each said once: our errors already include
/// their source in their message, so a cause the message holds is skipped.
fn message(e: &anyhow::Error) -> String {
    let mut msg = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !msg.contains(&c) {
            msg.push_str(": ");
            msg.push_str(&c);
        }
    }
    msg
}
