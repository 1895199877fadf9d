//! The layer tar of commits built object by object: a tree deeper than
//! any path the kernel takes, repeated content, `/var` from tmpfiles.d
//! lines, and a tree an image cannot have. Read back with the `tar` crate.

use std::collections::BTreeMap;
use std::io::Read;

use strata_oci::layer::write_layer;
use strata_store::objects::dirtree::DirEntry;
use strata_store::test_util::regular_file_header;
use strata_store::write::Transaction;
use strata_store::{Checksum, Commit, DirMeta, DirTree, FileHeader, ObjectType, Repo, RepoMode};

/// Builds trees object by object in one transaction.
struct Builder<'r> {
    tx: Transaction<'r>,
    meta: Checksum,
}

impl<'r> Builder<'r> {
    fn new(repo: &'r Repo) -> Self {
        let tx = Transaction::begin(repo).expect("begin");
        let meta = tx
            .write_meta(
                ObjectType::DirMeta,
                &DirMeta {
                    uid: 0,
                    gid: 0,
                    mode: 0o40755,
                    xattrs: Vec::new(),
                }
                .to_bytes(),
            )
            .expect("dirmeta");
        Builder { tx, meta }
    }

    fn file(&self, mode: u32, content: &str) -> Checksum {
        let header = FileHeader {
            mode: 0o100000 | mode,
            ..regular_file_header()
        };
        self.tx
            .write_content(&header, content.as_bytes())
            .expect("content")
    }

    fn dir(&self, files: &[(&str, Checksum)], dirs: &[(&str, Checksum)]) -> Checksum {
        let mut files: Vec<_> = files.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect();
        files.sort();
        let mut dirs: Vec<_> = dirs
            .iter()
            .map(|(n, t)| DirEntry {
                name: (*n).to_owned(),
                tree: *t,
                meta: self.meta,
            })
            .collect();
        dirs.sort_by(|a, b| a.name.cmp(&b.name));
        self.tx
            .write_meta(ObjectType::DirTree, &DirTree { files, dirs }.to_bytes())
            .expect("dirtree")
    }

    fn commit(self, root: Checksum) -> Checksum {
        let c = Commit {
            metadata: Vec::new(),
            parent: None,
            related: Vec::new(),
            subject: "test".into(),
            body: String::new(),
            timestamp: 0,
            root_tree: root,
            root_meta: self.meta,
        };
        let checksum = self
            .tx
            .write_meta(ObjectType::Commit, &c.to_bytes())
            .expect("commit");
        self.tx.commit().expect("commit the transaction");
        checksum
    }
}

/// One tar entry: type, mode, link target, content.
#[derive(Debug, PartialEq, Eq)]
struct Entry {
    kind: tar::EntryType,
    mode: u32,
    link: Option<String>,
    content: Vec<u8>,
}

fn entries(layer: &[u8]) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(layer);
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").display().to_string();
        let kind = e.header().entry_type();
        let mode = e.header().mode().expect("mode");
        let link = e
            .link_name()
            .expect("link")
            .map(|l| l.display().to_string());
        let mut content = Vec::new();
        e.read_to_end(&mut content).expect("content");
        let path = path.trim_end_matches('/').to_owned();
        assert!(
            out.insert(
                path.clone(),
                Entry {
                    kind,
                    mode,
                    link,
                    content
                }
            )
            .is_none(),
            "{path} written twice"
        );
    }
    out
}

fn layer(repo: &Repo, commit: &Checksum) -> Vec<u8> {
    let mut out = Vec::new();
    write_layer(repo, commit, &mut out).expect("write the layer");
    out
}

#[test]
fn a_tree_deeper_than_path_max_is_written_whole() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).expect("init");
    let b = Builder::new(&repo);
    let file = b.file(0o644, "at the bottom\n");
    const DEPTH: usize = 3000;
    let mut tree = b.dir(&[("f", file)], &[]);
    for _ in 0..DEPTH {
        tree = b.dir(&[], &[("d", tree)]);
    }
    let commit = b.commit(tree);
    // A thread with a small stack: a recursive walk would overflow it.
    let bytes = std::thread::Builder::new()
        .stack_size(256 << 10)
        .spawn(move || layer(&repo, &commit))
        .expect("spawn")
        .join()
        .expect("the walk needs no stack per level");
    let all = entries(&bytes);
    let deepest = format!("{}f", "d/".repeat(DEPTH));
    assert_eq!(deepest.len(), 6001);
    assert_eq!(all[&deepest].content, b"at the bottom\n");
    assert_eq!(all.len(), DEPTH + 1);
    // The same commit, the same bytes.
    let again = layer(
        &Repo::open(&tmp.path().join("repo")).expect("open"),
        &commit,
    );
    assert_eq!(bytes, again);
}

/// Regression: link entries had mode 0, and containers/storage applies a
/// link entry's mode to the inode both names share, so `/usr/bin/true`
/// (the same content as another file) was mode 0 in podman.
#[test]
fn repeated_content_is_a_hard_link_with_the_files_mode() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).expect("init");
    let b = Builder::new(&repo);
    let prog = b.file(0o755, "#!/bin/sh\n");
    let bin = b.dir(&[("a", prog), ("b", prog)], &[]);
    let etc = b.dir(&[("c", prog)], &[]);
    let usr = b.dir(&[], &[("bin", bin)]);
    let root = b.dir(&[], &[("etc", etc), ("usr", usr)]);
    let commit = b.commit(root);
    let all = entries(&layer(&repo, &commit));
    assert_eq!(all["usr/bin/a"].kind, tar::EntryType::Regular);
    assert_eq!(
        all["usr/bin/b"],
        Entry {
            kind: tar::EntryType::Link,
            mode: 0o755,
            link: Some("usr/bin/a".into()),
            content: Vec::new()
        }
    );
    // Outside /usr (written by containers), a copy of its own.
    assert_eq!(all["etc/c"].kind, tar::EntryType::Regular);
}

