//! strata against the real ostree: the same input gives the same commit,
//! and each tool reads, verifies and checks out the other's repositories.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Commits `tree` with both tools in `mode` and checks each against the other.
fn round_trip(tmp: &Path, tree: &Path, mode: &str) {
    let expected = manifest(tree);
    let ours = tmp.join(format!("strata-{mode}"));
    let theirs = tmp.join(format!("ostree-{mode}"));
    init(&ours, mode);
    ostree_init(&theirs, mode);

    let a = commit(&ours, "main", tree, &[]);
    let b = ostree_commit(&theirs, "main", tree, &[]);
    assert_eq!(a, b, "{mode}: strata and ostree disagree on the commit");

    ostree_on(&ours, ["fsck"]).ok();
    on(&theirs, ["fsck"]).ok();

    let by_strata = tmp.join(format!("checkout-by-strata-{mode}"));
    on(
        &theirs,
        ["checkout".as_ref(), "main".as_ref(), by_strata.as_os_str()],
    )
    .ok();
    assert_same_tree(
        &expected,
        &manifest(&by_strata),
        &format!("{mode}: strata's checkout of ostree's commit"),
    );

    let by_ostree = tmp.join(format!("checkout-by-ostree-{mode}"));
    ostree_on(
        &ours,
        ["checkout".as_ref(), "main".as_ref(), by_ostree.as_os_str()],
    )
    .ok();
    assert_same_tree(
        &expected,
        &manifest(&by_ostree),
        &format!("{mode}: ostree's checkout of strata's commit"),
    );
}

fn special_round_trip(mode: &str) {
    if !have_ostree() {
        return;
    }
    let tmp = tempdir();
    let tree = special_tree(&tmp.path().join("tree"));
    round_trip(tmp.path(), &tree, mode);
}

#[test]
fn special_tree_bare() {
    special_round_trip("bare");
}

#[test]
fn special_tree_bare_user() {
    special_round_trip("bare-user");
}

#[test]
fn special_tree_archive() {
    special_round_trip("archive");
}

#[test]
fn debian_tree_bare_and_archive() {
    if !have_ostree() || !have_root("a bare repository keeps the tree's owners") {
        return;
    }
    let Some(tree) = debian_tree() else {
        return;
    };
    let tmp = tempdir();
    for mode in ["bare", "archive"] {
        round_trip(tmp.path(), &tree, mode);
    }
}

/// Each step commits to `main` in both repositories with the given
/// options (strata's spelling, ostree's spelling); each must agree.
#[test]
fn commit_options_match_ostree() {
    if !have_ostree() {
        return;
    }
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(
        &tree,
        &[("etc/hostname", "box\n"), ("usr/bin/tool", "#!/bin/sh\n")],
    );
    let (ours, theirs) = (tmp.path().join("strata"), tmp.path().join("ostree"));
    init(&ours, "archive");
    ostree_init(&theirs, "archive");

    let steps: &[(&str, &[&str], &[&str])] = &[
        (
            "metadata strings",
            &[
                "--add-metadata-string",
                "version=1.0",
                "--add-metadata-string",
                "foo=bar",
            ],
            &[
                "--add-metadata-string=version=1.0",
                "--add-metadata-string=foo=bar",
            ],
        ),
        (
            "a body",
            &["--body", "line one\n\nline three"],
            &["--body=line one\n\nline three"],
        ),
        ("a second commit: parent is the head", &[], &[]),
        ("no ref bindings", &["--no-bindings"], &["--no-bindings"]),
        ("no parent", &["--parent", "none"], &["--parent=none"]),
    ];
    let mut commits = Vec::new();
    for (what, strata_opts, ostree_opts) in steps {
        let a = commit(&ours, "main", &tree, strata_opts);
        let b = ostree_commit(&theirs, "main", &tree, ostree_opts);
        assert_eq!(a, b, "{what}: strata and ostree disagree on the commit");
        commits.push(a);
    }
    // The steps must really have made different commits.
    let distinct: std::collections::HashSet<_> = commits.iter().collect();
    assert_eq!(distinct.len(), commits.len(), "{commits:?}");
    assert_eq!(
        show_json(&ours, &commits[2])["parent"],
        serde_json::json!(commits[1]),
        "the default parent is the branch's head"
    );
    assert_eq!(
        show_json(&ours, &commits[4])["parent"],
        serde_json::Value::Null
    );
    ostree_on(&ours, ["fsck"]).ok();
}

