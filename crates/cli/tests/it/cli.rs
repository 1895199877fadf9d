//! The read commands and the command line's own errors, on a small
//! repository with two commits.

use std::fs;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::PathBuf;

use crate::common::*;

struct History {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    /// The first commit (subject "one"): /a, /usr/lib/os-release, symlinks in /etc.
    one: String,
    /// The second (subject "two", version 2): /a gone, /b new, os-release changed.
    two: String,
    /// " UID GID " as `ls` shows the tree's owner.
    owner: String,
}

fn history() -> History {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(
        &tree,
        &[("a", "gone later\n"), ("usr/lib/os-release", "ID=one\n")],
    );
    write_files(&tree, &[("etc/hostname", "box\n")]);
    symlink("../usr/lib/os-release", tree.join("etc/os-release")).expect("symlink");
    // Resolved inside the commit, like a chroot: never on the host.
    symlink("/usr/lib/os-release", tree.join("etc/absolute")).expect("symlink");
    symlink(
        "../../../../usr/lib/os-release",
        tree.join("etc/above-root"),
    )
    .expect("symlink");
    symlink("loop", tree.join("etc/loop")).expect("symlink");
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    let one = commit(&repo, "main", &tree, &[]);
    fs::remove_file(tree.join("a")).expect("rm");
    write_files(&tree, &[("b", "new\n"), ("usr/lib/os-release", "ID=two\n")]);
    let mut args = commit_args(&repo, "main", "--tree", &tree, &[]);
    // Replace the standard subject.
    let s = args.iter().position(|a| a == "-s").expect("-s") + 1;
    args[s] = "two".into();
    args.extend(["--add-metadata-string".into(), "version=2".into()]);
    let two = strata(args).ok().line();
    let meta = fs::metadata(tree.join("b")).expect("stat");
    History {
        owner: format!(" {} {} ", meta.uid(), meta.gid()),
        _tmp: tmp,
        repo,
        one,
        two,
    }
}

fn rev_parse(h: &History, rev: &str) -> Run {
    on(&h.repo, ["rev-parse", rev])
}

#[test]
fn rev_parse_names() {
    let h = history();
    assert_eq!(rev_parse(&h, "main").ok().line(), h.two);
    assert_eq!(rev_parse(&h, &h.one).ok().line(), h.one);
    assert_eq!(rev_parse(&h, &h.two[..10]).ok().line(), h.two);
    assert_eq!(rev_parse(&h, "main^").ok().line(), h.one);
    assert_eq!(
        rev_parse(&h, &format!("{}^", &h.two[..8])).ok().line(),
        h.one
    );

    let r = rev_parse(&h, "main^^").failed();
    assert!(r.stderr.contains("no parent"), "{r:#?}");
    let r = rev_parse(&h, "nosuchref").failed();
    assert!(r.stderr.contains("no such ref"), "{r:#?}");
    let unknown = if h.one.starts_with("ffff") || h.two.starts_with("ffff") {
        "0000"
    } else {
        "ffff"
    };
    let r = rev_parse(&h, unknown).failed();
    assert!(r.stderr.contains("no ref or commit matches"), "{r:#?}");
}

/// Two commit objects sharing a prefix: an ambiguous prefix is refused.
/// Real commits rarely share 4 hex digits, so the second is a copy of the
/// first under a name with the same prefix (rev-parse does not verify).
#[test]
fn rev_parse_ambiguous_prefix() {
    let h = history();
    let twin = format!("{}{}", &h.one[..6], "0".repeat(58));
    assert_ne!(twin, h.one);
    fs::copy(
        object_path(&h.repo, &h.one, "commit"),
        object_path(&h.repo, &twin, "commit"),
    )
    .expect("copy the commit object");
    let r = rev_parse(&h, &h.one[..6]).failed();
    assert!(r.stderr.contains("matches 2 commits"), "{r:#?}");
    assert_eq!(rev_parse(&h, &h.one[..8]).ok().line(), h.one);
}

#[test]
fn log_is_newest_first() {
    let h = history();
    let log = on(&h.repo, ["log", "main"]).ok().stdout;
    let commits: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("commit "))
        .collect();
    assert_eq!(commits, [h.two.as_str(), h.one.as_str()], "{log}");
    let two = log.find("    two").expect("subject two");
    let one = log.find(&format!("    {SUBJECT}")).expect("subject one");
    assert!(two < one, "{log}");
    assert!(log.contains("Version: 2"), "{log}");
}

fn ls(h: &History, args: &[&str]) -> Vec<String> {
    let mut all = vec!["ls"];
    all.extend(args);
    let out = on(&h.repo, all).ok().stdout;
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    lines
}

/// `ls` lines as the tree's owner sees them: " 0 0 " stands for the owner.
fn expect(h: &History, lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines
        .iter()
        .map(|s| s.replacen(" 0 0 ", &h.owner, 1))
        .collect();
    v.sort();
    v
}

