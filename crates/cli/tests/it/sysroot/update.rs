//! The unattended updater (`strata auto-update`) on a directory sysroot
//! following a signed `file://` remote: each policy does what it says and
//! no more, nothing happens while the booted deployment is on trial, a
//! commit that failed here is not taken, and `status` shows the last run.
//! (The reboot of `apply` is proven in the VM test; here the sysroot is not
//! the running system, so it never reboots.)

use std::fs;

use crate::common::machine::*;

/// v1 deployed and booted (blessed), v2 released on the remote.
fn machine_with_update() -> Option<(Machine, String, String)> {
    let m = Machine::new()?;
    let c1 = m.release_tree(1, KVER, &[]);
    m.sys(["deploy", REFSPEC]).ok();
    m.mark_booted(m.default_entry().deployment());
    let c2 = m.release_tree(2, KVER, &[("new.conf", "v2\n")]);
    Some((m, c1, c2))
}

fn set_policy(m: &Machine, c1: &str, text: &str) {
    let conf = m.deployment_of(c1).join("etc/strata/strata.conf");
    fs::create_dir_all(conf.parent().expect("parent")).expect("mkdir");
    fs::write(conf, text).expect("write settings");
}

fn has_object(m: &Machine, commit: &str, ext: &str) -> bool {
    m.repo()
        .join("objects")
        .join(&commit[..2])
        .join(format!("{}.{ext}", &commit[2..]))
        .exists()
}

#[test]
fn each_policy_does_what_it_says() {
    let Some((m, c1, c2)) = machine_with_update() else {
        return;
    };
    // none (the default): nothing at all.
    let out = m.sys(["auto-update"]).ok();
    assert!(out.stdout.contains("policy=none"), "{out:#?}");
    assert!(m.status()["last_update"].is_null());

    // check: the commit object only, verified; nothing deployed.
    set_policy(&m, &c1, "[update]\npolicy=check\n");
    let out = m.sys(["auto-update"]).ok();
    assert!(
        out.stdout.contains(&format!("update available: {c2}")),
        "{out:#?}"
    );
    assert!(has_object(&m, &c2, "commit"), "the commit object is here");
    let tree = m.sys(["ls", &c2, "/"]);
    assert!(
        !tree.status.success(),
        "check must not fetch the tree: {tree:#?}"
    );
    let st = m.status();
    assert_eq!(st["update_policy"], "check");
    assert_eq!(st["last_update"]["available"], c2.as_str(), "{st:#}");
    assert_eq!(st["last_update"]["version"], "2", "{st:#}");
    assert_eq!(st["last_update"]["result"], "update available");
    assert_eq!(m.deployments().len(), 1);

    // download: pulled, still not deployed.
    set_policy(&m, &c1, "[update]\npolicy=download\n");
    let out = m.sys(["auto-update"]).ok();
    assert!(out.stdout.contains("update downloaded"), "{out:#?}");
    m.sys(["ls", &c2, "/usr/etc"]).ok();
    assert_eq!(m.deployments().len(), 1);

    // apply: staged; not the running system, so no reboot.
    set_policy(
        &m,
        &c1,
        "[update]\npolicy=apply\nwindow-start=00:00\nwindow-minutes=1440\n",
    );
    let out = m.sys(["auto-update"]).ok();
    assert!(out.stdout.contains("staged"), "{out:#?}");
    assert!(
        out.stdout.contains("not the running system: not rebooting"),
        "{out:#?}"
    );
    let st = m.status();
    assert_eq!(st["deployments"][0]["staged"], true, "{st:#}");
    assert_eq!(m.default_commit(), c1);
    // Again: already staged, nothing new.
    assert!(m.sys(["auto-update"]).ok().stdout.contains("up to date"));
}

#[test]
fn waits_for_a_blessed_boot_and_skips_failed_commits() {
    let Some((m, c1, c2)) = machine_with_update() else {
        return;
    };
    set_policy(&m, &c1, "[update]\npolicy=stage\n");
    // The booted entry on trial: the updater waits.
    let entries = m.sysroot.join("efi/loader/entries");
    let name = fs::read_dir(&entries)
        .expect("entries")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .next()
        .expect("one entry");
    let trial = name.replace(".conf", "+1-1.conf");
    fs::rename(entries.join(&name), entries.join(&trial)).expect("on trial");
    let out = m.sys(["auto-update"]).ok();
    assert!(out.stdout.contains("still on trial"), "{out:#?}");
    assert!(!has_object(&m, &c2, "commit"), "nothing fetched");
    fs::rename(entries.join(&trial), entries.join(&name)).expect("blessed");

    // A commit that failed here is not taken.
    let failed = m.sysroot.join("strata/failed");
    fs::create_dir_all(&failed).expect("mkdir");
    fs::write(
        failed.join(&c2),
        "[failure]\ndeployment=/x\ntime=1\nreason=health check required.d/x failed\n",
    )
    .expect("record");
    let out = m.sys(["auto-update"]).ok();
    assert!(out.stdout.contains(&format!("not taking {c2}")), "{out:#?}");
    assert_eq!(m.deployments().len(), 1);
    let st = m.status();
    assert!(
        st["last_update"]["result"]
            .as_str()
            .unwrap_or_default()
            .contains("failed to boot here"),
        "{st:#}"
    );
}

#[test]
fn bad_update_settings_name_the_line() {
    let Some((m, c1, _)) = machine_with_update() else {
        return;
    };
    set_policy(&m, &c1, "[update]\npolicy=apply\nwindow-start=3am\n");
    let r = m.sys(["auto-update"]);
    assert!(!r.status.success());
    assert!(
        r.stderr.contains("strata.conf:3:") && r.stderr.contains("window-start"),
        "{r:#?}"
    );
    assert_eq!(m.deployments().len(), 1);
}

/// Pins the review fix: after a finalize failed, the updater does not
/// stage (and, with apply, reboot) into the same failure every day; a
/// deploy by hand clears the record and it stages again.
#[test]
fn no_restaging_after_a_failed_finalize() {
    let Some((m, c1, c2)) = machine_with_update() else {
        return;
    };
    set_policy(&m, &c1, "[update]\npolicy=stage\n");
    m.sys(["auto-update"]).ok();
    // The next finalize fails: the machine's settings broke meanwhile.
    let conf = m.deployment_of(&c1).join("etc/strata/strata.conf");
    fs::write(&conf, "[update]\npolicy=stage\n[boot]\ntries=x\n").expect("break");
    assert!(!m.sys(["finalize-staged"]).status.success());
    fs::write(&conf, "[update]\npolicy=stage\n").expect("repair");
    let out = m.sys(["auto-update"]).ok();
    assert!(
        out.stdout.contains("not staging") && out.stdout.contains("failed to finalize"),
        "{out:#?}"
    );
    assert!(
        m.status()["deployments"]
            .as_array()
            .is_some_and(|a| a.iter().all(|d| d["staged"] != true))
    );
    m.sys(["upgrade"]).ok();
    assert_eq!(m.default_commit(), c2);
    assert!(m.status()["finalize_failure"].is_null());
}
