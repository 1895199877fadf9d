//! Two commits into one repository at the same time both land intact.

use std::process::Stdio;

use crate::common::*;

#[test]
fn two_branches_at_once() {
    let tmp = tempdir();
    let tree = special_tree(&tmp.path().join("tree"));
    // Many small files shared by both commits: the same objects are staged
    // and renamed into place by both writers.
    let many: Vec<(String, String)> = (0..2000)
        .map(|i| (format!("many/d{}/f{i}", i % 40), format!("file {i}\n")))
        .collect();
    let many: Vec<(&str, &str)> = many.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect();
    write_files(&tree, &many);
    let clean = tmp.path().join("clean");
    init(&clean, "bare");
    let expected = [
        commit(&clean, "one", &tree, &[]),
        commit(&clean, "two", &tree, &[]),
    ];

    for round in 0..3 {
        let repo = tmp.path().join(format!("repo-{round}"));
        init(&repo, "bare");
        let children: Vec<_> = ["one", "two"]
            .iter()
            .map(|b| {
                strata_cmd(commit_args(&repo, b, "--tree", &tree, &[]))
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("spawn strata commit")
            })
            .collect();
        for (child, want) in children.into_iter().zip(&expected) {
            let out = child.wait_with_output().expect("wait for strata");
            assert!(
                out.status.success(),
                "round {round}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), want.as_str());
        }
        assert_eq!(on(&repo, ["rev-parse", "one"]).ok().line(), expected[0]);
        assert_eq!(on(&repo, ["rev-parse", "two"]).ok().line(), expected[1]);
        on(&repo, ["fsck"]).ok();
        if have_ostree() {
            ostree_on(&repo, ["fsck"]).ok();
        }
    }
}

/// `prune --refs-only` started while a commit is running must not delete
/// the new commit's objects before its ref is written. Each round starts
/// both at once; whichever takes the lock first, the ref must end up naming
/// a complete commit.
#[test]
fn commit_and_prune_at_once() {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(
        &tree,
        &[("etc/hostname", "box\n"), ("usr/bin/tool", "tool\n")],
    );
    for round in 0..40 {
        let repo = tmp.path().join(format!("repo-{round}"));
        init(&repo, "bare-user");
        let committing = strata_cmd(commit_args(&repo, "main", "--tree", &tree, &[]))
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn strata commit");
        let pruned = on(&repo, ["prune", "--refs-only"]);
        let out = committing.wait_with_output().expect("wait for strata");
        assert!(out.status.success(), "round {round}: the commit failed");
        pruned.ok();
        let r = on(&repo, ["fsck"]);
        assert!(
            r.status.success(),
            "round {round}: prune removed objects of the commit being made: {r:#?}"
        );
    }
}
