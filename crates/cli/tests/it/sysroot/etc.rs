//! The /etc merge through the CLI: what an upgrade keeps when a default
//! changes kind under a local change, and what `etc-diff` reports.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use crate::common::machine::*;

/// The `conflict:` lines of a deploy's output.
fn conflicts(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("conflict:"))
        .collect()
}

#[test]
fn default_file_became_a_directory_under_a_local_edit() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(
        1,
        KVER,
        &[
            ("hostname", "factory\n"),
            ("app.conf", "setting=1\n"),
            ("other.conf", "untouched\n"),
        ],
    );
    m.sys(["deploy", REFSPEC]).ok();
    let etc1 = m.default_deployment().join("etc");
    fs::write(etc1.join("app.conf"), "setting=mine\n").expect("edit /etc/app.conf");
    // Both files become directories upstream; only one was edited here.
    let c2 = m.release_tree(
        2,
        KVER,
        &[
            ("hostname", "factory\n"),
            ("app.conf/main.conf", "setting=2\n"),
            ("other.conf/main.conf", "new layout\n"),
        ],
    );
    let r = m.sys(["upgrade"]).ok();
    assert_eq!(
        conflicts(&r.stdout),
        [
            "conflict: /etc/app.conf is a file here but a directory in the new defaults; kept the local one"
        ],
        "{r:#?}"
    );
    let etc2 = m.deployment_of(&c2).join("etc");
    assert_eq!(
        read(&etc2.join("app.conf")),
        "setting=mine\n",
        "the local file"
    );
    assert_eq!(
        read(&etc2.join("other.conf/main.conf")),
        "new layout\n",
        "an untouched default takes the new kind"
    );
    assert_eq!(read(&etc2.join("hostname")), "factory\n");
    m.assert_sound("after the upgrade");
}

#[test]
fn default_directory_became_a_file_under_a_local_addition() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(
        1,
        KVER,
        &[("hostname", "factory\n"), ("app.d/default.conf", "a=1\n")],
    );
    m.sys(["deploy", REFSPEC]).ok();
    let etc1 = m.default_deployment().join("etc");
    fs::write(etc1.join("app.d/mine.conf"), "b=2\n").expect("add /etc/app.d/mine.conf");
    let c2 = m.release_tree(
        2,
        KVER,
        &[("hostname", "factory\n"), ("app.d", "a file now\n")],
    );
    let r = m.sys(["upgrade"]).ok();
    assert_eq!(
        conflicts(&r.stdout),
        [
            "conflict: /etc/app.d is a directory here but a file in the new defaults; kept the local one"
        ],
        "{r:#?}"
    );
    let etc2 = m.deployment_of(&c2).join("etc");
    assert!(
        etc2.join("app.d").is_dir(),
        "the local directory was replaced"
    );
    assert_eq!(
        read(&etc2.join("app.d/mine.conf")),
        "b=2\n",
        "the local file"
    );
    m.assert_sound("after the upgrade");
}

/// `etc-diff` lines as (kind, path).
fn etc_diff(m: &Machine) -> Vec<(String, String)> {
    m.sys(["etc-diff"])
        .ok()
        .stdout
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            match (w.next(), w.next(), w.next()) {
                (Some(k), Some(p), None) => (k.to_owned(), p.to_owned()),
                _ => panic!("etc-diff line {l:?} is not KIND PATH"),
            }
        })
        .collect()
}

#[test]
fn etc_diff_lists_added_modified_and_deleted() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(
        1,
        KVER,
        &[
            ("hostname", "factory\n"),
            ("motd", "hello\n"),
            ("issue", "Test OS 1\n"),
            ("ssh/sshd_config", "PermitRootLogin no\n"),
            ("cron.d/job", "* * * * * true\n"),
        ],
    );
    m.sys(["deploy", REFSPEC]).ok();
    assert_eq!(
        etc_diff(&m),
        Vec::new(),
        "a fresh deployment differs from nothing"
    );

    let etc = m.default_deployment().join("etc");
    fs::write(etc.join("hostname"), "mybox\n").expect("edit");
    fs::write(etc.join("ssh/sshd_config"), "PermitRootLogin yes\n").expect("edit");
    fs::set_permissions(etc.join("issue"), fs::Permissions::from_mode(0o600)).expect("chmod");
    fs::write(etc.join("local.conf"), "mine\n").expect("add");
    fs::create_dir(etc.join("newdir")).expect("mkdir");
    fs::write(etc.join("newdir/x"), "x\n").expect("add");
    fs::remove_file(etc.join("motd")).expect("remove");
    fs::remove_dir_all(etc.join("cron.d")).expect("remove a directory");

    let want: Vec<(String, String)> = [
        ("D", "/etc/cron.d"),
        ("M", "/etc/hostname"),
        ("M", "/etc/issue"),
        ("A", "/etc/local.conf"),
        ("D", "/etc/motd"),
        ("A", "/etc/newdir"),
        ("A", "/etc/newdir/x"),
        ("M", "/etc/ssh/sshd_config"),
    ]
    .iter()
    .map(|(k, p)| ((*k).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(etc_diff(&m), want);
}