#[test]
fn ls_one_level_and_recursive() {
    let h = history();
    let top = [
        "-00644 0 0 4 /b",
        "d00755 0 0 0 /",
        "d00755 0 0 0 /etc",
        "d00755 0 0 0 /usr",
    ];
    assert_eq!(ls(&h, &["main"]), expect(&h, &top));
    let all = [
        "-00644 0 0 4 /b",
        "-00644 0 0 4 /etc/hostname",
        "-00644 0 0 7 /usr/lib/os-release",
        "d00755 0 0 0 /",
        "d00755 0 0 0 /etc",
        "d00755 0 0 0 /usr",
        "d00755 0 0 0 /usr/lib",
        "l00777 0 0 0 /etc/above-root -> ../../../../usr/lib/os-release",
        "l00777 0 0 0 /etc/absolute -> /usr/lib/os-release",
        "l00777 0 0 0 /etc/loop -> loop",
        "l00777 0 0 0 /etc/os-release -> ../usr/lib/os-release",
    ];
    assert_eq!(ls(&h, &["-R", "main"]), expect(&h, &all));
    let lib = ["-00644 0 0 7 /usr/lib/os-release", "d00755 0 0 0 /usr/lib"];
    assert_eq!(ls(&h, &["main", "/usr/lib"]), expect(&h, &lib));
    on(&h.repo, ["ls", "main", "/nope"]).failed();
}

#[test]
fn cat_reads_files_through_symlinks() {
    let h = history();
    let cat = |rev: &str, path: &str| on(&h.repo, ["cat", rev, path]);
    assert_eq!(cat("main", "/b").ok().stdout, "new\n");
    assert_eq!(cat("main", "/etc/os-release").ok().stdout, "ID=two\n");
    assert_eq!(cat("main", "etc/os-release").ok().stdout, "ID=two\n");
    assert_eq!(cat("main^", "/etc/os-release").ok().stdout, "ID=one\n");
    assert_eq!(cat("main", "/etc/absolute").ok().stdout, "ID=two\n");
    assert_eq!(cat("main", "/etc/above-root").ok().stdout, "ID=two\n");
    let r = cat("main", "/etc/loop").failed();
    assert!(r.stderr.contains("too many levels"), "{r:#?}");
    assert_eq!(cat(&h.one, "/a").ok().stdout, "gone later\n");
    let r = cat("main", "/usr").failed();
    assert!(r.stderr.contains("is a directory"), "{r:#?}");
    cat("main", "/a").failed();
}

#[test]
fn show_json_describes_the_commit() {
    let h = history();
    let j = show_json(&h.repo, "main");
    assert_eq!(j["checksum"], serde_json::json!(h.two));
    assert_eq!(j["parent"], serde_json::json!(h.one));
    assert_eq!(j["subject"], "two");
    assert_eq!(j["version"], "2");
    assert_eq!(j["date"], TIMESTAMP);
    assert_eq!(j["metadata"]["version"], "2");
    assert_eq!(
        j["metadata"]["ostree.ref-binding"],
        serde_json::json!(["main"])
    );
    assert_eq!(j["partial"], false);
    let first = show_json(&h.repo, &h.one);
    assert_eq!(first["parent"], serde_json::Value::Null);
    assert_eq!(first["subject"], SUBJECT);
}

#[test]
fn diff_reports_changes() {
    let h = history();
    let out = on(&h.repo, ["diff", "main^", "main"]).ok().stdout;
    let mut lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    lines.sort();
    assert_eq!(lines, ["A /b", "D /a", "M /usr/lib/os-release"], "{out}");
    assert_eq!(on(&h.repo, ["diff", "main", "main"]).ok().stdout, "");
}

#[test]
fn refs_list_and_delete() {
    let h = history();
    let tree = h.repo.with_file_name("tree");
    for b in ["os/stable", "os/testing"] {
        commit(&h.repo, b, &tree, &[]);
    }
    let refs = |h: &History| on(&h.repo, ["refs"]).ok().stdout;
    assert_eq!(refs(&h), "main\nos/stable\nos/testing\n");
    on(&h.repo, ["refs", "--delete", "os/stable"]).ok();
    assert_eq!(refs(&h), "main\nos/testing\n");
    let r = on(&h.repo, ["refs", "--delete", "os/stable"]).failed();
    assert!(r.stderr.contains("no such ref"), "{r:#?}");
    // The commit stays until prune.
    assert_eq!(rev_parse(&h, "os/testing").ok().line().len(), 64);
}

#[test]
fn missing_repo_is_a_clear_error() {
    let r = strata(["log", "main"]).failed();
    assert!(
        r.stderr.contains("--repo") && r.stderr.contains("STRATA_REPO"),
        "{r:#?}"
    );
    let tmp = tempdir();
    let nowhere = tmp.path().join("nowhere");
    let r = on(&nowhere, ["log", "main"]).failed();
    assert!(
        r.stderr.contains(&nowhere.display().to_string()) && r.stderr.contains("not a repository"),
        "{r:#?}"
    );
}

