//! `strata auto-update`: one run of the unattended updater, and the
//! reboot of `policy=apply` (see [`super::systemd`] for what is asked of
//! systemd and logind).

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use strata_sysroot::Sysroot;
use strata_sysroot::settings::Policy;
use strata_sysroot::update::{AutoUpdate, RebootGate, reboot_gate};

use super::systemd;
use crate::progress::Bar;
use crate::time::format_rfc3339;

/// How often a reboot waiting for users asks logind again.
const POLL: Duration = Duration::from_secs(5);

pub fn auto_update(root: &Path, stateroot: &str) -> Result<ExitCode> {
    let mut s = Sysroot::open(root)?;
    s.set_relayer(super::layer::relayer());
    let settings = s.settings()?;
    let bar = Bar::on_terminal();
    let out = s.auto_update(stateroot, &settings, &bar);
    bar.finish();
    let out = out?;
    match &out {
        AutoUpdate::Disabled => {
            println!(
                "unattended updates are off ([update] policy=none in /etc/strata/strata.conf)"
            );
        }
        AutoUpdate::NotBlessed => {
            println!("the booted deployment is still on trial: no update until it is blessed");
        }
        AutoUpdate::UpToDate(c) => println!("up to date at {c}"),
        AutoUpdate::Denied { commit, reason } => {
            println!("not taking {commit}: it failed to boot on this machine ({reason})")
        }
        AutoUpdate::Available(c) => println!("update available: {c}"),
        AutoUpdate::Downloaded(c) => println!("update downloaded: {c}"),
        AutoUpdate::Staged(id) => println!("staged {}", id.rel_path()),
        AutoUpdate::FinalizeFailed(f) => println!(
            "not staging: the staged deployment {} failed to finalize at {} ({}); `strata upgrade` or `strata upgrade --stage` by hand tries again",
            f.deployment,
            format_rfc3339(f.time),
            f.error
        ),
    }
    if matches!(out, AutoUpdate::Staged(_)) && s.is_running_system() {
        systemd::start_finalize_unit()?;
    }
    // apply: reboot into what is staged (now or by an earlier run).
    if settings.policy != Policy::Apply || s.staged().is_none() {
        return Ok(ExitCode::SUCCESS);
    }
    if !s.is_running_system() {
        println!("not the running system: not rebooting");
        return Ok(ExitCode::SUCCESS);
    }
    let start = Instant::now();
    let mut said_waiting = false;
    loop {
        let sessions = systemd::user_sessions();
        let inhibitors: Vec<String> = systemd::logind_list("ListInhibitors")
            .unwrap_or_default()
            .into_iter()
            .filter(|i| {
                // (what, who, why, mode, uid, pid)
                i.first()
                    .is_some_and(|w| w.split(':').any(|x| x == "shutdown"))
                    && i.get(3).is_some_and(|m| m == "block")
            })
            .map(|i| {
                format!(
                    "{}: {}",
                    i.get(1).cloned().unwrap_or_default(),
                    i.get(2).cloned().unwrap_or_default()
                )
            })
            .collect();
        let now = strata_sysroot::failure::now();
        let gate = reboot_gate(
            now,
            settings.window.as_ref(),
            &inhibitors,
            *sessions.as_ref().unwrap_or(&0),
            start.elapsed(),
            settings.session_wait,
        );
        match gate {
            RebootGate::Now => break,
            RebootGate::WindowClosed(opens) => {
                println!(
                    "staged; not rebooting: outside the reboot window{}",
                    opens
                        .map(|t| format!(" (opens {})", format_rfc3339(t)))
                        .unwrap_or_default()
                );
                if let Some(t) = opens {
                    let when = systemd::start_update_at(t)?;
                    println!(
                        "the updater runs again at {when} ({}.timer); a reboot before then finalizes it too",
                        systemd::WINDOW_TIMER
                    );
                }
                return Ok(ExitCode::SUCCESS);
            }
            RebootGate::Inhibited(by) => {
                println!(
                    "staged; not rebooting: shutdown is inhibited by {}; the next run tries again",
                    by.join(", ")
                );
                return Ok(ExitCode::SUCCESS);
            }
            RebootGate::WaitForSessions(n) => {
                if !said_waiting {
                    println!(
                        "staged; waiting for {n} logged-in session(s) to end, up to {} s, before rebooting",
                        settings.session_wait.as_secs()
                    );
                    said_waiting = true;
                }
                std::thread::sleep(POLL);
            }
        }
    }
    if let Err(e) = systemd::user_sessions() {
        println!("(logind did not answer: {e}; logged-in users not counted)");
    }
    println!("rebooting into the staged deployment");
    systemd::run("systemctl", &["reboot"])?;
    Ok(ExitCode::SUCCESS)
}
