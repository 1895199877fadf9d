//! A crash at every fault point of an upgrade (the pull's and deploy's),
//! a rollback and a cleanup leaves a machine that boots a complete
//! deployment whose kernel is on the ESP, whose `status` agrees with its
//! boot entries, and on which the command simply runs again; `cleanup`
//! then leaves nothing behind.

use std::fs;

use crate::common::machine::*;
use crate::common::publish::write_head;

/// v1 deployed with `/etc/hostname` edited, v2 released with a new kernel
/// (so the upgrade copies one) and a new default file.
fn v2_released() -> Option<(Machine, String, String)> {
    let m = Machine::new()?;
    let c1 = m.release_tree(1, KVER, &[("hostname", "factory\n")]);
    m.sys(["deploy", REFSPEC, "--karg", "quiet"]).ok();
    fs::write(m.default_deployment().join("etc/hostname"), "mybox\n").expect("edit /etc/hostname");
    let c2 = m.release_tree(
        2,
        "6.2.0-1",
        &[("hostname", "factory\n"), ("new.conf", "v2\n")],
    );
    Some((m, c1, c2))
}

/// v2 is the default, with the merged /etc and v1 as the rollback.
fn assert_upgraded(m: &Machine, c1: &str, c2: &str, when: &str) {
    m.assert_sound(when);
    assert_eq!(m.default_commit(), c2, "{when}: the default");
    let st = m.status();
    assert_eq!(
        st["deployments"][1]["commit"], c1,
        "{when}: the rollback: {st:#}"
    );
    let etc = m.default_deployment().join("etc");
    assert_eq!(
        read(&etc.join("hostname")),
        "mybox\n",
        "{when}: the local edit"
    );
    assert_eq!(
        read(&etc.join("new.conf")),
        "v2\n",
        "{when}: the new default"
    );
    assert!(
        m.default_entry().options.contains("quiet"),
        "{when}: kargs carried"
    );
}

/// Crashes the upgrade at `point`, checks, then reruns it and cleans up.
/// `done`: whether the new entry was written before the crash.
fn upgrade_crash_then_rerun(point: &str, done: bool) {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    m.crash(point, ["upgrade"]);
    let when = format!("after a crash at {point}");
    m.assert_sound(&when);
    assert_eq!(&m.default_commit(), if done { &c2 } else { &c1 }, "{when}");

    m.sys(["upgrade"]).ok();
    assert_upgraded(&m, &c1, &c2, &format!("after the rerun ({point})"));
    m.sys(["cleanup"]).ok();
    let when = format!("after cleanup ({point})");
    m.assert_clean(&when);
    assert_eq!(m.deployments().len(), 2, "{when}");
    assert_upgraded(&m, &c1, &c2, &when);
}

/// Crashes the upgrade at `point`, cleans up first, then reruns it.
fn upgrade_crash_then_cleanup(point: &str, done: bool) {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    m.crash(point, ["upgrade"]);
    m.sys(["cleanup"]).ok();
    let when = format!("after a crash at {point} and cleanup");
    m.assert_clean(&when);
    assert_eq!(&m.default_commit(), if done { &c2 } else { &c1 }, "{when}");

    m.sys(["upgrade"]).ok();
    assert_upgraded(&m, &c1, &c2, &format!("after the rerun ({point})"));
    m.sys(["cleanup"]).ok();
    m.assert_clean(&format!("after the last cleanup ({point})"));
}

fn upgrade_crash(point: &str, done: bool) {
    upgrade_crash_then_rerun(point, done);
    upgrade_crash_then_cleanup(point, done);
}

#[test]
fn upgrade_crash_when_pulled_objects_staged() {
    upgrade_crash("objects-staged", false);
}

#[test]
fn upgrade_crash_when_pulled_objects_half_renamed() {
    upgrade_crash("objects-half-renamed", false);
}

#[test]
fn upgrade_crash_when_deploy_checked_out() {
    upgrade_crash("deploy-checked-out", false);
}

#[test]
fn upgrade_crash_when_etc_merged() {
    upgrade_crash("etc-merged", false);
}

