//! Health checks, run on every boot by `strata-health.service` (ordered
//! before `boot-complete.target` and required by it), as greenboot's:
//!
//! ```text
//! /usr/lib/strata/health.d/required.d/NAME   a failure fails the boot
//! /usr/lib/strata/health.d/wanted.d/NAME     a failure is only reported
//! /etc/strata/health.d/{required.d,wanted.d}/NAME
//! ```
//!
//! A check is an executable; exit status 0 passes. Each runs with
//! `[health] timeout` (a check that hangs fails, its process group is
//! killed). A file in `/etc` overrides the one of the same name in
//! `/usr/lib`; a symlink to `/dev/null` there disables it, as systemd's
//! units. Two checks are built in (with a running systemd): that
//! `multi-user.target` was reached, and that none of `[health] units`
//! failed.
//!
//! When a required check fails on a trial boot (the booted entry still
//! counts tries), [`Sysroot::fail_boot`] records why and marks the entry
//! bad with `systemd-bless-boot bad`, so the next boot falls back at once.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::settings::Settings;
use crate::status::entries_by_deployment;
use crate::sysroot::Sysroot;

/// The check directories, relative to the running system's root; later
/// ones override earlier ones by name.
pub const DIRS: [&str; 2] = ["usr/lib/strata/health.d", "etc/strata/health.d"];
/// How much of a failed check's output is kept (the end).
const OUTPUT_TAIL: usize = 2000;

/// One check found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// `required.d/NAME` or `wanted.d/NAME`.
    pub name: String,
    /// The executable.
    pub path: PathBuf,
    /// Whether a failure fails the boot.
    pub required: bool,
}

/// The outcome of one check.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CheckResult {
    /// As [`Check::name`], or `builtin/…`.
    pub name: String,
    /// Whether a failure fails the boot.
    pub required: bool,
    /// Whether it passed.
    pub passed: bool,
    /// How it ended (`exit status 1`, `timed out after 5 s`) and the end of
    /// its output.
    pub detail: String,
    /// How long it ran.
    pub seconds: f64,
}

/// All checks of one run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct HealthReport {
    /// In the order they ran: built-in first, then required, then wanted.
    pub checks: Vec<CheckResult>,
}

impl HealthReport {
    /// Whether every required check passed.
    pub fn healthy(&self) -> bool {
        self.checks.iter().all(|c| c.passed || !c.required)
    }

    /// The first required check that failed, as a reason for the record.
    pub fn reason(&self) -> Option<String> {
        self.checks
            .iter()
            .find(|c| c.required && !c.passed)
            .map(|c| format!("health check {} failed: {}", c.name, c.detail))
    }
}

/// The checks under `root` (see the module docs), by kind then name.
pub fn discover(root: &Path) -> Result<Vec<Check>> {
    let mut out = Vec::new();
    for (kind, required) in [("required.d", true), ("wanted.d", false)] {
        let mut by_name: BTreeMap<String, PathBuf> = BTreeMap::new();
        for dir in DIRS {
            let d = root.join(dir).join(kind);
            let list = match std::fs::read_dir(&d) {
                Ok(l) => l,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    return Err(strata_store::Error::Io {
                        action: "list",
                        path: d,
                        source: e,
                    }
                    .into());
                }
            };
            for e in list.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') || name.ends_with('~') {
                    continue;
                }
                by_name.insert(name, e.path());
            }
        }
        for (name, path) in by_name {
            let masked = std::fs::read_link(&path).is_ok_and(|t| t == Path::new("/dev/null"));
            if !masked {
                out.push(Check {
                    name: format!("{kind}/{name}"),
                    path,
                    required,
                });
            }
        }
    }
    Ok(out)
}

