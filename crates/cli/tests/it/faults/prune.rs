//! Prune removes what no kept commit reaches, and nothing else.

use std::fs;
use std::path::{Path, PathBuf};

use crate::common::*;

/// The bare-repository object holding exactly `content`, if any.
fn file_object_with(repo: &Path, content: &str) -> Option<PathBuf> {
    objects(repo)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "file"))
        .find(|p| fs::read(p).is_ok_and(|d| d == content.as_bytes()))
}

fn fsck_both(repo: &Path) {
    on(repo, ["fsck"]).ok();
    if have_ostree() {
        ostree_on(repo, ["fsck"]).ok();
    }
}

#[test]
fn deleted_branch_objects_go() {
    let tmp = tempdir();
    let shared: &[(&str, &str)] = &[("etc/hostname", "box\n"), ("usr/bin/tool", "tool\n")];
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_files(&a, shared);
    write_files(&a, &[("usr/share/only-a", "only on branch a\n")]);
    write_files(&b, shared);
    write_files(&b, &[("usr/share/only-b", "only on branch b\n")]);
    let repo = tmp.path().join("repo");
    init(&repo, "bare");
    commit(&repo, "a", &a, &[]);
    commit(&repo, "b", &b, &[]);
    let only_b = file_object_with(&repo, "only on branch b\n").expect("b's file is an object");
    let shared_obj = file_object_with(&repo, "box\n").expect("a shared file is an object");
    let before = objects(&repo).len();

    on(&repo, ["prune", "--refs-only", "--no-prune"]).ok();
    assert_eq!(objects(&repo).len(), before, "--no-prune deleted something");
    on(&repo, ["prune", "--refs-only"]).ok();
    assert_eq!(
        objects(&repo).len(),
        before,
        "prune deleted what refs reach"
    );

    on(&repo, ["refs", "--delete", "b"]).ok();
    on(&repo, ["prune", "--refs-only"]).ok();
    // b's commit, its root dirtree, usr/ and usr/share/ dirtrees, its file.
    assert_eq!(objects(&repo).len(), before - 5, "{:#?}", objects(&repo));
    assert!(!only_b.exists(), "b's own file is still an object");
    assert!(shared_obj.exists(), "a file a still needs was removed");

    let out = tmp.path().join("checkout");
    on(&repo, ["checkout".as_ref(), "a".as_ref(), out.as_os_str()]).ok();
    assert_same_tree(&manifest(&a), &manifest(&out), "branch a after prune");
    fsck_both(&repo);
}

#[test]
fn depth_zero_drops_history() {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    let repo = tmp.path().join("repo");
    init(&repo, "bare");
    let mut commits = Vec::new();
    for i in 1..=3 {
        write_files(&tree, &[("version", &format!("version {i}\n"))]);
        commits.push(commit(&repo, "main", &tree, &[]));
    }
    assert!(file_object_with(&repo, "version 1\n").is_some());

    on(&repo, ["prune", "--depth", "0"]).ok();
    for old in &commits[..2] {
        assert!(
            !object_path(&repo, old, "commit").exists(),
            "{old} is still there"
        );
    }
    assert!(object_path(&repo, &commits[2], "commit").exists());
    assert!(file_object_with(&repo, "version 1\n").is_none());
    assert!(file_object_with(&repo, "version 2\n").is_none());
    assert!(file_object_with(&repo, "version 3\n").is_some());
    let log = on(&repo, ["log", "main"]).ok();
    let listed: Vec<&str> = log
        .stdout
        .lines()
        .filter(|l| l.starts_with("commit "))
        .collect();
    assert_eq!(listed, [format!("commit {}", commits[2])], "{log:#?}");
    fsck_both(&repo);
}
