//! `strata health-check`: run the checks, and at boot judge the boot.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use strata_sysroot::Sysroot;
use strata_sysroot::health::{self, Verdict};

use crate::args::HealthCheckArgs;

/// Debian's systemd-boot package's tool (merged /usr).
const BLESS_BOOT: &str = "/usr/lib/systemd/systemd-bless-boot";

pub fn check(root: &Path, &HealthCheckArgs { boot, json }: &HealthCheckArgs) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    if boot {
        // First: did this boot come from a fallback? Recorded whatever the
        // checks say next. A failure here is reported, not fatal: only the
        // checks judge the boot.
        match s.assess_boot() {
            Ok(a) => {
                for (id, written) in &a.failed {
                    if *written {
                        eprintln!(
                            "strata: {} ran out of boot tries; the machine fell back to the booted deployment; recorded it as failed",
                            id.rel_path()
                        );
                    }
                }
            }
            Err(e) => eprintln!("strata: could not look for a fallback: {e}"),
        }
    }
    let settings = match s.settings() {
        Ok(st) => st,
        // At boot a typo in strata.conf must not fail a good boot.
        Err(e) if boot => {
            eprintln!("strata: {e}; running the checks with the default settings");
            Default::default()
        }
        Err(e) => return Err(e.into()),
    };
    let report = health::run(Path::new("/"), &settings, boot)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &report.checks {
            println!(
                "{} {} ({}, {:.1} s){}",
                if c.passed { "ok  " } else { "FAIL" },
                c.name,
                if c.required { "required" } else { "wanted" },
                c.seconds,
                if c.passed {
                    String::new()
                } else {
                    format!(": {}", c.detail)
                }
            );
        }
    }
    let Some(reason) = report.reason() else {
        return Ok(ExitCode::SUCCESS);
    };
    if boot {
        match s.fail_boot(&reason, Path::new(BLESS_BOOT))? {
            Verdict::MarkedBad if settings.reboot_on_failure => {
                eprintln!("strata: {reason}; this boot is marked bad; rebooting to fall back");
                super::systemd::run("systemctl", &["reboot", "--no-block"])?;
            }
            Verdict::MarkedBad => eprintln!(
                "strata: {reason}; this boot is marked bad; the next boot falls back ([health] reboot=false)"
            ),
            Verdict::FailedBefore => eprintln!(
                "strata: {reason}; this commit failed here before and booted again (every other entry is bad, or it was picked by hand): not rebooting"
            ),
            Verdict::NotOnTrial => eprintln!(
                "strata: {reason}; the booted deployment was blessed before, so there is nothing to fall back from"
            ),
        }
    }
    Ok(ExitCode::FAILURE)
}
