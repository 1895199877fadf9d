//! The booted deployment: never removed, whatever the entries say, and
//! its /etc is the machine's.

use std::fs;

use crate::common::machine::*;

#[test]
fn cleanup_keeps_the_booted_deployment() {
    let Some(m) = Machine::new() else { return };
    let mut commits = Vec::new();
    for v in 1..=4 {
        commits.push(m.release_tree(v, &format!("6.{v}.0-1"), &[("hostname", "box\n")]));
        m.sys(["deploy", REFSPEC]).ok();
        if v == 1 {
            m.mark_booted(m.default_entry().deployment());
        }
    }
    let booted = m.deployment_of(&commits[0]);
    m.sys(["cleanup"]).ok();

    let kept: Vec<String> = m.deployments().iter().map(|d| commit_of(d)).collect();
    let mut want = vec![commits[0].clone(), commits[2].clone(), commits[3].clone()];
    want.sort();
    assert_eq!(
        kept, want,
        "booted v1, rollback v3, default v4 stay; v2 goes"
    );
    m.assert_clean("after cleanup");

    let st = m.status();
    let flags: Vec<(String, bool, bool, bool)> = st["deployments"]
        .as_array()
        .map(|ds| {
            ds.iter()
                .map(|d| {
                    (
                        d["commit"].as_str().unwrap_or_default().to_owned(),
                        d["booted"] == true,
                        d["default"] == true,
                        d["rollback"] == true,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        flags,
        [
            (commits[3].clone(), false, true, false),
            (commits[2].clone(), false, false, true),
            (commits[0].clone(), true, false, false),
        ],
        "{st:#}"
    );
    // Still bootable: its entry and kernel are there (assert_clean), and
    // a second cleanup keeps it too.
    m.sys(["cleanup"]).ok();
    m.assert_complete(&booted, &commits[0], "after a second cleanup");
}

/// Booted into v1 with v2 deployed but not yet booted, the admin edits
/// /etc; `etc-diff` shows it as the machine's change, so the next upgrade
/// must carry it, which merging from v2's /etc would lose.
#[test]
fn etc_edits_on_the_booted_deployment_reach_the_next_upgrade() {
    let Some(m) = Machine::new() else { return };
    let c1 = m.release_tree(1, KVER, &[("hostname", "factory\n")]);
    m.sys(["deploy", REFSPEC]).ok();
    m.mark_booted(m.default_entry().deployment());
    m.release_tree(2, KVER, &[("hostname", "factory\n")]);
    m.sys(["upgrade"]).ok();

    fs::write(m.deployment_of(&c1).join("etc/hostname"), "mybox\n").expect("edit /etc");
    let diff = m.sys(["etc-diff"]).ok();
    assert!(diff.stdout.contains("/etc/hostname"), "{diff:#?}");
    let c3 = m.release_tree(3, KVER, &[("hostname", "factory\n")]);
    m.sys(["upgrade"]).ok();
    assert_eq!(
        read(&m.deployment_of(&c3).join("etc/hostname")),
        "mybox\n",
        "the booted system's /etc edit was lost"
    );
}
