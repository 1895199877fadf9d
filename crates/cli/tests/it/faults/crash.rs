//! A commit killed at any moment leaves a repository that verifies, whose
//! ref is absent or names a complete commit, and where the same commit can
//! simply be made again.

use std::path::Path;
use std::time::Duration;

use crate::common::*;

/// Checks the repository a killed commit left, then commits again.
fn recovers(repo: &Path, tree: &Path, expected: &str) {
    let head = on(repo, ["rev-parse", "main"]);
    if head.status.success() {
        assert_eq!(head.line(), expected, "the ref names an unexpected commit");
    }
    on(repo, ["fsck"]).ok();
    if have_ostree() {
        ostree_on(repo, ["fsck"]).ok();
    }
    // With no parent, whether or not the killed commit moved the ref.
    let again = commit(repo, "main", tree, &["--parent", "none"]);
    assert_eq!(again, expected, "the rerun");
    on(repo, ["fsck"]).ok();
    if have_ostree() {
        ostree_on(repo, ["fsck"]).ok();
    }
}

/// The special tree, and its commit made undisturbed in a repository of `mode`.
fn fixture(tmp: &Path, mode: &str) -> (std::path::PathBuf, String) {
    let tree = special_tree(&tmp.join("tree"));
    let clean = tmp.join("clean");
    init(&clean, mode);
    let expected = commit(&clean, "main", &tree, &[]);
    (tree, expected)
}

fn at_fault_point(point: &str) {
    for mode in ["bare", "archive"] {
        let tmp = tempdir();
        let (tree, expected) = fixture(tmp.path(), mode);
        let repo = tmp.path().join("repo");
        init(&repo, mode);
        let mut cmd = strata_cmd(commit_args(&repo, "main", "--tree", &tree, &[]));
        cmd.env("STRATA_FAULT", point);
        let r = run(&mut cmd);
        assert!(
            r.status.code().is_none(),
            "{mode}: the commit should have aborted at {point}: {r:#?}"
        );
        on(&repo, ["rev-parse", "main"]).failed();
        if point != "commit-written" {
            // The commit object is placed after everything it names: a
            // commit present but incomplete would pass for complete.
            let commits: Vec<_> = objects(&repo)
                .into_iter()
                .filter(|o| o.extension().is_some_and(|e| e == "commit"))
                .collect();
            assert!(
                commits.is_empty(),
                "{mode}: {commits:?} placed before the tree"
            );
        }
        recovers(&repo, &tree, &expected);
    }
}

#[test]
fn crash_when_objects_staged() {
    at_fault_point("objects-staged");
}

#[test]
fn crash_when_objects_half_renamed() {
    at_fault_point("objects-half-renamed");
}

#[test]
fn crash_when_objects_placed() {
    at_fault_point("objects-placed");
}

#[test]
fn crash_when_commit_written() {
    at_fault_point("commit-written");
}

/// A real SIGKILL at a few moments during the commit of the tree with the
/// 65 MiB file. Which phase each one hits varies; every outcome must pass.
#[test]
fn kill_9_mid_commit() {
    for (mode, delays_ms) in [("bare", [20, 80, 200]), ("archive", [100, 400, 900])] {
        let tmp = tempdir();
        let (tree, expected) = fixture(tmp.path(), mode);
        for ms in delays_ms {
            let repo = tmp.path().join(format!("repo-{ms}"));
            init(&repo, mode);
            let mut child = strata_cmd(commit_args(&repo, "main", "--tree", &tree, &[]))
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("spawn strata commit");
            std::thread::sleep(Duration::from_millis(ms));
            // Fails only if the commit already finished, which is fine too.
            let _ = child.kill();
            let status = child.wait().expect("wait for strata");
            eprintln!("{mode}, killed after {ms} ms: {status}");
            recovers(&repo, &tree, &expected);
        }
    }
}
