//! Deploy, local /etc edits, upgrade, rollback: what `status`, the boot
//! entries, and the deployments' /etc and /var hold after each step.

use std::fs;

use serde_json::json;

use crate::common::machine::*;

/// v1's /etc defaults.
const ETC_V1: &[(&str, &str)] = &[
    ("hostname", "factory\n"),
    ("motd", "welcome to v1\n"),
    ("issue", "Test OS 1\n"),
];
/// v2 changes every default and adds one.
const ETC_V2: &[(&str, &str)] = &[
    ("hostname", "factory2\n"),
    ("motd", "welcome to v2\n"),
    ("issue", "Test OS 2\n"),
    ("new.conf", "new in v2\n"),
];

/// The fields of one `status --json` deployment a test compares.
fn summary(d: &serde_json::Value) -> serde_json::Value {
    json!({
        "commit": d["commit"],
        "default": d["default"],
        "rollback": d["rollback"],
        "booted": d["booted"],
        "version": d["version"],
        "refspec": d["refspec"],
        "kargs": d["kargs"],
    })
}

fn deployment(commit: &str, default: bool, version: &str, kargs: &[&str]) -> serde_json::Value {
    json!({
        "commit": commit,
        "default": default,
        "rollback": !default,
        "booted": false,
        "version": version,
        "refspec": REFSPEC,
        "kargs": kargs,
    })
}

fn summaries(m: &Machine) -> Vec<serde_json::Value> {
    let st = m.status();
    assert_eq!(st["schema"], 1, "status --json schema: {st:#}");
    st["deployments"]
        .as_array()
        .unwrap_or_else(|| panic!("no deployments array: {st:#}"))
        .iter()
        .map(summary)
        .collect()
}

/// Readers that order entries by file name (grub's blscfg) and readers
/// that order them by their `version` line must agree.
fn assert_names_sort_like_versions(m: &Machine, when: &str) {
    let entries = m.entries();
    let by_name: Vec<&str> = entries.iter().map(|e| e.version.as_str()).collect();
    let mut by_version = by_name.clone();
    by_version.sort_unstable();
    let files: Vec<&str> = entries.iter().map(|e| e.file_name.as_str()).collect();
    assert_eq!(
        by_name, by_version,
        "{when}: entries sorted by file name {files:?} are not sorted by version"
    );
    assert_eq!(
        entries.last().map(|e| &e.file_name),
        Some(&m.default_entry().file_name),
        "{when}: the last entry by name must be the default"
    );
}

#[test]
fn upgrade_keeps_local_etc_and_kargs_and_rollback_returns() {
    let Some(m) = Machine::new() else { return };
    let c1 = m.release_tree(1, KVER, ETC_V1);
    m.sys(["deploy", REFSPEC, "--karg", "quiet"]).ok();
    let d1 = m.deployment_of(&c1);
    assert_eq!(m.default_deployment(), d1);
    assert_eq!(
        summaries(&m),
        [
            json!({"commit": c1, "default": true, "rollback": false, "booted": false,
                "version": "1", "refspec": REFSPEC, "kargs": ["quiet"]})
        ]
    );

    // The machine's own changes: one edited, one added, one removed.
    let etc1 = d1.join("etc");
    fs::write(etc1.join("hostname"), "mybox\n").expect("edit /etc/hostname");
    fs::write(etc1.join("local.conf"), "mine\n").expect("add /etc/local.conf");
    fs::remove_file(etc1.join("motd")).expect("remove /etc/motd");

    // v2: new defaults and a newer kernel beside the old one.
    let v2 = bootable_tree(&m.path("v2"), 2, "6.2.0-1", ETC_V2);
    add_kernel(&v2, KVER);
    let c2 = m.release(&v2, 2);

    let check = m.sys(["upgrade", "--check"]).ok();
    assert!(
        check
            .stdout
            .contains(&format!("update available: {c1} -> {c2}")),
        "{check:#?}"
    );
    assert_eq!(m.deployments().len(), 1, "--check deployed something");

    let up = m.sys(["upgrade"]).ok();
    assert!(up.stdout.contains("deployed"), "{up:#?}");
    let d2 = m.deployment_of(&c2);
    assert_eq!(m.default_deployment(), d2);
    assert_eq!(
        summaries(&m),
        [
            deployment(&c2, true, "2", &["quiet"]),
            deployment(&c1, false, "1", &["quiet"])
        ]
    );
    let again = m.sys(["upgrade", "--check"]);
    assert_eq!(again.status.code(), Some(77), "up to date: {again:#?}");

    let etc2 = d2.join("etc");
    assert_eq!(read(&etc2.join("hostname")), "mybox\n", "the local edit");
    assert_eq!(read(&etc2.join("local.conf")), "mine\n", "the local file");
    assert!(
        !etc2.join("motd").exists(),
        "a file removed on the machine came back with v2"
    );
    assert_eq!(
        read(&etc2.join("issue")),
        "Test OS 2\n",
        "the changed default"
    );
    assert_eq!(
        read(&etc2.join("new.conf")),
        "new in v2\n",
        "the new default"
    );
    assert_eq!(
        read(&etc1.join("issue")),
        "Test OS 1\n",
        "v1's /etc changed"
    );

    let entry = m.default_entry();
    assert!(entry.title.contains("Test OS 2"), "{entry:#?}");
    assert!(
        entry.options.split_whitespace().any(|a| a == "quiet"),
        "kargs carried: {entry:#?}"
    );
    assert_eq!(
        read(&m.on_esp(&entry.linux)),
        "vmlinuz 6.2.0-1\n",
        "the newest kernel boots"
    );
    m.assert_sound("after the upgrade");
    assert_names_sort_like_versions(&m, "after the upgrade");

    let back = m.sys(["rollback"]).ok();
    assert!(back.stdout.contains("default is now"), "{back:#?}");
    assert_eq!(m.default_deployment(), d1);
    assert_eq!(
        summaries(&m),
        [
            deployment(&c1, true, "1", &["quiet"]),
            deployment(&c2, false, "2", &["quiet"])
        ]
    );
    assert_eq!(
        read(&m.on_esp(&m.default_entry().linux)),
        "vmlinuz 6.1.0-1\n"
    );
    m.assert_sound("after the rollback");
    assert_names_sort_like_versions(&m, "after the rollback");
}

