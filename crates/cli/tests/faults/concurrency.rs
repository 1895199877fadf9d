//! Two commits into one repository at the same time both land intact.

use std::process::Stdio;

use crate::common::*;

#[test]
fn two_branches_at_once() {
    if !have_root("bare repositories and the fixture's owners") {
        return;
    }
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
