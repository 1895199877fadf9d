//! Device nodes, fifos and sockets cannot be stored: a commit that meets
//! one fails and names it, unless told to leave such files out.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Puts a special file made by `make` into a tree, then checks the commit
/// fails naming it, and succeeds without it under `--skip-special`.
fn refused_then_skipped(kind: &str, make: impl FnOnce(&Path)) {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("dir/regular", "kept\n")]);
    let special = tree.join("dir/special");
    make(&special);
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");

    let r = strata(commit_args(&repo, "main", "--tree", &tree, &[])).failed();
    assert!(
        r.stderr.contains(&special.display().to_string()),
        "the error should name {}: {r:#?}",
        special.display()
    );
    assert!(
        r.stderr.contains(kind),
        "the error should say {kind:?}: {r:#?}"
    );
    on(&repo, ["rev-parse", "main"]).failed();

    let c = commit(&repo, "main", &tree, &["--skip-special"]);
    let ls = on(&repo, ["ls", "-R", &c]).ok();
    assert!(ls.stdout.contains("/dir/regular"), "{ls:#?}");
    assert!(!ls.stdout.contains("special"), "{ls:#?}");
}

#[test]
fn fifo_in_tree() {
    refused_then_skipped("fifo", |p| {
        run(Command::new("mkfifo").arg(p)).ok();
    });
}

#[test]
fn socket_in_tree() {
    refused_then_skipped("socket", |p| {
        // The socket file stays after the listener is gone.
        std::os::unix::net::UnixListener::bind(p).expect("bind a unix socket");
    });
}

#[test]
fn device_node_in_tree() {
    if !have_root("mknod") {
        return;
    }
    refused_then_skipped("device node", |p| {
        run(Command::new("mknod").arg(p).args(["c", "1", "3"])).ok();
    });
}

/// The same for tarball members: a fifo and a character device.
#[test]
fn special_members_in_tarball() {
    let tmp = tempdir();
    let tar = tmp.path().join("special.tar");
    make_tar(&tar, &["f:dir/regular", "p:dir/fifo", "c:dir/null"]);
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    let r = strata(commit_args(&repo, "main", "--tar", &tar, &[])).failed();
    assert!(r.stderr.contains("dir/fifo"), "{r:#?}");
    let r = strata(commit_args(
        &repo,
        "main",
        "--tar",
        &tar,
        &["--skip-special"],
    ))
    .ok();
    let ls = on(&repo, ["ls", "-R", &r.line()]).ok();
    assert!(ls.stdout.contains("/dir/regular"), "{ls:#?}");
    assert!(
        !ls.stdout.contains("fifo") && !ls.stdout.contains("null"),
        "{ls:#?}"
    );
}
