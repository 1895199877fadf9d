//! The store through its API, not the binary: a repository made and
//! reopened, a transaction, a commit checked out, corruption found by
//! fsck, history pruned. The CLI's tests cover the same ground through
//! `strata`; these pin the library's own contract.

use std::fs;

use strata_store::checkout::CheckoutOptions;
use strata_store::prune::PruneOptions;
use strata_store::test_util::{
    SMALL_TREE, commit_dir, regular_file_header, repo_with_tree, write_files,
};
use strata_store::write::Transaction;
use strata_store::{ObjectType, RefName, Repo, RepoMode};

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

#[test]
fn init_then_open_keeps_the_mode() {
    for mode in [RepoMode::Archive, RepoMode::BareUser] {
        let tmp = tempdir();
        let path = tmp.path().join("repo");
        Repo::init(&path, mode).expect("init");
        let repo = Repo::open(&path).expect("open");
        assert_eq!(repo.mode(), mode);
        assert!(repo.list_refs().expect("refs").is_empty());
        assert!(
            Repo::open(&tmp.path().join("nothing")).is_err(),
            "opening a directory that is no repository fails"
        );
    }
}

#[test]
fn a_committed_transaction_leaves_its_objects_readable() {
    let tmp = tempdir();
    let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).expect("init");
    let header = regular_file_header();
    let tx = Transaction::begin(&repo).expect("begin");
    let checksum = tx.write_content(&header, b"content\n").expect("write");
    assert_eq!(checksum, header.checksum(b"content\n"));
    tx.commit().expect("commit");
    assert!(repo.has_object(&checksum, ObjectType::File));
    let (read_header, content) = repo.load_file(&checksum).expect("load");
    assert_eq!(read_header, header);
    assert_eq!(content, b"content\n");
}

#[test]
fn a_commit_checks_out_as_the_tree_it_was_made_from() {
    for mode in [RepoMode::Archive, RepoMode::BareUser] {
        let tmp = tempdir();
        let (repo, commit) = repo_with_tree(tmp.path(), mode, SMALL_TREE);
        let main = RefName::parse("main").expect("ref");
        assert_eq!(repo.read_ref(&main).expect("read ref"), Some(commit));
        let dest = tmp.path().join("out");
        let stats = repo
            .checkout(&commit, &dest, &CheckoutOptions::default())
            .expect("checkout");
        assert_eq!(stats.files, 2, "{mode:?}");
        for (path, content) in SMALL_TREE {
            assert_eq!(
                fs::read_to_string(dest.join(path)).expect("read"),
                *content,
                "{mode:?}: {path}"
            );
        }
        // The same tree committed again is the same tree: same root.
        let again = commit_dir(&repo, "other", &tmp.path().join("tree"));
        let (a, b) = (
            repo.load_commit(&commit).expect("load"),
            repo.load_commit(&again).expect("load"),
        );
        assert_eq!((a.root_tree, a.root_meta), (b.root_tree, b.root_meta));
    }
}

#[test]
fn fsck_names_a_corrupt_object() {
    let tmp = tempdir();
    let (repo, _) = repo_with_tree(tmp.path(), RepoMode::Archive, SMALL_TREE);
    assert!(repo.fsck(false).expect("fsck").is_clean());
    let file = repo
        .list_objects()
        .expect("list")
        .into_iter()
        .find(|(_, kind)| *kind == ObjectType::File)
        .expect("a content object");
    let path = repo.object_path(&file.0, file.1);
    let mut data = fs::read(&path).expect("read object");
    let last = data.len() - 1;
    data[last] ^= 0xff;
    fs::remove_file(&path).expect("remove the read-only object");
    fs::write(&path, data).expect("write it back altered");

    let report = repo.fsck(false).expect("fsck");
    assert!(!report.is_clean());
    let corrupt: Vec<_> = report.corrupt.iter().map(|p| p.object).collect();
    assert_eq!(corrupt, [file], "{report:?}");
}