/// Runs `cmd` with a timeout, in its own process group (killed whole on
/// timeout); returns whether it exited 0, and how it ended with the end
/// of its output.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> (bool, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return (false, format!("could not run it: {e}")),
    };
    let output = Arc::new(Mutex::new(Vec::new()));
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        let output = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                output
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .extend_from_slice(&buf[..n]);
            }
        })
    })
    .collect();
    let start = Instant::now();
    let ending = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if start.elapsed() >= timeout => {
                if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
                }
                let _ = child.wait();
                break Err(format!("timed out after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => break Err(format!("could not wait for it: {e}")),
        }
    };
    // A daemon the check left behind may hold the pipes: wait briefly only.
    let deadline = Instant::now() + Duration::from_millis(500);
    for r in readers {
        while !r.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let out = output
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let text = String::from_utf8_lossy(&out);
    let tail: String = {
        let t = text.trim_end();
        let start = t.len().saturating_sub(OUTPUT_TAIL);
        let start = (start..=t.len())
            .find(|i| t.is_char_boundary(*i))
            .unwrap_or(t.len());
        t[start..].to_owned()
    };
    let (passed, how) = match ending {
        Ok(status) if status.success() => (true, "passed".to_owned()),
        Ok(status) => (false, status.to_string()),
        Err(why) => (false, why),
    };
    let detail = if tail.is_empty() || passed {
        how
    } else {
        format!("{how}: {tail}")
    };
    (passed, detail)
}

/// Runs the checks under `root` (`/` on a machine) with `settings`; with
/// `systemd`, the built-in ones too (they ask the running systemd).
pub fn run(root: &Path, settings: &Settings, systemd: bool) -> Result<HealthReport> {
    let mut checks = Vec::new();
    let mut record = |name: String, required: bool, start: Instant, (passed, detail)| {
        checks.push(CheckResult {
            name,
            required,
            passed,
            detail,
            seconds: start.elapsed().as_secs_f64(),
        });
    };
    if systemd {
        if settings.require_multi_user {
            let start = Instant::now();
            let (active, detail) = run_with_timeout(
                Command::new("systemctl").args(["is-active", "--quiet", "multi-user.target"]),
                settings.check_timeout,
            );
            let detail = if active {
                detail
            } else {
                "multi-user.target was not reached".to_owned()
            };
            record("builtin/multi-user".into(), true, start, (active, detail));
        }
        for unit in &settings.units {
            let start = Instant::now();
            // `is-failed` exits 0 when the unit failed.
            let (failed, _) = run_with_timeout(
                Command::new("systemctl").args(["is-failed", "--quiet", unit]),
                settings.check_timeout,
            );
            let detail = if failed {
                format!("{unit} failed")
            } else {
                "passed".into()
            };
            record(
                format!("builtin/unit {unit}"),
                true,
                start,
                (!failed, detail),
            );
        }
    }
    for c in discover(root)? {
        let start = Instant::now();
        let outcome = run_with_timeout(&mut Command::new(&c.path), settings.check_timeout);
        record(c.name, c.required, start, outcome);
    }
    Ok(HealthReport { checks })
}

/// What [`Sysroot::fail_boot`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The booted entry is not on trial (blessed before, or no counting):
    /// nothing to fall back from; only reported.
    NotOnTrial,
    /// The failure was recorded and the entry marked bad: the next boot
    /// falls back.
    MarkedBad,
    /// The booted commit was recorded as failed before: it boots anyway
    /// (every other entry is bad, or it was picked by hand), so no reboot.
    FailedBefore,
}

