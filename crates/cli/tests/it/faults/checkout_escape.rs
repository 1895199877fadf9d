//! A checkout writes only inside its destination, whatever symlinks the
//! commit or an existing destination holds.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use crate::common::*;

/// The ways to check out: hardlinks from bare, copies from bare, copies
/// from archive.
const WAYS: [(&str, &[&str]); 3] = [("bare", &[]), ("bare", &["--copy"]), ("archive", &[])];

fn checkout(repo: &Path, rev: &str, dest: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<&std::ffi::OsStr> = vec!["checkout".as_ref(), rev.as_ref(), dest.as_os_str()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    on(repo, args)
}

#[test]
fn symlinks_in_the_commit_are_not_followed() {
    for (mode, extra) in WAYS {
        let tmp = tempdir();
        let outside = tmp.path().join("outside");
        fs::create_dir(&outside).expect("mkdir");
        let tree = tmp.path().join("tree");
        fs::create_dir(&tree).expect("mkdir");
        // Names sort so that each symlink is checked out before anything
        // that would be written through it if it were followed.
        symlink(&outside, tree.join("escape")).expect("symlink");
        symlink("../..", tree.join("up")).expect("symlink");
        write_files(&tree, &[("sub/file", "inside\n"), ("zzz", "last\n")]);
        symlink("../../outside", tree.join("sub/out")).expect("symlink");
        let repo = tmp.path().join("repo");
        init(&repo, mode);
        let c = commit(&repo, "main", &tree, &[]);

        let dest = tmp.path().join("dest");
        checkout(&repo, &c, &dest, extra).ok();
        assert_same_tree(
            &manifest(&tree),
            &manifest(&dest),
            &format!("{mode} {extra:?}"),
        );
        assert!(
            listing(&outside).is_empty(),
            "{mode} {extra:?}: wrote outside"
        );
        assert_eq!(
            fs::read_link(dest.join("escape")).expect("a symlink"),
            outside
        );
    }
}

/// In union mode, a symlink already in DEST where the commit has a
/// directory or a file is replaced, never written through.
#[test]
fn union_replaces_symlinks_in_dest() {
    for (mode, extra) in WAYS {
        let tmp = tempdir();
        let outside = tmp.path().join("outside");
        write_files(&outside, &[("victim", "untouched\n")]);
        let tree = tmp.path().join("tree");
        write_files(
            &tree,
            &[
                ("sub/file", "from the commit\n"),
                ("victim", "from the commit\n"),
            ],
        );
        let repo = tmp.path().join("repo");
        init(&repo, mode);
        let c = commit(&repo, "main", &tree, &[]);

        let dest = tmp.path().join("dest");
        fs::create_dir(&dest).expect("mkdir");
        symlink(&outside, dest.join("sub")).expect("symlink");
        symlink(outside.join("victim"), dest.join("victim")).expect("symlink");
        let mut args = extra.to_vec();
        args.push("--union");
        checkout(&repo, &c, &dest, &args).ok();

        let what = format!("{mode} {extra:?}");
        assert_eq!(listing(&outside), ["victim"], "{what}: wrote outside");
        assert_eq!(
            fs::read_to_string(outside.join("victim")).expect("read"),
            "untouched\n",
            "{what}: wrote through a symlink"
        );
        assert!(
            fs::symlink_metadata(dest.join("sub"))
                .expect("stat")
                .is_dir(),
            "{what}"
        );
        assert_same_tree(&manifest(&tree), &manifest(&dest), &what);
    }
}

#[test]
fn non_empty_dest_needs_union() {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("file", "from the commit\n")]);
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    let c = commit(&repo, "main", &tree, &[]);
    let dest = tmp.path().join("dest");
    write_files(&dest, &[("file", "mine\n"), ("other", "mine too\n")]);

    let r = checkout(&repo, &c, &dest, &[]).failed();
    assert!(r.stderr.contains("not empty"), "{r:#?}");
    assert_eq!(listing(&dest), ["file", "other"]);
    assert_eq!(
        fs::read_to_string(dest.join("file")).expect("read"),
        "mine\n"
    );
}
