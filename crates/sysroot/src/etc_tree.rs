//! Reading an `/etc` directory into an [`etc_merge::Tree`](Tree), copying
//! the new defaults, and applying a merge [`Plan`] to a new deployment's
//! `/etc`.
//!
//! All of it through [`Cursor`]s: directory handles moved by names, with
//! `O_NOFOLLOW`, walked with explicit lists instead of recursion, names
//! kept as bytes. So a tree of any depth is handled, and no symlink in
//! either `/etc` can make the merge read or write through it. An extended
//! attribute that cannot be copied does not stop the merge; it is a
//! [`Problem`] of the plan's report.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use sha2::{Digest, Sha256};
use strata_store::error::{Error, IoContext, Result};

use crate::etc_dirs::{Cursor, join, split_last};
use crate::etc_merge::{self, Node, Plan, Problem, Tree};

fn kind(st: &Stat) -> FileType {
    FileType::from_raw_mode(st.st_mode)
}

/// The entries of the cursor's directory (not `.` and `..`), each with its
/// lstat.
fn entries(c: &Cursor) -> Result<Vec<(OsString, Stat)>> {
    let here = || c.path_of(OsStr::new(""));
    let dir = rustix::fs::Dir::read_from(c.fd()).io_ctx("read directory", here())?;
    let mut out = Vec::new();
    for e in dir {
        let e = e.io_ctx("read directory", here())?;
        let name = OsStr::from_bytes(e.file_name().to_bytes());
        if name == "." || name == ".." {
            continue;
        }
        let st = rustix::fs::statat(c.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
            .io_ctx("stat", c.path_of(name))?;
        out.push((name.to_owned(), st));
    }
    Ok(out)
}

/// Scans `root`; a missing directory is an empty tree.
pub fn scan(root: &Path) -> Result<Tree> {
    let mut tree = Tree::new();
    if std::fs::symlink_metadata(root).is_err() {
        return Ok(tree);
    }
    let mut c = Cursor::open(root)?;
    let mut todo = vec![OsString::new()];
    while let Some(dir) = todo.pop() {
        c.cd(&dir)?;
        for (name, st) in entries(&c)? {
            let rel = join(&dir, &name);
            let node = match kind(&st) {
                FileType::Directory => {
                    todo.push(rel.clone());
                    Node::Dir {
                        mode: st.st_mode,
                        uid: st.st_uid,
                        gid: st.st_gid,
                    }
                }
                FileType::Symlink => Node::Symlink {
                    target: read_link(&c, &name)?,
                    uid: st.st_uid,
                    gid: st.st_gid,
                },
                FileType::RegularFile => Node::File {
                    mode: st.st_mode,
                    uid: st.st_uid,
                    gid: st.st_gid,
                    digest: digest(&c, &name)?,
                },
                // Sockets and fifos in /etc are not configuration; leave them out.
                _ => continue,
            };
            tree.insert(rel, node);
        }
    }
    Ok(tree)
}

fn read_link(c: &Cursor, name: &OsStr) -> Result<OsString> {
    let target =
        rustix::fs::readlinkat(c.fd(), name, Vec::new()).io_ctx("read symlink", c.path_of(name))?;
    Ok(OsString::from_vec(target.into_bytes()))
}

fn open_file(c: &Cursor, name: &OsStr) -> Result<File> {
    let fd = rustix::fs::openat(
        c.fd(),
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .io_ctx("open", c.path_of(name))?;
    Ok(File::from(fd))
}

fn digest(c: &Cursor, name: &OsStr) -> Result<[u8; 32]> {
    let mut f = open_file(c, name)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).io_ctx("read", c.path_of(name))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().into())
}

fn set_owner_mode(fd: impl AsFd, path: &Path, uid: u32, gid: u32, mode: u32) -> Result<()> {
    // chown before chmod: chown clears the setuid and setgid bits.
    if rustix::process::geteuid().is_root() {
        rustix::fs::fchown(
            &fd,
            Some(rustix::fs::Uid::from_raw(uid)),
            Some(rustix::fs::Gid::from_raw(gid)),
        )
        .io_ctx("chown", path)?;
    }
    rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode & 0o7777)).io_ctx("chmod", path)
}

