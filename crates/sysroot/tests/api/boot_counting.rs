//! Boot counting on a directory sysroot: entries written with tries, every
//! operation reading them at any counter state, a fallback noticed and made
//! permanent, the denylist, and bad settings refused with nothing changed.
//! The firmware's part (renaming `+3` to `+2-1`, …) is done by hand here;
//! the VM test has systemd-boot do it.

use std::fs;
use std::path::Path;

use strata_store::Checksum;
use strata_sysroot::deploy::DeployOptions;
use strata_sysroot::upgrade::{UpgradeOptions, UpgradeOutcome};
use strata_sysroot::{Error, Sysroot};

use crate::{STATEROOT, bootable_files, new_sysroot, release_files};

/// A bootable tree that can bless its boots (has systemd-bless-boot).
fn counted_release(s: &Sysroot, dir: &Path, version: u32, etc: &[(&str, &str)]) -> Checksum {
    let mut files = bootable_files(version, "6.1.0-1", etc);
    files.push((
        "usr/lib/systemd/systemd-bless-boot".into(),
        "#!/bin/sh\n".into(),
    ));
    release_files(s, dir, version, &files)
}

fn entry_names(esp: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(esp.join("loader/entries"))
        .expect("list entries")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn deploy_following(s: &Sysroot, c: &Checksum) -> strata_sysroot::deploy::DeployReport {
    let opts = DeployOptions {
        stateroot: STATEROOT.into(),
        refspec: Some(STATEROOT.into()),
        kargs: None,
        layer: None,
    };
    s.deploy(c, &opts).expect("deploy")
}

#[test]
fn tries_fallback_denylist() {
    let Some((tmp, s)) = new_sysroot() else {
        return;
    };
    let t = tmp.path();
    let esp = t.join("esp");

    // A tree without systemd-bless-boot gets no counter: nothing would bless it.
    let c0 = release_files(&s, t, 0, &bootable_files(0, "6.1.0-1", &[]));
    assert_eq!(deploy_following(&s, &c0).tries, 0);
    assert_eq!(entry_names(&esp), ["strata-os-000001.conf"]);

    // The vendor's default tries (usr/etc), carried by the merged /etc.
    let c1 = counted_release(&s, t, 1, &[("strata/strata.conf", "[boot]\ntries=2\n")]);
    let r1 = deploy_following(&s, &c1);
    assert_eq!(r1.tries, 2);
    assert_eq!(
        entry_names(&esp),
        ["strata-os-000001.conf", "strata-os-000002+2.conf"]
    );
    // The firmware tried it once; then it booted and was blessed.
    let entries = esp.join("loader/entries");
    fs::rename(
        entries.join("strata-os-000002+2.conf"),
        entries.join("strata-os-000002+1-1.conf"),
    )
    .expect("firmware's rename");
    let st = s.status().expect("status");
    assert_eq!(st.deployments[0].boot_state, Some("trial"));
    assert_eq!(st.deployments[0].tries_left, Some(1));
    // kargs rewrite the entry under its current name, counter kept.
    s.change_kargs(&["quiet".into()], &[]).expect("kargs");
    assert_eq!(
        entry_names(&esp),
        ["strata-os-000001.conf", "strata-os-000002+1-1.conf"]
    );
    fs::rename(
        entries.join("strata-os-000002+1-1.conf"),
        entries.join("strata-os-000002.conf"),
    )
    .expect("systemd-bless-boot good");
    let booted = s.status().expect("status").deployments[0].path.clone();
    fs::create_dir_all(s.root().join("run")).expect("mkdir run");
    fs::write(s.root().join("run/strata-booted"), &booted).expect("booted marker");

    // v2 with the machine's own setting (its /etc wins), then its tries run out.
    let etc1 = s
        .root()
        .join(booted.trim_start_matches('/'))
        .join("etc/strata");
    fs::write(etc1.join("strata.conf"), "[boot]\ntries=3\n").expect("local setting");
    let c2 = counted_release(&s, t, 2, &[("strata/strata.conf", "[boot]\ntries=2\n")]);
    let r2 = deploy_following(&s, &c2);
    assert_eq!(r2.tries, 3);
    let v2_entry = format!("strata-os-{:06}+3.conf", r2.generation);
    let v2_bad = format!("strata-os-{:06}+0-3.conf", r2.generation);
    fs::rename(entries.join(&v2_entry), entries.join(&v2_bad)).expect("three failed tries");
    let st = s.status().expect("status");
    let v2 = st
        .deployments
        .iter()
        .find(|d| d.commit == c2.to_string())
        .expect("v2 listed");
    assert_eq!(v2.boot_state, Some("bad"));
    assert!(!v2.default, "a bad entry is never the default");
    assert!(st.deployments[0].booted && st.deployments[0].default);

    // The boot after the fallback: recorded, and the booted entry promoted.
    let a = s.assess_boot().expect("assess");
    assert_eq!(a.failed.len(), 1);
    assert!(a.failed[0].1 && a.promoted);
    let again = s.assess_boot().expect("again");
    assert!(
        again.failed.is_empty() && !again.promoted,
        "{again:?}: once is enough"
    );
    let st = s.status().expect("status");
    let v2 = st
        .deployments
        .iter()
        .find(|d| d.commit == c2.to_string())
        .expect("v2 listed");
    let failed = v2.failed.as_ref().expect("v2 failed");
    assert_eq!(
        failed.reason,
        "never reached boot-complete.target (3 tries used)"
    );
    assert!(failed.time > 0);
    assert!(st.deployments[0].booted && st.deployments[0].default);
    assert!(
        st.deployments[0].generation > Some(r2.generation),
        "promoted above the bad entry: {st:?}"
    );

    // upgrade refuses the failed commit, with nothing written…
    let before = entry_names(&esp);
    let quiet = strata_remote::progress::Silent;
    let e = s
        .upgrade(STATEROOT, &UpgradeOptions::default(), &quiet)
        .expect_err("refused");
    assert!(matches!(e, Error::FailedBefore { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains(&c2.to_string())
            && msg.contains("never reached")
            && msg.contains("--allow-failed"),
        "{msg}"
    );
    assert_eq!(entry_names(&esp), before);
    // …and deploys it when told to; the record goes.
    let opts = UpgradeOptions {
        allow_failed: true,
        ..Default::default()
    };
    let out = s.upgrade(STATEROOT, &opts, &quiet).expect("allowed");
    assert!(matches!(out, UpgradeOutcome::Deployed { .. }), "{out:?}");
    assert!(s.failure(&c2).expect("read").is_none());

    // A bad setting: the error names the file and line; nothing changes.
    fs::write(etc1.join("strata.conf"), "[boot]\n\ntries=lots\n").expect("bad setting");
    let c3 = counted_release(&s, t, 3, &[]);
    let before = (entry_names(&esp), s.deployments_on_disk().expect("list"));
    let e = s
        .deploy(
            &c3,
            &DeployOptions {
                stateroot: STATEROOT.into(),
                refspec: None,
                kargs: None,
                layer: None,
            },
        )
        .expect_err("bad settings");
    let msg = e.to_string();
    assert!(
        msg.contains("etc/strata/strata.conf:3:") && msg.contains("tries"),
        "{msg}"
    );
    assert_eq!(
        (entry_names(&esp), s.deployments_on_disk().expect("list")),
        before
    );
    assert!(
        s.settings().is_err(),
        "the booted deployment's settings are the bad ones"
    );
}

/// The health verdict on a counted boot: the last try runs as `+0-N` and
/// still counts (recorded, marked bad with the given tool); a commit
/// recorded before is not rebooted from again (no loop when every entry
/// is bad); a blessed boot is only reported. And a deployment picked by
/// hand from the menu is not made the default by the assessment.
#[test]
fn verdicts_and_manual_boots() {
    use std::os::unix::fs::PermissionsExt;
    use strata_sysroot::health::Verdict;

    let Some((tmp, s)) = new_sysroot() else {
        return;
    };
    let t = tmp.path();
    let esp = t.join("esp");
    let entries = esp.join("loader/entries");
    let bless = t.join("bless-boot");
    let calls = t.join("bless-calls");
    fs::write(
        &bless,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", calls.display()),
    )
    .expect("fake systemd-bless-boot");
    fs::set_permissions(&bless, fs::Permissions::from_mode(0o755)).expect("chmod");

    let c0 = release_files(&s, t, 0, &bootable_files(0, "6.1.0-1", &[]));
    let r0 = deploy_following(&s, &c0);
    let c1 = counted_release(&s, t, 1, &[]);
    let r1 = deploy_following(&s, &c1);
    let c2 = counted_release(&s, t, 2, &[]);
    let r2 = deploy_following(&s, &c2);
    // v1 blessed; v2 booted on its last try (tries=2: +0-2 while running).
    fs::rename(
        entries.join(format!("strata-os-{:06}+3.conf", r1.generation)),
        entries.join(format!("strata-os-{:06}.conf", r1.generation)),
    )
    .expect("bless v1");
    let last_try = format!("strata-os-{:06}+0-2.conf", r2.generation);
    fs::rename(
        entries.join(format!("strata-os-{:06}+3.conf", r2.generation)),
        entries.join(&last_try),
    )
    .expect("v2's last try");
    fs::create_dir_all(s.root().join("run")).expect("mkdir run");
    fs::write(s.root().join("run/strata-booted"), r2.id.rel_path()).expect("booted v2");
    let st = s.status().expect("status");
    let v2 = st.deployments.iter().find(|d| d.booted).expect("booted");
    assert_eq!(v2.boot_state, Some("trial"), "running its last try");

    assert_eq!(
        s.fail_boot("check x failed", &bless).expect("verdict"),
        Verdict::MarkedBad
    );
    assert_eq!(fs::read_to_string(&calls).expect("called"), "bad\n");
    assert!(s.failure(&c2).expect("read").is_some());
    // Every other entry bad too, v2 boots again: no second reboot.
    assert_eq!(
        s.fail_boot("check x failed", &bless).expect("verdict"),
        Verdict::FailedBefore
    );
    assert_eq!(
        fs::read_to_string(&calls).expect("called"),
        "bad\n",
        "not called again"
    );

    // v1 booted (the fallback): blessed, so a failing check only reports.
    fs::write(s.root().join("run/strata-booted"), r1.id.rel_path()).expect("booted v1");
    assert_eq!(
        s.fail_boot("check y failed", &bless).expect("verdict"),
        Verdict::NotOnTrial
    );

    // A deployment picked by hand from the menu (v0, older than the
    // default v1) is not promoted over v1, though the bad v2 is newer.
    assert!(r0.generation < r2.generation);
    let before = entry_names(&esp);
    fs::write(s.root().join("run/strata-booted"), r0.id.rel_path()).expect("booted v0 by hand");
    let a = s.assess_boot().expect("assess");
    assert!(!a.promoted, "{a:?}");
    assert_eq!(entry_names(&esp), before);
}