#[test]
fn upgrade_crash_when_deployment_in_place() {
    upgrade_crash("deployment-in-place", false);
}

#[test]
fn upgrade_crash_when_kernel_copied() {
    upgrade_crash("kernel-copied", false);
}

#[test]
fn upgrade_crash_when_kernel_installed() {
    upgrade_crash("kernel-installed", false);
}

#[test]
fn upgrade_crash_when_entry_written() {
    upgrade_crash("entry-written", true);
}

/// No fault point sits between writing the origin and ref under the final
/// name (deploy's step 4) and the rename out of staging (step 5); a crash
/// there leaves both with the deployment still in staging. Made from a
/// crash at `etc-merged` plus what step 4 writes.
#[test]
fn upgrade_crash_after_origin_written() {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    m.crash("etc-merged", ["upgrade"]);
    let name = format!("{c2}.0");
    let origin = format!("[origin]\nrefspec={REFSPEC}\n\n[strata]\nkargs=quiet\n");
    fs::write(m.deploy_dir().join(format!("{name}.origin")), origin).expect("write origin");
    write_head(&m.repo(), &format!("deploy/{STATEROOT}/{name}"), &c2);
    m.assert_sound("after the crash");
    assert_eq!(m.default_commit(), c1);

    m.sys(["cleanup"]).ok();
    m.assert_clean("after cleanup");
    m.sys(["upgrade"]).ok();
    assert_upgraded(&m, &c1, &c2, "after the rerun");
    m.sys(["cleanup"]).ok();
    m.assert_clean("after the last cleanup");
}

/// Writing the rollback target's new entry is the atomic step; the crash
/// leaves its old entry beside it, which status collapses.
#[test]
fn rollback_crash_when_entry_written() {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    m.sys(["upgrade"]).ok();
    m.crash("rollback-entry-written", ["rollback"]);
    let when = "after a crash in rollback";
    m.assert_sound(when);
    assert_eq!(m.default_commit(), c1, "{when}: the rollback took effect");
    let st = m.status();
    assert_eq!(st["deployments"][1]["commit"], c2, "{when}: {st:#}");

    // Run again: back to v2.
    m.sys(["rollback"]).ok();
    m.assert_sound("after the rollback rerun");
    assert_eq!(m.default_commit(), c2, "after the rollback rerun");
    m.sys(["cleanup"]).ok();
    m.assert_clean("after cleanup");
    assert_eq!(m.entries().len(), 2, "one entry per deployment");
    assert_upgraded(&m, &c1, &c2, "after cleanup");
}

/// Four releases deployed one after the other, each with its own kernel:
/// cleanup has two deployments and two kernels to remove.
fn four_deployed() -> Option<(Machine, Vec<String>)> {
    let m = Machine::new()?;
    let mut commits = Vec::new();
    for v in 1..=4 {
        commits.push(m.release_tree(v, &format!("6.{v}.0-1"), &[("hostname", "box\n")]));
        m.sys(["deploy", REFSPEC]).ok();
    }
    Some((m, commits))
}

fn cleanup_crash(point: &str) {
    let Some((m, commits)) = four_deployed() else {
        return;
    };
    m.crash(point, ["cleanup"]);
    let when = format!("after a crash at {point}");
    m.assert_sound(&when);
    assert_eq!(m.default_commit(), commits[3], "{when}");

    m.sys(["cleanup"]).ok();
    let when = format!("after the cleanup rerun ({point})");
    m.assert_clean(&when);
    let kept: Vec<String> = m.deployments().iter().map(|d| commit_of(d)).collect();
    let mut want = vec![commits[2].clone(), commits[3].clone()];
    want.sort();
    assert_eq!(kept, want, "{when}: default and rollback stay");
    assert_eq!(m.default_commit(), commits[3], "{when}");
}

#[test]
fn cleanup_crash_when_entries_removed() {
    cleanup_crash("cleanup-entries-removed");
}

#[test]
fn cleanup_crash_when_deployment_removed() {
    cleanup_crash("cleanup-deployment-removed");
}
