//! A flipped byte in any object: fsck finds it and names it; `fsck
//! --delete` removes it and marks the commits that needed it partial, so
//! the next fsck passes.

use std::path::{Path, PathBuf};

use crate::common::*;

struct Repo {
    _tmp: tempfile::TempDir,
    path: PathBuf,
    /// The first commit, the parent of `head`.
    first: String,
    head: String,
}

/// A repository with two commits on `main`, the second adding a file.
fn two_commits(mode: &str) -> Repo {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(
        &tree,
        &[("etc/hostname", "box\n"), ("usr/bin/tool", "#!/bin/sh\n")],
    );
    let path = tmp.path().join("repo");
    init(&path, mode);
    let first = commit(&path, "main", &tree, &[]);
    write_files(&tree, &[("usr/lib/new", "new in the second commit\n")]);
    let head = commit(&path, "main", &tree, &[]);
    on(&path, ["fsck"]).ok();
    Repo {
        _tmp: tmp,
        path,
        first,
        head,
    }
}

/// Corrupts `object`, then checks fsck, fsck --delete, and fsck again.
fn detect_and_delete(repo: &Path, object: &Path, needed_by: Option<&str>) {
    let checksum = object_checksum(object);
    flip_byte(object, -1);

    let r = on(repo, ["fsck"]).failed();
    assert!(
        r.stderr.contains(&checksum),
        "fsck should name {checksum}: {r:#?}"
    );
    assert!(object.exists(), "plain fsck must not delete anything");

    on(repo, ["fsck", "--delete"]).failed();
    assert!(
        !object.exists(),
        "fsck --delete should remove {}",
        object.display()
    );
    if let Some(c) = needed_by {
        let partial = show_json(repo, c)["partial"] == serde_json::json!(true);
        let marker = repo.join(format!("state/{c}.commitpartial")).exists();
        assert!(partial && marker, "commit {c} should be marked partial");
    }
    on(repo, ["fsck"]).ok();
    if have_ostree() {
        ostree_on(repo, ["fsck"]).ok();
    }
}

fn file_ext(mode: &str) -> &'static str {
    if mode == "archive" { "filez" } else { "file" }
}

fn each_mode(f: impl Fn(&str)) {
    for mode in ["bare", "archive"] {
        f(mode);
    }
}

/// The parent commit: the head still checks out; history stops there.
#[test]
fn corrupt_commit() {
    each_mode(|mode| {
        let r = two_commits(mode);
        let obj = object_path(&r.path, &r.first, "commit");
        detect_and_delete(&r.path, &obj, None);
        let log = on(&r.path, ["log", "main"]).ok();
        assert!(log.stdout.contains(&r.head), "{log:#?}");
    });
}

#[test]
fn corrupt_dirtree() {
    each_mode(|mode| {
        let r = two_commits(mode);
        let tree = show_json(&r.path, &r.head)["root_dirtree"]
            .as_str()
            .map(str::to_owned);
        let obj = object_path(&r.path, &tree.expect("root_dirtree"), "dirtree");
        detect_and_delete(&r.path, &obj, Some(&r.head));
    });
}

#[test]
fn corrupt_dirmeta() {
    each_mode(|mode| {
        let r = two_commits(mode);
        let meta = show_json(&r.path, &r.head)["root_dirmeta"]
            .as_str()
            .map(str::to_owned);
        let obj = object_path(&r.path, &meta.expect("root_dirmeta"), "dirmeta");
        detect_and_delete(&r.path, &obj, Some(&r.head));
    });
}

#[test]
fn corrupt_file() {
    each_mode(|mode| {
        let r = two_commits(mode);
        let ext = file_ext(mode);
        let objs: Vec<PathBuf> = objects(&r.path)
            .into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == ext))
            .collect();
        assert_eq!(objs.len(), 3, "{mode}: one object per file: {objs:?}");
        detect_and_delete(&r.path, &objs[0], Some(&r.head));
    });
}

/// Deleting a corrupt head commit leaves its ref dangling (as ostree
/// does); fsck reports the ref until it is deleted.
#[test]
fn corrupt_head_commit() {
    each_mode(|mode| {
        let r = two_commits(mode);
        let obj = object_path(&r.path, &r.head, "commit");
        flip_byte(&obj, -1);
        let f = on(&r.path, ["fsck"]).failed();
        assert!(f.stderr.contains(&r.head), "{f:#?}");
        on(&r.path, ["fsck", "--delete"]).failed();
        assert!(!obj.exists());
        let f = on(&r.path, ["fsck"]).failed();
        assert!(f.stderr.contains("ref main"), "{f:#?}");
        on(&r.path, ["refs", "--delete", "main"]).ok();
        on(&r.path, ["fsck"]).ok();
    });
}