#[test]
fn prune_to_depth_zero_keeps_only_the_heads() {
    let tmp = tempdir();
    let (repo, first) = repo_with_tree(tmp.path(), RepoMode::Archive, SMALL_TREE);
    let tree = tmp.path().join("tree");
    write_files(&tree, &[("hello.txt", "changed\n")]);
    let second = commit_dir(&repo, "main", &tree);
    assert_eq!(repo.load_commit(&second).expect("load").parent, Some(first));

    let dry = PruneOptions {
        depth: Some(0),
        dry_run: true,
        ..PruneOptions::default()
    };
    let report = repo.prune(&dry).expect("dry run");
    assert_eq!(report.commits_deleted, 1);
    assert!(
        repo.has_object(&first, ObjectType::Commit),
        "a dry run deletes nothing"
    );

    let report = repo
        .prune(&PruneOptions {
            dry_run: false,
            ..dry
        })
        .expect("prune");
    assert_eq!(report.commits_deleted, 1);
    // The old hello.txt content and the old root dirtree go with it.
    assert!(report.objects_deleted >= 3, "{report:?}");
    assert!(!repo.has_object(&first, ObjectType::Commit));
    assert!(repo.has_object(&second, ObjectType::Commit));
    assert!(repo.fsck(false).expect("fsck").is_clean());
    repo.checkout(
        &second,
        &tmp.path().join("out"),
        &CheckoutOptions::default(),
    )
    .expect("the head still checks out");
}

/// `open_file` streams what `load_file` reads whole, in every mode, and a
/// content object altered on disk ends its stream with an error that
/// names the object instead of handing out the altered bytes.
#[test]
fn open_file_streams_content_and_refuses_an_altered_object() {
    use std::io::Read;
    for mode in [RepoMode::Archive, RepoMode::BareUser] {
        let tmp = tempdir();
        let (repo, _) = repo_with_tree(tmp.path(), mode, SMALL_TREE);
        let files: Vec<_> = repo
            .list_objects()
            .expect("list")
            .into_iter()
            .filter(|(_, kind)| *kind == ObjectType::File)
            .collect();
        assert!(!files.is_empty());
        for (checksum, _) in &files {
            let (header, content) = repo.load_file(checksum).expect("load");
            let (streamed_header, size, mut reader) = repo.open_file(checksum).expect("open");
            let mut streamed = Vec::new();
            reader.read_to_end(&mut streamed).expect("read");
            assert_eq!(
                (streamed_header, size, streamed),
                (header, content.len() as u64, content)
            );
        }
        let (checksum, kind) = files[0];
        let path = repo.object_path(&checksum, kind);
        // Altered in place: a bare-user object keeps its metadata xattr,
        // so opening it works and the read must find the change.
        let mut data = fs::read(&path).expect("read object");
        let last = data.len() - 1;
        data[last] ^= 0x01;
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("make it writable");
        std::os::unix::fs::FileExt::write_at(
            &fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .expect("open for writing"),
            &data[last..],
            last as u64,
        )
        .expect("alter one byte");
        let (_, _, mut r) = repo
            .open_file(&checksum)
            .expect("it opens: its header is intact");
        let mut out = Vec::new();
        let read = r.read_to_end(&mut out).expect_err("reading it fails");
        assert!(read.to_string().contains("corrupt"), "{mode:?}: {read}");
        let err = repo
            .open_file(&checksum)
            .and_then(|(_, _, mut r)| {
                let mut out = Vec::new();
                r.read_to_end(&mut out)
                    .map_err(|source| strata_store::Error::Io {
                        action: "read",
                        path: path.clone(),
                        source,
                    })
            })
            .expect_err("an altered object is refused");
        assert!(
            err.to_string().contains(&checksum.to_hex()),
            "{mode:?}: {err}"
        );
    }
}
