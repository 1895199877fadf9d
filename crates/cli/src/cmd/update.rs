//! `strata auto-update`: one run of the unattended updater, and the
//! reboot of `policy=apply`, asked of logind (sessions, inhibitors) over
//! D-Bus with `busctl`.

use std::path::Path;
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use strata_sysroot::Sysroot;
use strata_sysroot::settings::Policy;
use strata_sysroot::update::{AutoUpdate, RebootGate, reboot_gate};

use crate::progress::Bar;
use crate::time::format_rfc3339;

/// How often a reboot waiting for users asks logind again.
const POLL: Duration = Duration::from_secs(5);

pub fn auto_update(root: &Path, stateroot: &str) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
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
    if matches!(out, AutoUpdate::Staged(_)) {
        start_finalize(&s)?;
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
        let sessions = user_sessions();
        let inhibitors: Vec<String> = logind_list("ListInhibitors")
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
                    run_again_at(t)?;
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
    if let Err(e) = user_sessions() {
        println!("(logind did not answer: {e}; logged-in users not counted)");
    }
    println!("rebooting into the staged deployment");
    let st = Command::new("systemctl")
        .arg("reboot")
        .status()
        .context("run systemctl reboot")?;
    anyhow::ensure!(st.success(), "systemctl reboot: {st}");
    Ok(ExitCode::SUCCESS)
}

/// The transient timer that runs the updater again when the window opens.
const WINDOW_TIMER: &str = "strata-update-window";

/// Starts strata-update.service again at `t` (a transient timer, replacing
/// an earlier one): the daily timer alone could keep missing the window.
fn run_again_at(t: u64) -> Result<()> {
    let _ = Command::new("systemctl")
        .args(["stop", &format!("{WINDOW_TIMER}.timer")])
        .output();
    let when = format_rfc3339(t).replace('T', " ").replace('Z', " UTC");
    let out = Command::new("systemd-run")
        .arg(format!("--unit={WINDOW_TIMER}"))
        .arg(format!("--on-calendar={when}"))
        .args([
            "--timer-property=AccuracySec=1s",
            "--description=strata: apply the staged update when the reboot window opens",
            "/usr/bin/systemctl",
            "start",
            "strata-update.service",
        ])
        .output()
        .context("run systemd-run")?;
    anyhow::ensure!(
        out.status.success(),
        "could not schedule the updater for {when}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    println!(
        "the updater runs again at {when} ({WINDOW_TIMER}.timer); a reboot before then finalizes it too"
    );
    Ok(())
}

fn start_finalize(s: &Sysroot) -> Result<()> {
    if !s.is_running_system() {
        return Ok(());
    }
    let st = Command::new("systemctl")
        .args(["start", "strata-finalize-staged.service"])
        .status()
        .context("run systemctl start strata-finalize-staged.service")?;
    anyhow::ensure!(
        st.success(),
        "systemctl start strata-finalize-staged.service: {st}"
    );
    Ok(())
}

/// Sessions of logged-in users (logind's class `user`: not greeters,
/// not lingering user managers).
fn user_sessions() -> Result<usize> {
    let mut n = 0;
    for row in logind_list("ListSessions")? {
        // (id, uid, user, seat, object path)
        let Some(path) = row.get(4) else { continue };
        let out = Command::new("busctl")
            .args([
                "--json=short",
                "get-property",
                "org.freedesktop.login1",
                path,
                "org.freedesktop.login1.Session",
                "Class",
            ])
            .output()
            .context("run busctl")?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if v["data"] == "user" {
            n += 1;
        }
    }
    Ok(n)
}

/// The rows of logind's `ListSessions`/`ListInhibitors`, each field as a
/// string (`busctl --json=short`).
fn logind_list(method: &str) -> Result<Vec<Vec<String>>> {
    let out = Command::new("busctl")
        .args([
            "--json=short",
            "call",
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            method,
        ])
        .output()
        .context("run busctl")?;
    anyhow::ensure!(
        out.status.success(),
        "busctl {method}: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("busctl's JSON")?;
    let rows = v["data"][0].as_array().cloned().unwrap_or_default();
    Ok(rows
        .iter()
        .map(|r| {
            r.as_array()
                .map(|f| {
                    f.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect())
}
