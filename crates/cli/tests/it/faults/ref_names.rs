//! Ref names follow OSTree's syntax; a commit to a bad one is refused
//! with the rule it breaks, and nothing is written under refs/.

use crate::common::*;

#[test]
fn invalid_branch_names_are_refused() {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("file", "content\n")]);
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    let start = "must start with a letter, digit or '_'";
    let empty = "empty path component";
    let chars = "only letters, digits, '_', '-' and '.' are allowed";
    for (name, rule) in [
        ("-x", start),
        ("a//b", empty),
        ("a/", empty),
        ("../x", start),
        ("a b", chars),
        ("", "must not be empty"),
    ] {
        let r = strata(commit_args(&repo, name, "--tree", &tree, &[])).failed();
        assert!(
            r.stderr.contains("invalid ref name") && r.stderr.contains(rule),
            "{name:?}: the error should name the rule {rule:?}: {r:#?}"
        );
    }
    assert_eq!(listing(&repo.join("refs")), ["heads", "mirrors", "remotes"]);
    assert!(on(&repo, ["refs"]).ok().stdout.is_empty());
}
