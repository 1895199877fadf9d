//! A repository whose filesystem fills up: the commit or pull fails with
//! the path and the cause named, no ref moves, nothing half-written stays
//! (fsck passes, no staging directory is left), and once there is room
//! the same command completes.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A tree of small files and one of 12 MiB that does not compress.
fn big_tree(dest: &Path) -> PathBuf {
    let tree = dest.join("tree");
    write_files(
        &tree,
        &[("etc/hostname", "full\n"), ("usr/bin/tool", "#!/bin/sh\n")],
    );
    let mut noise = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open("/dev/urandom").expect("open /dev/urandom"),
            12 << 20,
        ),
        &mut noise,
    )
    .expect("read /dev/urandom");
    std::fs::write(tree.join("usr/big"), noise).expect("write usr/big");
    tree
}

/// Nothing half-written: the ref is absent, fsck passes, no staging left.
fn clean_after_failure(repo: &Path, branch: &str) {
    on(repo, ["rev-parse", branch]).failed();
    on(repo, ["fsck"]).ok();
    let leftovers: Vec<String> = std::fs::read_dir(repo.join("tmp"))
        .expect("list tmp")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("staging-") || n.starts_with(".new-"))
        .collect();
    assert!(leftovers.is_empty(), "left in tmp/: {leftovers:?}");
}

fn says_full(r: &Run, repo: &Path) {
    assert!(
        r.stderr.contains("No space left on device") && r.stderr.contains(&*repo.to_string_lossy()),
        "the error should name the full repository and the cause: {r:#?}"
    );
}

#[test]
fn commit_into_a_full_filesystem() {
    if !have_root("mounting a small tmpfs") {
        return;
    }
    let tmp = tempdir();
    let tree = big_tree(tmp.path());
    let fs = Tmpfs::mount(&tmp.path().join("small"), "8m");
    let repo = tmp.path().join("small/repo");
    for mode in ["bare", "archive"] {
        let _ = std::fs::remove_dir_all(&repo);
        init(&repo, mode);
        let r = strata(commit_args(&repo, "main", "--tree", &tree, &[]));
        says_full(&r.failed(), &repo);
        clean_after_failure(&repo, "main");
    }
    fs.resize("64m");
    commit(&repo, "main", &tree, &[]);
    on(&repo, ["fsck"]).ok();
}

#[test]
fn pull_into_a_full_filesystem() {
    if !have_root("mounting a small tmpfs") {
        return;
    }
    let tmp = tempdir();
    let tree = big_tree(tmp.path());
    let server = tmp.path().join("server");
    init(&server, "archive");
    let want = commit(&server, "main", &tree, &[]);
    let fs = Tmpfs::mount(&tmp.path().join("small"), "8m");
    let client = tmp.path().join("small/client");
    init(&client, "bare");
    let url = format!("file://{}", server.display());
    on(
        &client,
        ["remote", "add", "origin", &url, "--no-sign-verify"],
    )
    .ok();
    let r = on(&client, ["pull", "origin", "main"]);
    says_full(&r.failed(), &client);
    clean_after_failure(&client, "origin:main");
    fs.resize("64m");
    on(&client, ["pull", "origin", "main"]).ok();
    assert_eq!(on(&client, ["rev-parse", "origin:main"]).ok().line(), want);
    on(&client, ["fsck"]).ok();
}
