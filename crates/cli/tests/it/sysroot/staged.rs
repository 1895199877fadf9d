//! Staged deployments (`upgrade --stage`, `finalize-staged`) on a
//! directory sysroot: /etc edits made after staging reach the new
//! deployment, cleanup keeps what is staged, a crash at each finalize
//! point leaves a sound machine and the rerun finishes, and a failed
//! finalize leaves the old default and is reported until a deploy works.

use std::fs;

use crate::common::machine::*;

/// v1 deployed and booted with /etc/hostname edited; v2 released.
fn v2_released() -> Option<(Machine, String, String)> {
    let m = Machine::new()?;
    let c1 = m.release_tree(1, KVER, &[("hostname", "factory\n")]);
    m.sys(["deploy", REFSPEC]).ok();
    m.mark_booted(m.default_entry().deployment());
    let c2 = m.release_tree(2, KVER, &[("hostname", "factory\n"), ("new.conf", "v2\n")]);
    Some((m, c1, c2))
}

fn staged_commit(m: &Machine) -> Option<String> {
    let st = m.status();
    st["deployments"]
        .as_array()
        .and_then(|a| a.iter().find(|d| d["staged"] == true))
        .map(|d| d["commit"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn edits_after_staging_reach_the_staged_deployment() {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    let out = m.sys(["upgrade", "--stage"]).ok();
    assert!(out.stdout.contains("staged"), "{out:#?}");
    assert_eq!(staged_commit(&m).as_deref(), Some(c2.as_str()));
    assert_eq!(m.default_commit(), c1, "the old default until finalized");
    assert!(
        !m.deployment_of(&c2).join("etc").exists(),
        "no /etc before finalize: nothing can boot it"
    );
    // cleanup keeps it; a second --stage of the same commit has nothing to do.
    m.sys(["cleanup"]).ok();
    assert_eq!(staged_commit(&m).as_deref(), Some(c2.as_str()));
    assert!(
        m.sys(["upgrade", "--stage"])
            .ok()
            .stdout
            .contains("up to date")
    );

    fs::write(
        m.deployment_of(&c1).join("etc/hostname"),
        "edited after staging\n",
    )
    .expect("edit the booted /etc");
    let out = m.sys(["finalize-staged"]).ok();
    assert!(out.stdout.contains("deployed"), "{out:#?}");
    assert_eq!(m.default_commit(), c2);
    let etc = m.deployment_of(&c2).join("etc");
    assert_eq!(read(&etc.join("hostname")), "edited after staging\n");
    assert_eq!(read(&etc.join("new.conf")), "v2\n");
    assert_eq!(staged_commit(&m), None);
    assert!(
        m.sys(["finalize-staged"])
            .ok()
            .stdout
            .contains("nothing is staged")
    );
    m.sys(["cleanup"]).ok();
    m.assert_clean("after finalize and cleanup");
}

/// A crash at `point` inside finalize: the machine is sound (old default,
/// or the new one complete), and running finalize again finishes the job.
fn finalize_crash(point: &str, done: bool) {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    m.sys(["upgrade", "--stage"]).ok();
    m.crash(point, ["finalize-staged"]);
    let when = format!("after a crash at {point}");
    m.assert_sound(&when);
    assert_eq!(&m.default_commit(), if done { &c2 } else { &c1 }, "{when}");
    m.sys(["finalize-staged"]).ok();
    assert_eq!(m.default_commit(), c2, "{when}, rerun");
    assert_eq!(m.entries().len(), 2, "{when}: one entry per deployment");
    assert_eq!(read(&m.default_deployment().join("etc/new.conf")), "v2\n");
    m.sys(["cleanup"]).ok();
    m.assert_clean(&format!("{when}, rerun and cleanup"));
}

#[test]
fn finalize_crash_when_etc_merged() {
    finalize_crash("finalize-etc-merged", false);
}

#[test]
fn finalize_crash_when_kernel_installed() {
    finalize_crash("kernel-installed", false);
}

#[test]
fn finalize_crash_when_entry_written() {
    finalize_crash("entry-written", true);
}

#[test]
fn failed_finalize_keeps_the_old_default_and_is_reported() {
    let Some((m, c1, c2)) = v2_released() else {
        return;
    };
    m.sys(["upgrade", "--stage"]).ok();
    // Broken settings in the machine's /etc make the finalize fail.
    let conf = m.deployment_of(&c1).join("etc/strata/strata.conf");
    fs::create_dir_all(conf.parent().expect("parent")).expect("mkdir");
    fs::write(&conf, "[boot]\ntries=often\n").expect("bad settings");
    let r = m.sys(["finalize-staged"]);
    assert!(!r.status.success(), "{r:#?}");
    assert!(r.stderr.contains("strata.conf:2"), "{r:#?}");
    assert_eq!(m.default_commit(), c1);
    assert_eq!(staged_commit(&m), None, "tried once, as ostree");
    let st = m.status();
    let f = &st["finalize_failure"];
    assert!(
        f["error"].as_str().unwrap_or_default().contains("tries"),
        "{st:#}"
    );
    assert!(
        f["deployment"].as_str().unwrap_or_default().contains(&c2),
        "{st:#}"
    );
    let check = m.sys(["finalize-staged", "--check"]);
    assert_eq!(check.status.code(), Some(1), "{check:#?}");
    assert!(check.stderr.contains("failed to finalize"), "{check:#?}");
    // Fixed, the next upgrade deploys and the report goes.
    fs::remove_file(&conf).expect("fix settings");
    m.sys(["upgrade"]).ok();
    assert_eq!(m.default_commit(), c2);
    assert!(m.status()["finalize_failure"].is_null());
    m.sys(["finalize-staged", "--check"]).ok();
}

/// Pins the review fix: a deploy, rollback or kargs change after staging
/// discards the stage, as in ostree; before, the finalize at shutdown gave
/// the staged deployment the top generation and undid the later choice.
#[test]
fn a_later_choice_discards_the_stage() {
    let Some((m, c1, _c2)) = v2_released() else {
        return;
    };
    for (what, args) in [
        ("kargs", vec!["kargs", "--append", "quiet"]),
        ("deploy", vec!["deploy", c1.as_str()]),
        ("rollback", vec!["rollback"]),
    ] {
        m.sys(["upgrade", "--stage"]).ok();
        assert!(staged_commit(&m).is_some(), "{what}: staged");
        m.sys(&args).ok();
        assert_eq!(staged_commit(&m), None, "{what} discards the stage");
        let before = m.default_commit();
        assert!(
            m.sys(["finalize-staged"])
                .ok()
                .stdout
                .contains("nothing is staged")
        );
        assert_eq!(m.default_commit(), before, "{what}: the choice stands");
        m.sys(["cleanup"]).ok();
    }
}

/// Pins the review fix: a commit with its own /etc and no /usr/etc keeps
/// that /etc when staged and finalized (finalize took it for a leftover
/// of a crashed finalize and replaced it with an empty one).
#[test]
fn a_commit_without_usr_etc_keeps_its_etc() {
    let Some((m, _c1, _c2)) = v2_released() else {
        return;
    };
    let tree = m.path("v3");
    add_kernel(&tree, KVER);
    fs::create_dir_all(tree.join("etc")).expect("mkdir etc");
    fs::write(tree.join("etc/own.conf"), "the commit's own\n").expect("etc file");
    let c3 = m.release(&tree, 3);
    m.sys(["upgrade", "--stage"]).ok();
    m.sys(["finalize-staged"]).ok();
    assert_eq!(m.default_commit(), c3);
    assert_eq!(
        read(&m.deployment_of(&c3).join("etc/own.conf")),
        "the commit's own\n"
    );
}