impl Sysroot {
    /// A required check failed on this boot: if the booted entry is on
    /// trial, record `reason` for its commit and mark the entry bad with
    /// `bless_boot bad` (the real `systemd-bless-boot`).
    pub fn fail_boot(&self, reason: &str, bless_boot: &Path) -> Result<Verdict> {
        let Some(booted) = self.booted() else {
            return Ok(Verdict::NotOnTrial);
        };
        // Counted: systemd-boot took a try before this boot (the last try
        // runs as `+0-N`); `systemd-bless-boot good` has not run yet.
        let counted = entries_by_deployment(self)?
            .iter()
            .any(|(id, name, _)| *id == booted && name.counter.is_some());
        if !counted {
            return Ok(Verdict::NotOnTrial);
        }
        // Judged before and booted again: every other entry is bad too, or
        // it was picked by hand. Rebooting again could loop forever.
        if self.failure(&booted.commit)?.is_some() {
            return Ok(Verdict::FailedBefore);
        }
        self.record_failure(&booted, reason)?;
        let out = Command::new(bless_boot)
            .arg("bad")
            .output()
            .map_err(|e| Error::Tool {
                what: format!("run {} bad", bless_boot.display()),
                why: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Tool {
                what: format!("{} bad", bless_boot.display()),
                why: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(Verdict::MarkedBad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn script(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("write");
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    #[test]
    fn discover_override_and_mask() {
        let t = tempfile::tempdir().expect("tempdir");
        let r = t.path();
        script(&r.join("usr/lib/strata/health.d/required.d/20-b"), "exit 0");
        script(&r.join("usr/lib/strata/health.d/required.d/10-a"), "exit 0");
        script(&r.join("usr/lib/strata/health.d/wanted.d/30-w"), "exit 0");
        script(
            &r.join("usr/lib/strata/health.d/required.d/40-masked"),
            "exit 1",
        );
        script(&r.join("etc/strata/health.d/required.d/20-b"), "exit 3");
        script(
            &r.join("usr/lib/strata/health.d/required.d/.hidden"),
            "exit 1",
        );
        std::fs::create_dir_all(r.join("etc/strata/health.d/required.d")).expect("mkdir");
        symlink(
            "/dev/null",
            r.join("etc/strata/health.d/required.d/40-masked"),
        )
        .expect("mask");
        let found = discover(r).expect("discover");
        let names: Vec<(&str, bool)> = found
            .iter()
            .map(|c| (c.name.as_str(), c.required))
            .collect();
        assert_eq!(
            names,
            [
                ("required.d/10-a", true),
                ("required.d/20-b", true),
                ("wanted.d/30-w", false)
            ]
        );
        assert!(
            found[1].path.starts_with(r.join("etc")),
            "/etc overrides /usr/lib"
        );
    }

    #[test]
    fn outcomes() {
        let t = tempfile::tempdir().expect("tempdir");
        let r = t.path();
        let req = r.join("etc/strata/health.d/required.d");
        let wanted = r.join("etc/strata/health.d/wanted.d");
        script(&req.join("10-ok"), "echo fine");
        script(&req.join("20-hangs"), "sleep 30 & sleep 30");
        script(&wanted.join("30-fails"), "echo broken >&2; exit 4");
        let settings = Settings {
            check_timeout: Duration::from_secs(1),
            ..Settings::default()
        };
        let start = Instant::now();
        let report = run(r, &settings, false).expect("run");
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the hang was cut short"
        );
        let got: Vec<(&str, bool)> = report
            .checks
            .iter()
            .map(|c| (c.name.as_str(), c.passed))
            .collect();
        assert_eq!(
            got,
            [
                ("required.d/10-ok", true),
                ("required.d/20-hangs", false),
                ("wanted.d/30-fails", false)
            ]
        );
        assert!(
            report.checks[1].detail.contains("timed out after 1 s"),
            "{:?}",
            report.checks[1]
        );
        assert!(
            report.checks[2].detail.contains("exit status: 4")
                && report.checks[2].detail.contains("broken"),
            "{:?}",
            report.checks[2]
        );
        assert!(!report.healthy());
        assert!(
            report
                .reason()
                .unwrap_or_default()
                .contains("required.d/20-hangs")
        );
        // Only a wanted failure: healthy.
        std::fs::remove_file(req.join("20-hangs")).expect("rm");
        assert!(run(r, &settings, false).expect("run").healthy());
    }
}
