//! A commit made from an overlayfs upper directory on top of a base commit
//! equals a commit of what the mounted overlay showed: the real kernel
//! overlayfs is the oracle for whiteouts, opaque directories, copied-up
//! metadata and its own `trusted.overlay.*` attributes.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use strata_store::checkout::CheckoutOptions;
use strata_store::test_util::{have_root, repo_with_tree, write_files};
use strata_store::write::{CommitOptions, Parent, Source, commit};
use strata_store::{RefName, RepoMode};

fn sh(cmd: &mut Command) {
    let st = cmd.status().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(st.success(), "{cmd:?}: {st}");
}

fn root_of(repo: &strata_store::Repo, source: Source, branch: &str) -> (String, String) {
    let opts = CommitOptions {
        timestamp: Some(1),
        parent: Parent::None,
        ..Default::default()
    };
    let branch = RefName::parse(branch).expect("branch");
    let c = commit(repo, &branch, &source, &opts).expect("commit");
    let c = repo.load_commit(&c.checksum).expect("load");
    (c.root_tree.to_string(), c.root_meta.to_string())
}

#[test]
fn upper_directory_applied_to_base_equals_the_mounted_view() {
    if !have_root("mounting an overlayfs") {
        return;
    }
    let tmp = tempfile::tempdir().expect("tmp");
    let t = tmp.path();
    let (repo, base) = repo_with_tree(
        t,
        RepoMode::Bare,
        &[
            ("a", "a\n"),
            ("keep", "keep\n"),
            ("d/x", "x\n"),
            ("d/y", "y\n"),
            ("e/z", "z\n"),
            ("e/sub/deep", "deep\n"),
            ("m/f", "f\n"),
        ],
    );
    let lower = t.join("lower");
    repo.checkout(&base, &lower, &CheckoutOptions::default())
        .expect("checkout");
    let (upper, work, merged) = (t.join("upper"), t.join("work"), t.join("merged"));
    for d in [&upper, &work, &merged] {
        fs::create_dir(d).expect("mkdir");
    }
    let opts = format!(
        "lowerdir={},upperdir={},workdir={},redirect_dir=off,index=off,metacopy=off",
        lower.display(),
        upper.display(),
        work.display()
    );
    sh(Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged));
    let changes = (|| -> std::io::Result<()> {
        let m: &Path = &merged;
        fs::remove_file(m.join("a"))?; // whiteout
        fs::write(m.join("d/y"), "changed\n")?; // copy-up of a file
        write_files(m, &[("d/new", "new\n"), ("n/one", "1\n")]); // new file, new dir
        fs::remove_dir_all(m.join("e"))?; // whiteout of a dir, then
        write_files(m, &[("e/only", "only\n")]); // an opaque dir in its place
        fs::set_permissions(m.join("m"), fs::Permissions::from_mode(0o700))?; // dir metadata
        std::os::unix::fs::symlink("keep", m.join("link"))?;
        Ok(())
    })();
    let expected = changes.map(|()| {
        root_of(
            &repo,
            Source::Dir(merged.clone(), Default::default()),
            "view",
        )
    });
    sh(Command::new("umount").arg(&merged));
    let expected = expected.expect("changes through the overlay");
    let got = root_of(
        &repo,
        Source::Overlay {
            base,
            upper: upper.clone(),
        },
        "layered",
    );
    assert_eq!(
        got, expected,
        "overlay import differs from the mounted view"
    );
    // The base commit is untouched and the lower checkout too.
    assert_eq!(fs::read_to_string(lower.join("d/y")).expect("read"), "y\n");
}