/// Generations past 9 are where a plain number and its zero-padded file
/// name start to sort differently.
#[test]
fn entry_names_sort_like_their_versions() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(1, KVER, ETC_V1);
    m.sys(["deploy", REFSPEC]).ok();
    m.release_tree(2, KVER, ETC_V2);
    m.sys(["upgrade"]).ok();
    assert_names_sort_like_versions(&m, "generation 2");
    while m.default_entry().generation() < 12 {
        m.sys(["rollback"]).ok();
        let g = m.default_entry().generation();
        assert_names_sort_like_versions(&m, &format!("generation {g}"));
    }
    m.assert_sound("after twelve generations");
}

/// A summary past its signed expiry (a frozen mirror) stops an upgrade
/// with a message naming the way out; an air-gapped machine takes it with
/// `--allow-expired-summary`.
#[test]
fn upgrade_refuses_an_expired_summary_unless_allowed() {
    let Some(m) = Machine::new() else { return };
    let c1 = m.release_tree(1, KVER, ETC_V1);
    m.sys(["deploy", REFSPEC]).ok();
    let c2 = m.release_tree(2, KVER, ETC_V2);
    let mut sign =
        crate::common::strata_cmd(["summary".as_ref(), "--repo".as_ref(), m.server.as_os_str()]);
    sign.args(["--update", "--expires-in", "1s", "--sign-key"])
        .arg(&m.key.secret);
    crate::common::run(&mut sign).ok();
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let r = m.sys(["upgrade"]).failed();
    assert!(
        r.stderr.contains("expired") && r.stderr.contains("--allow-expired-summary"),
        "{r:#?}"
    );
    assert_eq!(m.default_commit(), c1, "nothing deployed");
    m.sys(["upgrade", "--allow-expired-summary"]).ok();
    assert_eq!(m.default_commit(), c2);
    m.assert_sound("after an upgrade from an expired summary");
}

/// /var lives in the stateroot: one directory every deployment of the
/// stateroot uses, which upgrade, rollback and cleanup leave alone.
#[test]
fn var_is_shared_by_the_stateroots_deployments() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(1, KVER, ETC_V1);
    m.sys(["deploy", REFSPEC]).ok();
    let state = m.sysroot.join("strata/state");
    let var = state.join(STATEROOT).join("var");
    assert!(var.is_dir(), "{} is missing after deploy", var.display());
    let data = var.join("lib/app/data");
    fs::create_dir_all(data.parent().expect("a parent")).expect("create var/lib/app");
    fs::write(&data, "precious\n").expect("write /var data");

    m.release_tree(2, KVER, ETC_V2);
    m.sys(["upgrade"]).ok();
    m.sys(["rollback"]).ok();
    m.sys(["cleanup"]).ok();
    assert_eq!(names(&state), [STATEROOT], "one stateroot, one /var");
    assert_eq!(names(&state.join(STATEROOT)), ["var"]);
    assert_eq!(read(&data), "precious\n", "/var data lost");
    let st = m.status();
    let stateroots: Vec<&serde_json::Value> = st["deployments"]
        .as_array()
        .map(|d| d.iter().map(|d| &d["stateroot"]).collect())
        .unwrap_or_default();
    assert_eq!(
        stateroots,
        [STATEROOT, STATEROOT],
        "both use the same /var: {st:#}"
    );
}

#[test]
fn rollback_without_a_second_deployment_fails_clearly() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(1, KVER, ETC_V1);
    m.sys(["deploy", REFSPEC]).ok();
    let before = m.entries();
    let r = m.sys(["rollback"]).failed();
    assert!(r.stderr.contains("nothing to roll back to"), "{r:#?}");
    assert_eq!(m.entries(), before, "a failed rollback changed the entries");
}