#[test]
fn strata_repo_variable_names_the_repo() {
    let h = history();
    let r = run(strata_cmd(["rev-parse", "main"]).env("STRATA_REPO", &h.repo)).ok();
    assert_eq!(r.stdout, format!("{}\n", h.two), "{r:#?}");
}

#[test]
fn init_twice_is_an_error() {
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    init(&repo, "archive");
    let config = fs::read_to_string(repo.join("config")).expect("config");
    let r = on(&repo, ["init", "--mode", "bare"]).failed();
    assert!(r.stderr.contains("already exists"), "{r:#?}");
    assert_eq!(
        fs::read_to_string(repo.join("config")).expect("config"),
        config
    );
    let r = on(&tmp.path().join("other"), ["init", "--mode", "fancy"]).failed();
    assert!(r.stderr.contains("unknown repository mode"), "{r:#?}");
}

/// Deleting `os/stable` leaves a directory `os` behind; a branch `os` can
/// still be made (as with ostree), but not while a ref lives under it.
#[test]
fn ref_over_emptied_ref_directory() {
    let h = history();
    let tree = h.repo.with_file_name("tree");
    commit(&h.repo, "os/stable", &tree, &[]);
    commit(&h.repo, "os/testing", &tree, &[]);
    on(&h.repo, ["refs", "--delete", "os/stable"]).ok();
    let r = strata(commit_args(&h.repo, "os", "--tree", &tree, &[])).failed();
    assert!(r.stderr.contains("os/testing"), "{r:#?}");
    on(&h.repo, ["refs", "--delete", "os/testing"]).ok();
    let c = commit(&h.repo, "os", &tree, &[]);
    assert_eq!(rev_parse(&h, "os").ok().line(), c);
    assert_eq!(on(&h.repo, ["refs"]).ok().stdout, "main\nos\n");
}

/// An I/O error names the path and the action, and says its cause once.
#[test]
fn io_error_names_path_and_cause_once() {
    let h = history();
    let tmp = tempdir();
    let missing = tmp.path().join("no-such-tree");
    let r = strata(commit_args(&h.repo, "main", "--tree", &missing, &[])).failed();
    assert!(r.stderr.contains(&missing.display().to_string()), "{r:#?}");
    assert_eq!(
        r.stderr.matches("No such file or directory").count(),
        1,
        "{r:#?}"
    );
}

/// `-v` shows on stderr what `--skip-special` left out; stdout stays the
/// checksum alone, with or without it, so scripts can capture it.
#[test]
fn verbose_commit_says_what_it_skipped() {
    let tmp = tempdir();
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("kept", "kept\n")]);
    let fifo = tree.join("pipe");
    run(std::process::Command::new("mkfifo").arg(&fifo)).ok();
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    let commit_with = |extra: &[&str]| {
        let mut cmd = strata_cmd(commit_args(&repo, "main", "--tree", &tree, extra));
        run(cmd.env_remove("RUST_LOG")).ok()
    };

    // No parent, so both runs make the same commit.
    let quiet = commit_with(&["--skip-special", "--parent", "none"]);
    assert_eq!(quiet.stdout, format!("{}\n", quiet.line()), "{quiet:#?}");
    assert_eq!(quiet.line().len(), 64, "{quiet:#?}");
    assert!(!quiet.stderr.contains("skipping"), "{quiet:#?}");

    let verbose = commit_with(&["--skip-special", "--parent", "none", "-v"]);
    assert_eq!(verbose.stdout, quiet.stdout, "{verbose:#?}");
    assert!(
        verbose.stderr.contains("skipping special file")
            && verbose.stderr.contains(&fifo.display().to_string()),
        "{verbose:#?}"
    );
}

/// `pull -v` says on stderr why it asks again; without -v only the error
/// is printed.
#[test]
fn verbose_pull_shows_retries() {
    let tmp = tempdir();
    let repo = tmp.path().join("repo");
    init(&repo, "bare-user");
    // A port nothing listens on: every attempt is refused at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/repo");
    on(&repo, ["remote", "add", "gone", &url, "--no-sign-verify"]).ok();
    let pull = |extra: &[&str]| {
        let mut cmd = strata_cmd(["--repo".as_ref(), repo.as_os_str()]);
        cmd.args(["pull", "gone", "main"]).args(extra);
        run(cmd.env_remove("RUST_LOG")).failed()
    };

    let quiet = pull(&[]);
    assert!(!quiet.stderr.contains("retrying"), "{quiet:#?}");
    let verbose = pull(&["-v"]);
    assert!(
        verbose.stderr.contains("retrying") && verbose.stderr.contains("attempt=1"),
        "{verbose:#?}"
    );
}