/// `--canonical-permissions` (what `flatpak build-export` commits apps
/// with) gives ostree's commit: owners, setuid and write bits, xattrs.
#[test]
fn canonical_permissions_match_ostree() {
    if !have_ostree() {
        return;
    }
    let tmp = tempdir();
    let tree = special_tree(&tmp.path().join("tree"));
    write_files(
        &tree,
        &[("files/bin/suid", "#!/bin/sh\n"), ("files/shared/x", "x")],
    );
    fs::set_permissions(
        tree.join("files/bin/suid"),
        fs::Permissions::from_mode(0o6777),
    )
    .expect("chmod");
    fs::set_permissions(
        tree.join("files/shared"),
        fs::Permissions::from_mode(0o1777),
    )
    .expect("chmod");
    let (ours, theirs) = (tmp.path().join("strata"), tmp.path().join("ostree"));
    init(&ours, "archive");
    ostree_init(&theirs, "archive");
    let plain = commit(&ours, "plain", &tree, &[]);
    let a = commit(&ours, "main", &tree, &["--canonical-permissions"]);
    let b = ostree_commit(&theirs, "main", &tree, &["--canonical-permissions"]);
    assert_eq!(a, b, "strata and ostree disagree on the canonical commit");
    assert_ne!(a, plain, "the option changed nothing");
    let ls = on(&ours, ["ls", "-R", &a, "/files"]).stdout;
    assert!(
        ls.lines()
            .any(|l| l.starts_with("-00755 0 0") && l.ends_with("/files/bin/suid")),
        "{ls}"
    );
    ostree_on(&ours, ["fsck"]).ok();
}

/// GNU tar's archive of a tree, plain and compressed, gives the same commit
/// as the tree itself.
#[test]
fn tarball_commit_equals_tree_commit() {
    if !have_tool("tar") || !have_tool("gzip") || !have_tool("zstd") {
        return;
    }
    let tmp = tempdir();
    let tree = special_tree(&tmp.path().join("tree"));
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    let plain = tmp.path().join("x.tar");
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&plain)
        .arg("."))
    .ok();
    run(Command::new("gzip").arg("-k").arg(&plain)).ok();
    run(Command::new("zstd").args(["-q", "-k"]).arg(&plain)).ok();

    let expected = commit(&repo, "main", &tree, &["--parent", "none"]);
    for name in ["x.tar", "x.tar.gz", "x.tar.zst"] {
        let r = strata(commit_args(
            &repo,
            "main",
            "--tar",
            &tmp.path().join(name),
            &["--parent", "none"],
        ))
        .ok();
        if r.line() != expected {
            let diff = on(&repo, ["diff", &expected, &r.line()]);
            panic!(
                "{name}: commit {} differs from the --tree commit {expected}:\n{}",
                r.line(),
                diff.stdout
            );
        }
    }
    on(&repo, ["fsck"]).ok();
}

/// ostree pulls a strata repository and finds every object sound.
#[test]
fn ostree_pulls_from_strata_repo() {
    if !have_ostree() {
        return;
    }
    let tmp = tempdir();
    let tree = special_tree(&tmp.path().join("tree"));
    let ours = tmp.path().join("strata");
    init(&ours, "archive");
    let c = commit(&ours, "main", &tree, &[]);
    let theirs = tmp.path().join("ostree");
    ostree_init(&theirs, "bare");
    ostree_on(
        &theirs,
        ["pull-local".as_ref(), ours.as_os_str(), "main".as_ref()],
    )
    .ok();
    assert_eq!(ostree_on(&theirs, ["rev-parse", "main"]).ok().line(), c);
    ostree_on(&theirs, ["fsck"]).ok();
    let out = tmp.path().join("checkout");
    ostree_on(
        &theirs,
        ["checkout".as_ref(), "main".as_ref(), out.as_os_str()],
    )
    .ok();
    assert_same_tree(
        &manifest(&tree),
        &manifest(&out),
        "checkout after pull-local",
    );
}