fn open_dir(c: &Cursor, name: &OsStr) -> Result<OwnedFd> {
    rustix::fs::openat(
        c.fd(),
        name,
        OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .io_ctx("open directory", c.path_of(name))
}

/// `name` of the cursor's directory as a short path the xattr calls can
/// take whatever the depth: through `/proc/self/fd`, whose entry for the
/// directory handle leads to that very directory. `name` itself is not
/// followed (the calls are the `l` ones).
fn proc_path(c: &Cursor, name: &OsStr) -> PathBuf {
    let mut p = PathBuf::from(format!("/proc/self/fd/{}", c.fd().as_raw_fd()));
    p.push(name);
    p
}

/// What a failed step did, for a [`Problem`] (the path is in the problem).
fn what_failed(e: Error) -> String {
    match e {
        Error::Io { action, source, .. } => format!("could not {action}: {source}"),
        e => e.to_string(),
    }
}

/// Copies the extended attributes of `name` in `src` to `name` in `dst`;
/// a failure is a problem of `rel`, reported, not an error.
fn copy_xattrs(src: &Cursor, dst: &Cursor, name: &OsStr, rel: &OsStr, problems: &mut Vec<Problem>) {
    let copied = strata_store::xattr::read(&proc_path(src, name))
        .map_err(|e| format!("reading extended attributes: {}", what_failed(e)))
        .and_then(|x| {
            strata_store::xattr::set_path(&proc_path(dst, name), &x)
                .map_err(|e| format!("copying extended attributes: {}", what_failed(e)))
        });
    if let Err(what) = copied {
        problems.push(Problem {
            path: rel.to_owned(),
            what,
        });
    }
}

/// Copies the file or symlink `name` (lstat `st`) from `src`'s directory to
/// `dst`'s, where nothing has that name.
fn copy_leaf(
    src: &Cursor,
    dst: &Cursor,
    name: &OsStr,
    st: &Stat,
    rel: &OsStr,
    problems: &mut Vec<Problem>,
) -> Result<()> {
    let to = dst.path_of(name);
    match kind(st) {
        FileType::Symlink => {
            let target = read_link(src, name)?;
            rustix::fs::symlinkat(target.as_os_str(), dst.fd(), name)
                .io_ctx("create symlink", &to)?;
            if rustix::process::geteuid().is_root() {
                rustix::fs::chownat(
                    dst.fd(),
                    name,
                    Some(rustix::fs::Uid::from_raw(st.st_uid)),
                    Some(rustix::fs::Gid::from_raw(st.st_gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .io_ctx("chown", &to)?;
            }
        }
        FileType::RegularFile => {
            let mut from = open_file(src, name)?;
            let out = rustix::fs::openat(
                dst.fd(),
                name,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .io_ctx("create", &to)?;
            let mut out = File::from(out);
            std::io::copy(&mut from, &mut out).io_ctx("copy to", &to)?;
            set_owner_mode(&out, &to, st.st_uid, st.st_gid, st.st_mode)?;
        }
        _ => {
            return Err(Error::BadInput {
                path: src.path_of(name),
                what: "not a file, directory or symlink".into(),
            });
        }
    }
    copy_xattrs(src, dst, name, rel, problems);
    Ok(())
}

/// Removes `rel` from the cursor's tree, whatever it is (a directory with
/// all it holds, iteratively); absent is fine. Leaves the cursor at the
/// parent of `rel`.
fn remove_any(c: &mut Cursor, rel: &OsStr) -> Result<()> {
    let (parent, name) = split_last(rel);
    c.cd(parent)?;
    let st = match rustix::fs::statat(c.fd(), name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(rustix::io::Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e).io_ctx("stat", c.path_of(name)),
    };
    if kind(&st) != FileType::Directory {
        return rustix::fs::unlinkat(c.fd(), name, AtFlags::empty())
            .io_ctx("remove", c.path_of(name));
    }
    let mut dirs = Vec::new();
    let mut todo = vec![rel.to_owned()];
    while let Some(dir) = todo.pop() {
        c.cd(&dir)?;
        for (name, st) in entries(c)? {
            if kind(&st) == FileType::Directory {
                todo.push(join(&dir, &name));
            } else {
                rustix::fs::unlinkat(c.fd(), name.as_os_str(), AtFlags::empty())
                    .io_ctx("remove", c.path_of(&name))?;
            }
        }
        dirs.push(dir);
    }
    // Found parent first: removed child first.
    for dir in dirs.iter().rev() {
        let (parent, name) = split_last(dir);
        c.cd(parent)?;
        rustix::fs::unlinkat(c.fd(), name, AtFlags::REMOVEDIR).io_ctx("remove", c.path_of(name))?;
    }
    c.cd(parent)
}

/// Creates directory `name` in `c`'s directory with this owner and mode.
fn make_dir(c: &Cursor, name: &OsStr, uid: u32, gid: u32, mode: u32) -> Result<()> {
    let to = c.path_of(name);
    rustix::fs::mkdirat(c.fd(), name, Mode::from_raw_mode(0o700)).io_ctx("create", &to)?;
    set_owner_mode(open_dir(c, name)?, &to, uid, gid, mode)
}

/// Copies a directory tree (the new defaults `usr/etc` to `etc`, which
/// must not exist): real copies, never hardlinks, since `/etc` is written
/// to. Directories get their modes once filled (one without write
/// permission can still be filled).
pub fn copy_tree(from: &Path, to: &Path, problems: &mut Vec<Problem>) -> Result<()> {
    let mut src = Cursor::open(from)?;
    std::fs::create_dir(to).io_ctx("create", to)?;
    let mut dst = Cursor::open(to)?;
    copy_xattrs(&src, &dst, OsStr::new("."), OsStr::new(""), problems);
    let mut made: Vec<(OsString, Stat)> = Vec::new();
    let mut todo = vec![OsString::new()];
    while let Some(dir) = todo.pop() {
        src.cd(&dir)?;
        dst.cd(&dir)?;
        for (name, st) in entries(&src)? {
            let rel = join(&dir, &name);
            if kind(&st) == FileType::Directory {
                rustix::fs::mkdirat(dst.fd(), name.as_os_str(), Mode::from_raw_mode(0o700))
                    .io_ctx("create", dst.path_of(&name))?;
                copy_xattrs(&src, &dst, &name, &rel, problems);
                todo.push(rel.clone());
                made.push((rel, st));
            } else if matches!(kind(&st), FileType::Symlink | FileType::RegularFile) {
                copy_leaf(&src, &dst, &name, &st, &rel, problems)?;
            }
        }
    }
    for (rel, st) in made.iter().rev() {
        dst.cd(rel)?;
        set_owner_mode(
            dst.fd(),
            &dst.path_of(OsStr::new("")),
            st.st_uid,
            st.st_gid,
            st.st_mode,
        )?;
    }
    dst.cd(OsStr::new(""))?;
    let root = src.level(0);
    set_owner_mode(dst.fd(), to, root.uid, root.gid, root.mode)
}

/// The three-way merge: `dest` (the new deployment's `/etc`, already a
/// copy of `new_defaults`) gets what the machine changed in `current`
/// against `old_defaults`. What it could carry over only in part is in
/// the plan's [`Plan::problems`].
pub fn merge(
    old_defaults: &Path,
    current: &Path,
    new_defaults: &Path,
    dest: &Path,
) -> Result<Plan> {
    let mut plan = etc_merge::plan(&scan(old_defaults)?, &scan(current)?, &scan(new_defaults)?);
    let mut problems = Vec::new();
    apply(&plan, current, dest, &mut problems)?;
    plan.problems.extend(problems);
    Ok(plan)
}

/// Applies `plan` to `dest` (the new deployment's `/etc`, already holding
/// the new defaults), copying kept entries from `current`.
fn apply(plan: &Plan, current: &Path, dest: &Path, problems: &mut Vec<Problem>) -> Result<()> {
    let mut dst = Cursor::open(dest)?;
    for rel in &plan.remove {
        let (parent, _) = split_last(rel);
        match dst.cd(parent) {
            // Gone with its directory already.
            Err(e) if e.is_io_kind(std::io::ErrorKind::NotFound) => continue,
            r => r?,
        }
        remove_any(&mut dst, rel)?;
    }
    let mut src = Cursor::open(current)?;
    // Sorted: a directory is handled before what it holds.
    for rel in &plan.keep_local {
        let (parent, name) = split_last(rel);
        src.cd(parent)?;
        // A locally changed file is kept even where the new defaults
        // dropped its directory (the vendor removed `/etc/foo/`, the
        // machine changed `/etc/foo/bar.conf`): made as in `current`.
        dst.cd_with(parent, |d, missing| {
            let like = src.level(d.depth() + 1);
            make_dir(d, missing, like.uid, like.gid, like.mode)
        })?;
        let st = rustix::fs::statat(src.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
            .io_ctx("stat", src.path_of(name))?;
        if kind(&st) == FileType::Directory {
            let is_dir = rustix::fs::statat(dst.fd(), name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|t| kind(&t) == FileType::Directory);
            if is_dir {
                set_owner_mode(
                    open_dir(&dst, name)?,
                    &dst.path_of(name),
                    st.st_uid,
                    st.st_gid,
                    st.st_mode,
                )?;
            } else {
                remove_any(&mut dst, rel)?;
                make_dir(&dst, name, st.st_uid, st.st_gid, st.st_mode)?;
            }
            copy_xattrs(&src, &dst, name, rel, problems);
            continue;
        }
        remove_any(&mut dst, rel)?;
        copy_leaf(&src, &dst, name, &st, rel, problems)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use strata_store::test_util::{have_root, skip};

    use super::*;

    /// The three `/etc`s of a merge and where it goes.
    struct Etcs {
        _tmp: tempfile::TempDir,
        old: PathBuf,
        current: PathBuf,
        new: PathBuf,
        dest: PathBuf,
        outside: PathBuf,
    }

    fn etcs() -> Etcs {
        let tmp = tempfile::tempdir().expect("tempdir");
        let p = |n: &str| tmp.path().join(n);
        let e = Etcs {
            old: p("old"),
            current: p("current"),
            new: p("new"),
            dest: p("dest"),
            outside: p("outside"),
            _tmp: tmp,
        };
        for d in [&e.old, &e.current, &e.new, &e.outside] {
            std::fs::create_dir(d).expect("mkdir");
        }
        e
    }

    impl Etcs {
        /// Copies the new defaults to `dest`, then merges.
        fn merge(&self) -> Result<Plan> {
            let mut problems = Vec::new();
            copy_tree(&self.new, &self.dest, &mut problems)?;
            let mut plan = merge(&self.old, &self.current, &self.new, &self.dest)?;
            plan.problems.extend(problems);
            Ok(plan)
        }
    }

    /// Runs `f` in a thread with a 256 KiB stack: a walk that recursed
    /// once per level would overflow it within a few thousand levels.
    fn on_small_stack<T: Send>(f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            std::thread::Builder::new()
                .stack_size(256 << 10)
                .spawn_scoped(s, f)
                .expect("spawn")
                .join()
                .expect("the merge thread")
        })
    }

    #[test]
    fn a_name_that_is_not_utf8_survives_byte_exact() {
        let e = etcs();
        let name = OsStr::from_bytes(b"caf\xe9-\xff.conf");
        std::fs::write(e.old.join("hostname"), "old\n").expect("write");
        std::fs::write(e.current.join("hostname"), "old\n").expect("write");
        std::fs::write(e.current.join(name), "local\n").expect("write");
        std::fs::create_dir(e.current.join(name).with_extension("d")).expect("mkdir");
        symlink(name, e.current.join("link")).expect("symlink");
        std::fs::write(e.new.join("hostname"), "new\n").expect("write");
        let plan = e.merge().expect("merge");
        assert_eq!(plan.added, 3, "{plan:?}");
        assert_eq!(
            std::fs::read(e.dest.join(name)).expect("the local file"),
            b"local\n"
        );
        assert!(e.dest.join(name).with_extension("d").is_dir());
        assert_eq!(
            std::fs::read_link(e.dest.join("link")).expect("the symlink"),
            Path::new(name)
        );
        assert_eq!(
            etc_merge::display_path(name),
            "caf\\xe9-\\xff.conf",
            "shown escaped"
        );
    }

    /// A chain of `levels` directories named `d` under `root`, made
    /// relative to handles: its path is far beyond PATH_MAX.
    fn deep_chain(root: &Path, levels: usize) {
        let mut fd = rustix::fs::open(root, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .expect("open");
        for _ in 0..levels {
            rustix::fs::mkdirat(&fd, "d", Mode::from_raw_mode(0o755)).expect("mkdirat");
            fd = rustix::fs::openat(&fd, "d", OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
                .expect("openat");
        }
        let f = rustix::fs::openat(
            &fd,
            "leaf.conf",
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
        )
        .expect("create the leaf");
        rustix::io::write(&f, b"deep\n").expect("write the leaf");
    }

    #[test]
    fn a_tree_3000_levels_deep_merges_on_a_small_stack() {
        const LEVELS: usize = 3000;
        let e = etcs();
        // Deep in the new defaults (copied), and added deep locally.
        deep_chain(&e.new, LEVELS);
        std::fs::create_dir(e.current.join("local")).expect("mkdir");
        deep_chain(&e.current.join("local"), LEVELS);
        let plan = on_small_stack(|| e.merge()).expect("merge");
        assert_eq!(plan.added, LEVELS + 2, "local, its chain and the leaf");
        assert!(plan.problems.is_empty(), "{:?}", plan.problems);
        // The two chains are in the new /etc: check by handles.
        for top in ["d", "local/d"] {
            let mut c = Cursor::open(&e.dest).expect("open");
            let mut rel = OsString::from(top);
            for _ in 1..LEVELS {
                rel.push("/d");
            }
            c.cd(&rel).expect("down the chain");
            assert_eq!(
                digest(&c, OsStr::new("leaf.conf")).expect("the leaf"),
                <[u8; 32]>::from(Sha256::digest(b"deep\n")),
                "{top}"
            );
        }
        // And removed again, as deep: a merge where the machine deleted it.
        let plan = on_small_stack(|| {
            let mut dst = Cursor::open(&e.dest)?;
            remove_any(&mut dst, OsStr::new("local"))?;
            scan(&e.dest)
        })
        .expect("remove");
        assert!(!plan.keys().any(|k| k.as_bytes().starts_with(b"local")));
    }

    #[test]
    fn symlinks_in_the_machines_etc_never_lead_outside() {
        let e = etcs();
        // The old defaults had a directory; the machine replaced it with a
        // symlink out of /etc, while the new defaults still have it.
        std::fs::create_dir(e.old.join("conf.d")).expect("mkdir");
        std::fs::write(e.old.join("conf.d/a"), "old\n").expect("write");
        symlink(&e.outside, e.current.join("conf.d")).expect("symlink");
        std::fs::create_dir(e.new.join("conf.d")).expect("mkdir");
        std::fs::write(e.new.join("conf.d/a"), "new\n").expect("write");
        std::fs::write(e.new.join("conf.d/b"), "new\n").expect("write");
        // The new defaults make a directory a symlink out of /etc, where the
        // machine added a file inside it.
        std::fs::create_dir(e.old.join("ssl")).expect("mkdir");
        std::fs::create_dir(e.current.join("ssl")).expect("mkdir");
        std::fs::write(e.current.join("ssl/mine.pem"), "local\n").expect("write");
        symlink(&e.outside, e.new.join("ssl")).expect("symlink");
        // A locally removed file whose directory is a symlink out.
        std::fs::write(e.old.join("motd"), "old\n").expect("write");
        std::fs::write(e.new.join("motd"), "new\n").expect("write");

        let plan = e.merge().expect("merge");
        assert_eq!(
            std::fs::read_dir(&e.outside).expect("list").count(),
            0,
            "nothing was written outside the new /etc"
        );
        assert_eq!(
            std::fs::read_link(e.dest.join("conf.d")).expect("the local symlink"),
            e.outside
        );
        let ssl = std::fs::symlink_metadata(e.dest.join("ssl")).expect("ssl");
        assert!(ssl.is_dir(), "the local directory replaced the symlink");
        assert_eq!(
            std::fs::read(e.dest.join("ssl/mine.pem")).expect("kept"),
            b"local\n"
        );
        assert!(!e.dest.join("motd").exists());
        let conflicts: Vec<_> = plan.conflicts.iter().map(|c| c.path.clone()).collect();
        assert_eq!(conflicts, ["conf.d", "ssl"]);
    }

    /// A ramfs mounted at a directory, unmounted on drop: a filesystem
    /// without extended attributes.
    struct Ramfs(PathBuf);

    impl Drop for Ramfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }

    /// The machine's `/etc` has a file with a user xattr, the new one is on
    /// a filesystem that refuses xattrs: the file is carried over, and the
    /// lost attribute is reported naming it (it was dropped silently).
    #[test]
    fn an_xattr_the_new_etc_refuses_is_reported() {
        if !have_root("mount a ramfs") {
            return;
        }
        let e = etcs();
        let name = OsStr::from_bytes(b"labelled-\xff");
        let file = e.current.join(name);
        std::fs::write(&file, "local\n").expect("write");
        let cname = c"user.label";
        if let Err(err) =
            rustix::fs::setxattr(&file, cname, b"secret", rustix::fs::XattrFlags::empty())
        {
            skip(&format!("the temp directory takes no user xattrs: {err}"));
            return;
        }
        let ramfs = e.dest.with_file_name("ramfs");
        std::fs::create_dir(&ramfs).expect("mkdir");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "ramfs", "ramfs"])
            .arg(&ramfs)
            .status()
            .expect("run mount");
        assert!(mounted.success(), "mount a ramfs");
        let _ramfs = Ramfs(ramfs.clone());
        let dest = ramfs.join("etc");
        let mut problems = Vec::new();
        copy_tree(&e.new, &dest, &mut problems).expect("copy");
        let plan = merge(&e.old, &e.current, &e.new, &dest).expect("merge");
        assert_eq!(std::fs::read(dest.join(name)).expect("copied"), b"local\n");
        let shown: Vec<String> = plan.problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(plan.problems.len(), 1, "{shown:?}");
        assert_eq!(plan.problems[0].path, name);
        assert!(
            shown[0].starts_with("/etc/labelled-\\xff: copying extended attributes"),
            "{shown:?}"
        );
    }
}
