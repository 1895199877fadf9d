//! A tarball member far larger than the memory `commit --tar` may take
//! streams into its object: the commit stays within that memory, reads a
//! pipe it cannot seek, and equals the same tree committed from its
//! directory; fsck verifies the object within that memory too.

use std::fs;
use std::process::Command;

use rustix::fs::{CWD, FileType, Mode};

use crate::common::*;

/// The large member. Held whole, as imports did before, it costs as much
/// resident memory.
const BIG: u64 = 400 << 20;
/// What the commit may take at its peak.
const PEAK_LIMIT_KIB: u64 = 150 << 10;

#[test]
fn large_tar_member_commits_in_bounded_memory() {
    if !have_tool("tar") || !have_tool("python3") {
        return;
    }
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("etc/small.conf", "small\n")]);
    let big = tree.join("big");
    // Sparse: no disk for the tree, and tar reads BIG zero bytes from it.
    fs::File::create(&big)
        .and_then(|f| f.set_len(BIG))
        .expect("make the large file");
    fs::set_permissions(&big, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod the large file");
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");

    // GNU tar writes the archive into a fifo as strata reads it: nothing
    // of the archive is on disk, and strata cannot seek it.
    let fifo = tmp.path().join("tree.tar");
    rustix::fs::mknodat(CWD, &fifo, FileType::Fifo, Mode::from_raw_mode(0o600), 0).expect("mkfifo");
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(&tree)
        .arg("-cf")
        .arg(&fifo)
        .arg(".")
        .spawn()
        .expect("start tar");
    let (r, peak) = strata_measured(commit_args(
        &repo,
        "main",
        "--tar",
        &fifo,
        &["--parent", "none"],
    ));
    if !r.status.success() {
        // It may never have opened the fifo, which tar waits for.
        let _ = tar.kill();
    }
    let tar_status = tar.wait().expect("wait for tar");
    let r = r.ok();
    assert!(tar_status.success(), "tar failed: {tar_status}");
    assert!(
        peak < PEAK_LIMIT_KIB,
        "commit --tar of a {BIG}-byte member peaked at {peak} KiB: {r:#?}"
    );

    let expected = commit(&repo, "main", &tree, &["--parent", "none"]);
    if r.line() != expected {
        let diff = on(&repo, ["diff", &expected, &r.line()]);
        panic!(
            "commit --tar {} differs from the --tree commit {expected}:\n{}",
            r.line(),
            diff.stdout
        );
    }
    // fsck streams the large object as it verifies it (it read it whole).
    let (r, peak) = strata_measured(["--repo".as_ref(), repo.as_os_str(), "fsck".as_ref()]);
    r.ok();
    assert!(
        peak < PEAK_LIMIT_KIB,
        "fsck of a {BIG}-byte object peaked at {peak} KiB"
    );
}