/// GNU tar records an xattr with an empty value; ostree (and `--tree`)
/// leave such xattrs out, so `--tar` must too, or the object's checksum
/// differs and a bare repository's fsck finds it corrupt.
#[test]
fn tarball_empty_xattr_is_left_out() {
    if !have_tool("tar") || !have_tool("setfattr") {
        return;
    }
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("file", "has xattrs\n")]);
    let file = tree.join("file");
    run(Command::new("setfattr")
        .args(["-n", "user.empty"])
        .arg(&file))
    .ok();
    run(Command::new("setfattr")
        .args(["-n", "user.foo", "-v", "bar"])
        .arg(&file))
    .ok();
    let tar = tmp.path().join("x.tar");
    run(Command::new("tar")
        .args(["--xattrs", "--xattrs-include=*", "--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&tar)
        .arg("."))
    .ok();
    let repo = tmp.path().join("repo");
    init(&repo, "bare");
    let expected = commit(&repo, "main", &tree, &["--parent", "none"]);
    let r = strata(commit_args(
        &repo,
        "main",
        "--tar",
        &tar,
        &["--parent", "none"],
    ))
    .ok();
    assert_eq!(r.line(), expected);
    on(&repo, ["fsck"]).ok();
}

/// `ls -R`, `diff` and `log` say what ostree says about the same commits
/// (diff's order aside), including a file that became a directory, a
/// changed mode and a removed subtree.
#[test]
fn inspect_output_matches_ostree() {
    if !have_ostree() {
        return;
    }
    let tmp = tempdir();
    let tree = special_tree(&tmp.path().join("tree"));
    let repo = tmp.path().join("repo");
    init(&repo, "bare");
    commit(&repo, "main", &tree, &[]);
    fs::remove_file(tree.join("modes/exec")).expect("rm");
    write_files(
        &tree,
        &[("modes/exec/now-a-dir", "x\n"), ("added", "new\n")],
    );
    fs::remove_dir_all(tree.join("deep")).expect("rm -r");
    fs::set_permissions(
        tree.join("modes/private"),
        fs::Permissions::from_mode(0o640),
    )
    .expect("chmod");
    commit(&repo, "main", &tree, &[]);

    let sorted = |r: Run| {
        let mut lines: Vec<String> = r.stdout.lines().map(str::to_owned).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(on(&repo, ["ls", "-R", "main"]).ok()),
        sorted(ostree_on(&repo, ["ls", "-R", "main"]).ok()),
        "ls -R"
    );
    let diff = sorted(on(&repo, ["diff", "main^", "main"]).ok());
    assert_eq!(
        diff,
        sorted(ostree_on(&repo, ["diff", "main^", "main"]).ok()),
        "diff"
    );
    assert_eq!(diff.len(), 4, "{diff:#?}");
    let commits = |r: Run| -> Vec<String> {
        r.stdout
            .lines()
            .filter(|l| l.starts_with("commit "))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(
        commits(on(&repo, ["log", "main"]).ok()),
        commits(ostree_on(&repo, ["log", "main"]).ok()),
        "log"
    );
}

/// Issue 15: a tree 3000 levels deep (its deepest path is 6 KB, longer
/// than PATH_MAX), which `ostree commit` takes. strata commits it to the
/// same checksum, pulls ostree's commit and checks it out. Before, the commit failed
/// with "File name too long"; a checkout of 10000 levels overflowed the
/// stack (the store's `deep` test pins that on a small stack).
#[test]
fn a_tree_deeper_than_path_max_commits_as_ostree_commits_it() {
    if !have_ostree() {
        return;
    }
    const DEPTH: usize = 3000;
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    deep_chain(&tree, "d", DEPTH, b"deep\n");

    let (ours, theirs) = (tmp.path().join("ours"), tmp.path().join("theirs"));
    init(&ours, "archive");
    ostree_init(&theirs, "archive");
    let a = commit(&ours, "main", &tree, &[]);
    let b = ostree_commit(&theirs, "main", &tree, &[]);
    assert_eq!(a, b, "strata and ostree disagree on the deep tree's commit");
    ostree_on(&ours, ["fsck"]).ok();
    on(&theirs, ["fsck"]).ok();

    // A pull of ostree's deep commit (file://, as a server would send it),
    // then a checkout of what was pulled.
    let client = tmp.path().join("client");
    init(&client, "bare-user");
    let url = format!("file://{}", theirs.display());
    on(&client, ["remote", "add", "o", &url, "--no-sign-verify"]).ok();
    on(&client, ["pull", "o", "main"]).ok();
    on(&client, ["fsck"]).ok();
    assert_eq!(on(&client, ["rev-parse", "o:main"]).ok().line(), b);

    let out = tmp.path().join("out");
    on(
        &client,
        ["checkout".as_ref(), "o:main".as_ref(), out.as_os_str()],
    )
    .ok();
    assert_eq!(read_deep(&out, "d", DEPTH, "leaf"), "deep\n");
    let listed = on(&theirs, ["ls", "-R", "main"]).ok().stdout;
    assert_eq!(listed.lines().count(), 1 + DEPTH + 1);
}
