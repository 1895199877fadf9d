//! Kernel arguments: `kargs --append/--delete` rewrite the default entry's
//! command line and the origin, and the next deployment carries them.

use std::path::PathBuf;

use crate::common::machine::*;

/// The arguments after the ones strata manages (root and `strata=`).
fn user_kargs(e: &BootEntry) -> Vec<&str> {
    e.options
        .split_whitespace()
        .filter(|a| *a != "rw" && !a.starts_with("strata="))
        .collect()
}

fn status_kargs(m: &Machine, index: usize) -> serde_json::Value {
    m.status()["deployments"][index]["kargs"].clone()
}

#[test]
fn append_and_delete_reach_the_entry_status_and_next_deployment() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(1, KVER, &[("hostname", "box\n")]);
    m.sys([
        "deploy",
        REFSPEC,
        "--karg",
        "quiet",
        "--karg",
        "console=ttyS0",
        "--karg",
        "console=tty0",
    ])
    .ok();
    assert_eq!(
        m.sys(["kargs"]).ok().line(),
        "quiet console=ttyS0 console=tty0"
    );
    let before = m.default_entry();

    let r = m
        .sys([
            "kargs",
            "--append",
            "loglevel=3",
            "--append",
            "quiet",
            "--delete",
            "quiet",
        ])
        .ok();
    assert_eq!(r.line(), "console=ttyS0 console=tty0 loglevel=3 quiet");
    let e = m.default_entry();
    assert_eq!(
        e.file_name, before.file_name,
        "the entry is rewritten in place"
    );
    assert_eq!(e.deployment(), before.deployment());
    assert_eq!(
        user_kargs(&e),
        ["console=ttyS0", "console=tty0", "loglevel=3", "quiet"]
    );
    assert_eq!(
        status_kargs(&m, 0),
        serde_json::json!(["console=ttyS0", "console=tty0", "loglevel=3", "quiet"])
    );

    // `--delete KEY` takes every KEY=…; appending what is set adds nothing.
    let r = m
        .sys(["kargs", "--delete", "console", "--append", "quiet"])
        .ok();
    assert_eq!(r.line(), "loglevel=3 quiet");
    assert_eq!(user_kargs(&m.default_entry()), ["loglevel=3", "quiet"]);
    // `--delete KEY=VALUE` takes exactly that one.
    m.sys(["kargs", "--append", "loglevel=7"]).ok();
    let r = m.sys(["kargs", "--delete", "loglevel=3"]).ok();
    assert_eq!(r.line(), "quiet loglevel=7");
    assert_eq!(user_kargs(&m.default_entry()), ["quiet", "loglevel=7"]);

    // The next deployment starts from the changed arguments.
    m.release_tree(2, KVER, &[("hostname", "box\n")]);
    m.sys(["upgrade"]).ok();
    assert_eq!(user_kargs(&m.default_entry()), ["quiet", "loglevel=7"]);
    assert_eq!(
        status_kargs(&m, 0),
        serde_json::json!(["quiet", "loglevel=7"])
    );
    m.assert_sound("after kargs and an upgrade");
}

#[test]
fn bad_kargs_changes_fail_clearly_and_change_nothing() {
    let Some(m) = Machine::new() else { return };
    m.release_tree(1, KVER, &[("hostname", "box\n")]);
    m.sys(["deploy", REFSPEC, "--karg", "quiet"]).ok();
    let origin = PathBuf::from(format!("{}.origin", m.default_deployment().display()));
    let (entries, origin_text) = (m.entries(), read(&origin));

    let r = m.sys(["kargs", "--delete", "splash"]).failed();
    assert!(
        r.stderr.contains("\"splash\" is not set"),
        "deleting an unset argument: {r:#?}"
    );
    // One bad deletion fails the whole change.
    let r = m
        .sys(["kargs", "--delete", "quiet", "--delete", "splash"])
        .failed();
    assert!(r.stderr.contains("splash"), "{r:#?}");
    let r = m.sys(["kargs", "--append", "a b"]).failed();
    assert!(r.stderr.contains("one non-empty word"), "{r:#?}");

    assert_eq!(m.entries(), entries, "a failed kargs changed the entries");
    assert_eq!(
        read(&origin),
        origin_text,
        "a failed kargs changed the origin"
    );
    assert_eq!(m.sys(["kargs"]).ok().line(), "quiet");
}
