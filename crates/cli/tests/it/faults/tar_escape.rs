//! Tarball members that would land outside the tree are refused, and
//! nothing is written anywhere but the repository.

use std::fs;

use crate::common::*;

/// Commits a tarball of `members` from a working directory inside a fresh
/// temp dir; asserts the commit fails naming `culprit`, no ref appears, and
/// no path outside the repository changed.
fn refused(members: &[&str], culprit: &str) {
    let tmp = tempdir();
    let root = tmp.path();
    let work = root.join("work");
    let outside = root.join("outside");
    fs::create_dir_all(&work).expect("mkdir");
    fs::create_dir_all(&outside).expect("mkdir");
    let members: Vec<String> = members
        .iter()
        .map(|m| m.replace("OUTSIDE", &outside.display().to_string()))
        .collect();
    let members: Vec<&str> = members.iter().map(String::as_str).collect();
    let tar = root.join("evil.tar");
    make_tar(&tar, &members);
    let repo = root.join("repo");
    init(&repo, "bare-user");
    let before: Vec<String> = listing(root)
        .into_iter()
        .filter(|p| !p.starts_with("repo"))
        .collect();

    let mut cmd = strata_cmd(commit_args(&repo, "main", "--tar", &tar, &[]));
    // Relative names resolve against the working directory, if anything.
    cmd.current_dir(&work);
    let r = run(&mut cmd).failed();
    assert!(
        r.stderr.contains(culprit),
        "the error should name {culprit:?}: {r:#?}"
    );

    on(&repo, ["rev-parse", "main"]).failed();
    let after: Vec<String> = listing(root)
        .into_iter()
        .filter(|p| !p.starts_with("repo"))
        .collect();
    assert_eq!(
        before, after,
        "something was written outside the repository"
    );
}

#[test]
fn dotdot_member() {
    refused(&["f:ok", "f:../escaped"], "../escaped");
}

#[test]
fn dotdot_inside_member() {
    refused(&["d:a", "f:a/../../escaped"], "a/../../escaped");
}

#[test]
fn absolute_member() {
    let target = format!("/etc/strata-test-escape-{}", std::process::id());
    refused(&["f:ok", &format!("f:{target}")], &target);
    assert!(
        !std::path::Path::new(&target).exists(),
        "{target} was written"
    );
}

#[test]
fn member_through_absolute_symlink() {
    let name = format!("strata-test-escape-{}", std::process::id());
    refused(
        &["l:link:/tmp", &format!("f:link/{name}")],
        &format!("link/{name}"),
    );
    assert!(
        !std::path::Path::new("/tmp").join(&name).exists(),
        "/tmp/{name} was written"
    );
}

#[test]
fn member_through_symlink_to_outside_dir() {
    refused(&["l:link:OUTSIDE", "f:link/evil"], "link/evil");
}

#[test]
fn member_through_relative_symlink() {
    refused(&["d:a", "l:a/up:../..", "f:a/up/evil"], "a/up/evil");
}