#[test]
fn usr_etc_is_etc_and_var_is_what_tmpfiles_makes() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).expect("init");
    let b = Builder::new(&repo);
    let conf = b.file(
        0o644,
        "d /var/lib/x 0700 0 0 -\n\
         L /var/run - - - - /run\n\
         C /var/lib/y - - - - /usr/share/factory/var/lib/y\n\
         d /var/cache 0711 - - -\n\
         d /var/run/x 0755 - - -\n\
         d /run/ignored 0755 - - -\n",
    );
    let y = b.file(0o600, "factory\n");
    let hostname = b.file(0o644, "image\n");
    let empty = b.dir(&[], &[]);
    let var_lib = b.dir(&[("y", y)], &[]);
    let factory = b.dir(&[], &[("lib", var_lib)]);
    let share_factory = b.dir(&[], &[("var", factory)]);
    let share = b.dir(&[], &[("factory", share_factory)]);
    let tmpfiles = b.dir(&[("strata.conf", conf)], &[]);
    let lib = b.dir(&[], &[("tmpfiles.d", tmpfiles)]);
    let etc = b.dir(&[("hostname", hostname)], &[]);
    let usr = b.dir(&[], &[("etc", etc), ("lib", lib), ("share", share)]);
    // The commit has /var/cache already: its own entry wins.
    let var = b.dir(&[], &[("cache", empty)]);
    let root = b.dir(&[], &[("usr", usr), ("var", var)]);
    let commit = b.commit(root);
    let all = entries(&layer(&repo, &commit));
    assert_eq!(all["etc/hostname"].content, b"image\n");
    assert!(!all.contains_key("usr/etc"), "{:?}", all.keys());
    assert_eq!(all["var/lib/x"].kind, tar::EntryType::Directory);
    assert_eq!(all["var/lib/x"].mode, 0o700);
    assert_eq!(all["var/run"].link.as_deref(), Some("/run"));
    // A copy of its own: a container writes /var, and some engines keep
    // hard links in the tree it writes.
    assert_eq!(all["var/lib/y"].kind, tar::EntryType::Regular);
    assert_eq!(all["var/lib/y"].content, b"factory\n");
    assert_eq!(
        all["var/lib"].mode, 0o755,
        "a missing parent, made as tmpfiles makes it"
    );
    assert_eq!(all["var/cache"].mode, 0o755, "the commit's own directory");
    assert!(!all.contains_key("var/run/x"), "nothing beneath a symlink");
    assert!(!all.contains_key("run/ignored"), "only /var is made");

    // A tree with both /etc and /usr/etc cannot be one image.
    let b = Builder::new(&repo);
    let etc = b.dir(&[], &[]);
    let usr = b.dir(&[], &[("etc", etc)]);
    let root = b.dir(&[], &[("etc", etc), ("usr", usr)]);
    let both = b.commit(root);
    let err = write_layer(&repo, &both, Vec::new()).expect_err("both /etc");
    assert!(err.to_string().contains("both /etc and /usr/etc"), "{err}");
}

/// Extended attributes travel as PAX records and come back as they were,
/// on a file whose name (not ASCII, near tar's 100 bytes) needs a GNU
/// long-name record of its own.
#[test]
fn xattrs_and_long_names_survive() {
    let tmp = tempfile::tempdir().expect("tmp");
    let repo = Repo::init(&tmp.path().join("repo"), RepoMode::Archive).expect("init");
    let b = Builder::new(&repo);
    let header = FileHeader {
        mode: 0o100644,
        // As OSTree keeps it: the name with its trailing NUL. The export
        // wrote that NUL into the PAX key until issue 15's checks refused
        // this test's NUL-less name and showed it.
        xattrs: vec![(b"user.strata\0".to_vec(), b"v\0x".to_vec())],
        ..regular_file_header()
    };
    let file = b.tx.write_content(&header, b"x\n").expect("content");
    let name = "é".repeat(48);
    assert_eq!(name.len(), 96);
    let dir = b.dir(&[(&name, file)], &[]);
    let top = b.dir(&[], &[("usr", dir)]);
    let commit = b.commit(top);
    let bytes = layer(&repo, &commit);
    let mut archive = tar::Archive::new(&bytes[..]);
    let mut found = false;
    for e in archive.entries().expect("entries") {
        let mut e = e.expect("entry");
        let path = e.path().expect("path").display().to_string();
        if path != format!("usr/{name}") {
            continue;
        }
        let xattrs: Vec<(String, Vec<u8>)> = e
            .pax_extensions()
            .expect("pax")
            .expect("a PAX header")
            .map(|x| {
                let x = x.expect("record");
                (x.key().expect("key").to_owned(), x.value_bytes().to_vec())
            })
            .collect();
        assert_eq!(
            xattrs,
            [("SCHILY.xattr.user.strata".to_owned(), b"v\0x".to_vec())]
        );
        found = true;
    }
    assert!(found, "usr/{name} is in the layer");
}
