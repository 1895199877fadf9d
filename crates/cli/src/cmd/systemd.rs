//! What the machine commands ask of systemd and logind: starting units,
//! a transient timer, rebooting, logind's sessions and inhibitors (over
//! D-Bus with `busctl --json`). Each tool's failure names the command and
//! carries its stderr.

use std::process::Command;

use anyhow::{Context, Result};

use crate::time::format_rfc3339;

/// The transient timer that runs the updater again when the window opens.
pub const WINDOW_TIMER: &str = "strata-update-window";

/// Runs `program args…`; its stdout, or an error naming the command.
pub fn run(program: &str, args: &[&str]) -> Result<Vec<u8>> {
    let line = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("could not run {line}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{line}: {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(out.stdout)
}

/// Starts the unit whose stop (at shutdown) finalizes the staged deployment.
pub fn start_finalize_unit() -> Result<()> {
    run("systemctl", &["start", "strata-finalize-staged.service"])
        .context("the deployment is staged but will not be finalized at shutdown")
        .map(drop)
}

/// Starts strata-update.service at `t` (a transient timer, replacing an
/// earlier one); returns the time as given to systemd.
pub fn start_update_at(t: u64) -> Result<String> {
    let _ = run("systemctl", &["stop", &format!("{WINDOW_TIMER}.timer")]);
    let when = format_rfc3339(t).replace('T', " ").replace('Z', " UTC");
    run(
        "systemd-run",
        &[
            &format!("--unit={WINDOW_TIMER}"),
            &format!("--on-calendar={when}"),
            "--timer-property=AccuracySec=1s",
            "--description=strata: apply the staged update when the reboot window opens",
            "/usr/bin/systemctl",
            "start",
            "strata-update.service",
        ],
    )?;
    Ok(when)
}

/// Sessions of logged-in users (logind's class `user`: not greeters,
/// not lingering user managers).
pub fn user_sessions() -> Result<usize> {
    let mut n = 0;
    for row in logind_list("ListSessions")? {
        // (id, uid, user, seat, object path)
        let Some(path) = row.get(4) else { continue };
        let out = run(
            "busctl",
            &[
                "--json=short",
                "get-property",
                "org.freedesktop.login1",
                path,
                "org.freedesktop.login1.Session",
                "Class",
            ],
        )?;
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap_or_default();
        if v["data"] == "user" {
            n += 1;
        }
    }
    Ok(n)
}

/// The rows of logind's `ListSessions`/`ListInhibitors`, each field as a
/// string.
pub fn logind_list(method: &str) -> Result<Vec<Vec<String>>> {
    let out = run(
        "busctl",
        &[
            "--json=short",
            "call",
            "org.freedesktop.login1",
            "/org/freedesktop/login1",
            "org.freedesktop.login1.Manager",
            method,
        ],
    )?;
    let v: serde_json::Value = serde_json::from_slice(&out).context("busctl's JSON")?;
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
