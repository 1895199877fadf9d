//! An installation of apps and runtimes: a repository (on a strata
//! machine, the system's own, so an app's files equal to the OS's are the
//! same objects) and a directory of checkouts, laid out as Flatpak lays
//! out its own:
//!
//! ```text
//! <dir>/.lock                                   held while anything changes
//! <dir>/app/<ID>/<ARCH>/<BRANCH>/<commit>/      hardlink checkout: metadata, files/, export/
//! <dir>/app/<ID>/<ARCH>/<BRANCH>/active         symlink to the running version's <commit>
//! <dir>/app/<ID>/<ARCH>/<BRANCH>/previous       symlink to the one before (rollback)
//! <dir>/app/<ID>/<ARCH>/<BRANCH>/origin         the remote it came from
//! <dir>/runtime/<ID>/<ARCH>/<BRANCH>/…          the same for runtimes
//! <dir>/exports/bin/<ID>, exports/share/…       what desktops and shells find
//! ```
//!
//! The repository keeps what is deployed: local refs
//! `apps/<kind>/<ID>/<ARCH>/<BRANCH>/{active,previous}` name the commits,
//! so a prune of the repository (`strata cleanup`) never takes an app's
//! objects.
//!
//! Atomicity: a new version is checked out beside the old under a
//! temporary name, renamed to its commit, and only then does `active`
//! move (a symlink renamed over the old one, the directory synced). A
//! crash leaves the old version active and at worst a temporary
//! directory, removed by the next change. A running app keeps the
//! version it started with.

use std::fs;
use std::path::{Path, PathBuf};

use strata_remote::pull::{self, PullOptions};
use strata_store::checkout::CheckoutOptions;
use strata_store::lock::RepoLock;
use strata_store::{Checksum, RefName, Repo, durable};

use crate::error::{Error, IoContext, Result};
use crate::exports;
use crate::flatpak_ref::{FlatpakRef, Kind, default_arch, validate_id};
use crate::metadata::{self, Metadata};

/// Largest `metadata` file read from a commit.
const MAX_METADATA: u64 = 1 << 20;

/// Receives the progress of installs and updates.
pub trait Progress: Sync {
    /// A step begins (`pulling app/org.example.Hello/x86_64/stable`).
    fn step(&self, what: &str);
    /// The progress of a pull.
    fn pull(&self) -> &dyn strata_remote::progress::Progress;
}

/// Progress nobody watches.
pub struct Silent;

impl Progress for Silent {
    fn step(&self, _: &str) {}
    fn pull(&self) -> &dyn strata_remote::progress::Progress {
        &strata_remote::progress::Silent
    }
}

/// An app or runtime as installed.
#[derive(Debug, Clone)]
pub struct Installed {
    /// `app` or `runtime`.
    pub kind: Kind,
    /// Its ID.
    pub id: String,
    /// Its arch.
    pub arch: String,
    /// Its branch.
    pub branch: String,
    /// The active commit.
    pub commit: Checksum,
    /// The version before the last update, for rollback.
    pub previous: Option<Checksum>,
    /// The remote it was installed from.
    pub origin: String,
    /// Where the active version is checked out.
    pub path: PathBuf,
}

impl Installed {
    /// Its full ref.
    pub fn flatpak_ref(&self) -> FlatpakRef {
        FlatpakRef {
            kind: self.kind,
            id: self.id.clone(),
            arch: self.arch.clone(),
            branch: self.branch.clone(),
        }
    }

    /// Its active version's metadata.
    pub fn metadata(&self) -> Result<Metadata> {
        let p = self.path.join("metadata");
        let text = fs::read_to_string(&p).ctx("read", &p)?;
        metadata::parse(&text, &p.display().to_string())
    }
}

/// What an install did.
#[derive(Debug, Clone)]
pub struct InstallReport {
    /// The app.
    pub app: Installed,
    /// The runtime, and whether this install brought it.
    pub runtime: (Installed, bool),
}

/// What an update did to one app or runtime.
#[derive(Debug, Clone)]
pub struct Updated {
    /// Its ref.
    pub flatpak_ref: FlatpakRef,
    /// The commit before.
    pub from: Checksum,
    /// The commit now active (equal to `from` when there was nothing new).
    pub to: Checksum,
}

/// What a removal did.
#[derive(Debug, Clone, Default)]
pub struct Removed {
    /// The refs removed: the app, then the runtimes nothing uses anymore.
    pub refs: Vec<FlatpakRef>,
}

/// A repository and a directory of checkouts.
pub struct Installation {
    repo: Repo,
    dir: PathBuf,
}

fn deploy_ref(r: &FlatpakRef, which: &str) -> Result<RefName> {
    Ok(RefName::parse(&format!(
        "apps/{}/{}/{}/{}/{which}",
        r.kind.as_str(),
        r.id,
        r.arch,
        r.branch
    ))?)
}

fn read_link_name(link: &Path) -> Option<String> {
    fs::read_link(link)
        .ok()
        .and_then(|t| t.to_str().map(str::to_owned))
}

/// Points symlink `link` at `target`, atomically and durably.
fn replace_link(link: &Path, target: &str) -> Result<()> {
    let dir = link.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".link-{}", durable::unique_suffix()));
    std::os::unix::fs::symlink(target, &tmp).ctx("symlink", &tmp)?;
    fs::rename(&tmp, link).ctx("rename over", link)?;
    Ok(durable::sync_dir(dir)?)
}

impl Installation {
    /// An installation of `repo`'s objects in `dir` (created when needed).
    pub fn open(repo: Repo, dir: &Path) -> Result<Self> {
        fs::create_dir_all(dir).ctx("create", dir)?;
        Ok(Installation {
            repo,
            dir: dir.to_owned(),
        })
    }

    /// Its repository.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn lock(&self) -> Result<RepoLock> {
        Ok(RepoLock::exclusive(&self.dir)?)
    }

    fn branch_dir(&self, r: &FlatpakRef) -> PathBuf {
        self.dir
            .join(r.kind.as_str())
            .join(&r.id)
            .join(&r.arch)
            .join(&r.branch)
    }

    /// The installed version of `r`, if any.
    pub fn get(&self, r: &FlatpakRef) -> Result<Option<Installed>> {
        let dir = self.branch_dir(r);
        let Some(active) = read_link_name(&dir.join("active")) else {
            return Ok(None);
        };
        let commit = Checksum::from_hex(&active).map_err(|e| {
            Error::Refused(format!("{}: active is not a commit: {e}", dir.display()))
        })?;
        let previous = read_link_name(&dir.join("previous"))
            .and_then(|p| Checksum::from_hex(&p).ok())
            .filter(|p| *p != commit && dir.join(p.to_string()).is_dir());
        let origin_path = dir.join("origin");
        let origin = fs::read_to_string(&origin_path)
            .ctx("read", &origin_path)?
            .trim()
            .to_owned();
        Ok(Some(Installed {
            kind: r.kind,
            id: r.id.clone(),
            arch: r.arch.clone(),
            branch: r.branch.clone(),
            commit,
            previous,
            origin,
            path: dir.join(active),
        }))
    }

    /// Everything installed, apps first, each sorted by ID.
    pub fn list(&self) -> Result<Vec<Installed>> {
        let mut out = Vec::new();
        for kind in [Kind::App, Kind::Runtime] {
            let top = self.dir.join(kind.as_str());
            for id in sorted_names(&top)? {
                for arch in sorted_names(&top.join(&id))? {
                    for branch in sorted_names(&top.join(&id).join(&arch))? {
                        let Ok(r) = FlatpakRef::new(kind, &id, &arch, &branch) else {
                            continue;
                        };
                        if let Some(i) = self.get(&r)? {
                            out.push(i);
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The installed app `id` (its only installed branch).
    pub fn app(&self, id: &str) -> Result<Installed> {
        validate_id(id)?;
        self.list()?
            .into_iter()
            .find(|i| i.kind == Kind::App && i.id == id)
            .ok_or_else(|| Error::NotFound(format!("app {id} is not installed")))
    }

    /// Installs app `id` from `remote` (its only branch there for this
    /// arch when `branch` is `None`), and the runtime it names when that
    /// is not installed. Nothing is deployed unless both are complete and
    /// verified.
    pub fn install(
        &self,
        remote: &str,
        id: &str,
        branch: Option<&str>,
        progress: &dyn Progress,
    ) -> Result<InstallReport> {
        validate_id(id)?;
        let _lock = self.lock()?;
        if let Some(i) = self.list()?.into_iter().find(|i| i.id == id) {
            return Err(Error::Refused(format!(
                "{} is installed already (commit {}); update it with: strata app update {id}",
                i.flatpak_ref(),
                short(&i.commit)
            )));
        }
        let arch = default_arch();
        let app_ref = match branch {
            Some(b) => FlatpakRef::new(Kind::App, id, arch, b)?,
            None => self.only_branch(remote, Kind::App, id, arch)?,
        };
        // The commit object first: its metadata names the runtime, which is
        // checked before the app's files are downloaded.
        progress.step(&format!("checking {app_ref} on {remote}"));
        let head = self.pull(remote, &app_ref, true, progress)?;
        let meta = self.commit_metadata(&head)?;
        check_is(&meta, &app_ref, &head)?;
        let runtime_ref = meta
            .runtime
            .clone()
            .ok_or_else(|| Error::Refused(format!("app {id} names no runtime")))?;
        let installed_runtime = self.get(&runtime_ref)?;
        let need_runtime = installed_runtime.is_none();
        // Both checked out and checked before either becomes active.
        let staged = (|| -> Result<(Option<Checksum>, Checksum)> {
            let new_runtime = if need_runtime {
                progress.step(&format!("pulling {runtime_ref} from {remote}"));
                let c = self.pull(remote, &runtime_ref, false, progress).map_err(|e| {
                    Error::NotFound(format!(
                        "app {id} needs runtime {}, which is not installed and which remote {remote} does not give: {e}",
                        runtime_ref.triple()
                    ))
                })?;
                check_is(&self.tree_metadata(&c)?, &runtime_ref, &c)?;
                self.stage(&runtime_ref, &c)?;
                Some(c)
            } else {
                None
            };
            progress.step(&format!("pulling {app_ref} from {remote}"));
            let c = self.pull(remote, &app_ref, false, progress)?;
            check_is(&self.tree_metadata(&c)?, &app_ref, &c)?;
            self.stage(&app_ref, &c)?;
            Ok((new_runtime, c))
        })();
        let (new_runtime, c) = match staged {
            Ok(s) => s,
            Err(e) => {
                // Nothing of this install stays: no checkout, and no ref
                // keeping what was pulled.
                let mut refs = vec![&app_ref];
                if need_runtime {
                    refs.push(&runtime_ref);
                }
                for r in refs {
                    self.remove_branch_dir(r)?;
                    let pulled = RefName::parse(&format!("{remote}:{r}"))?;
                    if self.repo.read_ref(&pulled)?.is_some() {
                        self.repo.delete_ref(&pulled)?;
                    }
                }
                return Err(e);
            }
        };
        let runtime = match (new_runtime, installed_runtime) {
            (Some(rc), _) => (self.activate(&runtime_ref, &rc, remote)?, true),
            (None, rt) => (
                rt.ok_or_else(|| Error::NotFound(format!("runtime {runtime_ref} went away")))?,
                false,
            ),
        };
        let app = self.activate(&app_ref, &c, remote)?;
        exports::update(&self.dir, &app)?;
        Ok(InstallReport { app, runtime })
    }

    /// The one branch `remote` has of `id` for `arch`.
    fn only_branch(&self, remote: &str, kind: Kind, id: &str, arch: &str) -> Result<FlatpakRef> {
        let prefix = format!("{}/{id}/{arch}/", kind.as_str());
        let refs = pull::remote_refs(&self.repo, remote).map_err(|e| {
            Error::NotFound(format!(
                "cannot list the branches of {id} on remote {remote} ({e}); name the branch: strata app install {remote} {id} BRANCH"
            ))
        })?;
        let branches: Vec<&str> = refs
            .iter()
            .filter_map(|r| r.name.strip_prefix(&prefix))
            .collect();
        match branches.as_slice() {
            [one] => FlatpakRef::new(kind, id, arch, one),
            [] => Err(Error::NotFound(format!(
                "remote {remote} has no {} {id} for {arch}",
                kind.as_str()
            ))),
            many => Err(Error::Refused(format!(
                "remote {remote} has {id} in branches {}: name one",
                many.join(", ")
            ))),
        }
    }

    fn pull(
        &self,
        remote: &str,
        r: &FlatpakRef,
        commit_only: bool,
        progress: &dyn Progress,
    ) -> Result<Checksum> {
        let report = pull::run(
            &self.repo,
            &PullOptions {
                remote: remote.to_owned(),
                ref_name: r.to_string(),
                depth: 0,
                commit: None,
                allow_downgrade: false,
                concurrency: 4,
                stall_timeout: None,
                allow_expired_summary: false,
                commit_only,
            },
            progress.pull(),
        )?;
        Ok(report.commit)
    }

    /// The metadata a commit carries (`xa.metadata`, as `flatpak
    /// build-export` writes it), else its tree's `metadata` file.
    fn commit_metadata(&self, c: &Checksum) -> Result<Metadata> {
        let commit = self.repo.load_commit(c)?;
        let text = commit
            .metadata
            .iter()
            .find(|(k, _)| k == crate::publish::XA_METADATA)
            .and_then(|(_, v)| v.as_str().map(str::to_owned));
        match text {
            Some(t) => metadata::parse(&t, &format!("xa.metadata of commit {c}")),
            None => Err(Error::BadMetadata {
                source_name: format!("commit {c}"),
                what: "has no xa.metadata: not published as a Flatpak app or runtime".into(),
            }),
        }
    }

    /// The `metadata` file in a commit's tree, which must be the commit's
    /// `xa.metadata` byte for byte (as Flatpak requires: what was shown
    /// before the download is what runs).
    fn tree_metadata(&self, c: &Checksum) -> Result<Metadata> {
        let (text, meta) = self.tree_metadata_text(c)?;
        let commit = self.repo.load_commit(c)?;
        let xa = commit
            .metadata
            .iter()
            .find(|(k, _)| k == crate::publish::XA_METADATA)
            .and_then(|(_, v)| v.as_str());
        if xa != Some(text.as_str()) {
            return Err(Error::BadMetadata {
                source_name: format!("commit {c}"),
                what: "its metadata file differs from its xa.metadata".into(),
            });
        }
        Ok(meta)
    }

    fn tree_metadata_text(&self, c: &Checksum) -> Result<(String, Metadata)> {
        let src = format!("metadata of commit {c}");
        let entry = self
            .repo
            .lookup(c, "metadata")
            .map_err(|_| Error::BadMetadata {
                source_name: format!("commit {c}"),
                what: "has no metadata file: not a Flatpak app or runtime".into(),
            })?;
        let strata_store::tree::Entry::File(obj) = entry else {
            return Err(Error::BadMetadata {
                source_name: src,
                what: "is a directory".into(),
            });
        };
        let (header, size) = self.repo.load_file_header(&obj)?;
        if header.is_symlink() || size > MAX_METADATA {
            return Err(Error::BadMetadata {
                source_name: src,
                what: format!("is a symlink or larger than {MAX_METADATA} bytes"),
            });
        }
        let (_, bytes) = self.repo.load_file(&obj)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::BadMetadata {
            source_name: src.clone(),
            what: "is not UTF-8".into(),
        })?;
        let meta = metadata::parse(&text, &src)?;
        Ok((text, meta))
    }

    /// Checks out commit `c` of `r` beside the active version, checked,
    /// and durable; nothing runs it yet.
    fn stage(&self, r: &FlatpakRef, c: &Checksum) -> Result<()> {
        let dir = self.branch_dir(r);
        fs::create_dir_all(&dir).ctx("create", &dir)?;
        self.sweep(r)?;
        let dest = dir.join(c.to_string());
        if !dest.is_dir() {
            let tmp = dir.join(format!(".tmp-{c}"));
            self.repo.checkout(c, &tmp, &CheckoutOptions::default())?;
            if let Err(e) = check_tree(&tmp, r) {
                remove_tree(&tmp)?;
                return Err(e);
            }
            durable::sync_filesystem(&tmp)?;
            fs::rename(&tmp, &dest).ctx("rename into place", &dest)?;
        }
        Ok(())
    }

    /// Makes the staged commit `c` of `r` the active version; the one
    /// active before becomes the previous, and the one before that goes.
    /// Each link moves atomically: a crash between the two leaves
    /// `previous` equal to `active` (no previous, see [`Self::get`]) and
    /// an unused checkout, which the next change sweeps away.
    fn activate(&self, r: &FlatpakRef, c: &Checksum, origin: &str) -> Result<Installed> {
        let dir = self.branch_dir(r);
        durable::write_file(&dir.join("origin"), format!("{origin}\n").as_bytes(), 0o644)?;
        let name = c.to_string();
        if let Some(old) = read_link_name(&dir.join("active")).filter(|o| *o != name) {
            replace_link(&dir.join("previous"), &old)?;
        }
        replace_link(&dir.join("active"), &name)?;
        self.sweep(r)?;
        self.get(r)?
            .ok_or_else(|| Error::NotFound(format!("{r}: not active after deploying")))
    }

    /// Brings the repository's refs in line with the `active` and
    /// `previous` links of `r`, and removes checkouts neither names.
    fn sweep(&self, r: &FlatpakRef) -> Result<()> {
        let dir = self.branch_dir(r);
        remove_temporaries(&dir)?;
        let installed = self.get(r)?;
        let keep: Vec<Checksum> = installed
            .iter()
            .flat_map(|i| std::iter::once(i.commit).chain(i.previous))
            .collect();
        for (which, commit) in [
            ("active", installed.as_ref().map(|i| i.commit)),
            ("previous", installed.as_ref().and_then(|i| i.previous)),
        ] {
            let name = deploy_ref(r, which)?;
            match commit {
                Some(c) => self.repo.write_ref(&name, &c)?,
                None if self.repo.read_ref(&name)?.is_some() => self.repo.delete_ref(&name)?,
                None => {}
            }
        }
        for name in sorted_names(&dir)? {
            if let Ok(c) = Checksum::from_hex(&name)
                && !keep.contains(&c)
            {
                remove_tree(&dir.join(&name))?;
            }
        }
        Ok(())
    }

    /// Updates app `id` and its runtime (every app and runtime when `None`)
    /// from where each came; returns what was checked, changed or not.
    pub fn update(&self, id: Option<&str>, progress: &dyn Progress) -> Result<Vec<Updated>> {
        let _lock = self.lock()?;
        let all = self.list()?;
        let targets: Vec<Installed> = match id {
            None => all,
            Some(id) => {
                validate_id(id)?;
                let app = all
                    .iter()
                    .find(|i| i.kind == Kind::App && i.id == id)
                    .cloned()
                    .ok_or_else(|| Error::NotFound(format!("app {id} is not installed")))?;
                let rt = app.metadata()?.runtime;
                let mut t = vec![app];
                t.extend(all.into_iter().filter(|i| Some(i.flatpak_ref()) == rt));
                t
            }
        };
        // Runtimes first, so an updated app never starts on an older one.
        let mut targets = targets;
        targets.sort_by_key(|i| i.kind != Kind::Runtime);
        let mut out = Vec::new();
        for i in targets {
            let r = i.flatpak_ref();
            progress.step(&format!("updating {r} from {}", i.origin));
            let c = self.pull(&i.origin, &r, false, progress)?;
            if c == i.commit && r.kind == Kind::App {
                // Also mends exports a crash after an install left out.
                if let Some(now) = self.get(&r)? {
                    exports::update(&self.dir, &now)?;
                }
            }
            if c != i.commit {
                let meta = self.tree_metadata(&c)?;
                check_is(&meta, &r, &c)?;
                if let Some(rt) = &meta.runtime
                    && self.get(rt)?.is_none()
                {
                    return Err(Error::Refused(format!(
                        "{r}: its new version needs runtime {}, which is not installed: install it with the app again (strata app remove {} && strata app install {} {})",
                        rt.triple(),
                        r.id,
                        i.origin,
                        r.id
                    )));
                }
                self.stage(&r, &c)?;
                let now = self.activate(&r, &c, &i.origin)?;
                if r.kind == Kind::App {
                    exports::update(&self.dir, &now)?;
                }
            }
            out.push(Updated {
                flatpak_ref: r,
                from: i.commit,
                to: c,
            });
        }
        Ok(out)
    }

    /// Makes the version of app `id` before its last update active again
    /// (if the runtime it names is installed). `active` moves first: a
    /// crash before `previous` follows leaves the old version running
    /// without a way forward, never a broken app.
    pub fn rollback(&self, id: &str) -> Result<Updated> {
        let _lock = self.lock()?;
        let app = self.app(id)?;
        let r = app.flatpak_ref();
        let prev = app.previous.ok_or_else(|| {
            Error::NotFound(format!("app {id} has no previous version to go back to"))
        })?;
        let dir = self.branch_dir(&r);
        let meta_path = dir.join(prev.to_string()).join("metadata");
        let text = fs::read_to_string(&meta_path).ctx("read", &meta_path)?;
        let meta = metadata::parse(&text, &meta_path.display().to_string())?;
        if let Some(rt) = &meta.runtime
            && self.get(rt)?.is_none()
        {
            return Err(Error::Refused(format!(
                "the previous version of {id} needs runtime {}, which is not installed",
                rt.triple()
            )));
        }
        replace_link(&dir.join("active"), &prev.to_string())?;
        replace_link(&dir.join("previous"), &app.commit.to_string())?;
        self.sweep(&r)?;
        if let Some(now) = self.get(&r)? {
            exports::update(&self.dir, &now)?;
        }
        Ok(Updated {
            flatpak_ref: r,
            from: app.commit,
            to: prev,
        })
    }

    /// Removes app `id`, then the runtimes no installed app uses.
    pub fn remove(&self, id: &str) -> Result<Removed> {
        let _lock = self.lock()?;
        let app = self.app(id)?;
        let mut removed = Removed::default();
        exports::remove(&self.dir, id)?;
        self.remove_ref(&app)?;
        removed.refs.push(app.flatpak_ref());
        let rest = self.list()?;
        // The runtimes of every app's active and previous versions; if one
        // cannot be read, every runtime stays.
        let mut used: Vec<FlatpakRef> = Vec::new();
        let mut unknown = false;
        for i in rest.iter().filter(|i| i.kind == Kind::App) {
            let dir = self.branch_dir(&i.flatpak_ref());
            for c in std::iter::once(i.commit).chain(i.previous) {
                let p = dir.join(c.to_string()).join("metadata");
                match fs::read_to_string(&p)
                    .ok()
                    .and_then(|t| metadata::parse(&t, "").ok())
                {
                    Some(m) => used.extend(m.runtime),
                    None => unknown = true,
                }
            }
        }
        for rt in rest.iter().filter(|i| i.kind == Kind::Runtime) {
            if !unknown && !used.contains(&rt.flatpak_ref()) {
                self.remove_ref(rt)?;
                removed.refs.push(rt.flatpak_ref());
            }
        }
        Ok(removed)
    }

    /// Removes one installed ref: `active` first (it is then not
    /// installed, whatever happens next), its checkouts, its refs.
    fn remove_ref(&self, i: &Installed) -> Result<()> {
        let r = i.flatpak_ref();
        let dir = self.branch_dir(&r);
        let active = dir.join("active");
        fs::remove_file(&active).ctx("remove", &active)?;
        durable::sync_dir(&dir)?;
        self.remove_branch_dir(&r)?;
        for which in ["active", "previous"] {
            let name = deploy_ref(&r, which)?;
            if self.repo.read_ref(&name)?.is_some() {
                self.repo.delete_ref(&name)?;
            }
        }
        let remote_ref = RefName::parse(&format!("{}:{r}", i.origin))?;
        if self.repo.read_ref(&remote_ref)?.is_some() {
            self.repo.delete_ref(&remote_ref)?;
        }
        Ok(())
    }

    /// Removes `r`'s directory, and its arch and ID directories when
    /// nothing else is in them.
    fn remove_branch_dir(&self, r: &FlatpakRef) -> Result<()> {
        let dir = self.branch_dir(r);
        remove_tree(&dir)?;
        for d in [dir.parent(), dir.parent().and_then(Path::parent)]
            .into_iter()
            .flatten()
        {
            if d.is_dir() && sorted_names(d)?.is_empty() {
                fs::remove_dir(d).ctx("remove", d)?;
            }
        }
        Ok(())
    }
}

/// Checks that metadata found in commit `c` describes `r`.
fn check_is(meta: &Metadata, r: &FlatpakRef, c: &Checksum) -> Result<()> {
    if meta.kind != r.kind || meta.name != r.id {
        return Err(Error::BadMetadata {
            source_name: format!("commit {c} of {r}"),
            what: format!(
                "describes {} {}, not {} {}",
                meta.kind.as_str(),
                meta.name,
                r.kind.as_str(),
                r.id
            ),
        });
    }
    Ok(())
}

/// Refuses a checkout that an app must not have: `files` (or `export`,
/// `export/share`) not a real directory (a symlink would bind or export
/// the host's files), setuid, setgid or sticky bits, group- or
/// other-writable files (the checkout is on the host, outside any
/// sandbox), file capabilities. What `flatpak build-export` commits
/// never has any of these.
fn check_tree(root: &Path, r: &FlatpakRef) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let real_dir = |rel: &str, required: bool| -> Result<()> {
        match fs::symlink_metadata(root.join(rel)) {
            Ok(m) if m.is_dir() => Ok(()),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            _ => Err(Error::Refused(format!(
                "{r}: {rel} is not a directory (a Flatpak app or runtime has files/, and export/ and export/share only as directories)"
            ))),
        }
    };
    real_dir("files", true)?;
    real_dir("export", false)?;
    real_dir("export/share", false)?;
    let refuse = |p: &Path, why: &str| {
        Error::Refused(format!(
            "{r}: {} {why}, which apps may not have",
            p.strip_prefix(root).unwrap_or(p).display()
        ))
    };
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).ctx("read directory", &dir)? {
            let e = e.ctx("read directory", &dir)?;
            let p = e.path();
            // Not following symlinks.
            let m = e.metadata().ctx("stat", &p)?;
            if m.file_type().is_symlink() {
                continue;
            }
            if m.mode() & 0o6000 != 0 {
                return Err(refuse(&p, "is setuid or setgid"));
            }
            if m.mode() & 0o1022 != 0 {
                return Err(refuse(&p, "is writable by group or others (or sticky)"));
            }
            let mut none: [u8; 0] = [];
            if m.is_file()
                && rustix::fs::lgetxattr(&p, "security.capability", &mut none[..]).is_ok()
            {
                return Err(refuse(&p, "has file capabilities"));
            }
            if m.is_dir() {
                stack.push(p);
            }
        }
    }
    Ok(())
}

fn sorted_names(dir: &Path) -> Result<Vec<String>> {
    let list = match fs::read_dir(dir) {
        Ok(l) => l,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).ctx("read directory", dir),
    };
    let mut names: Vec<String> = list
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    Ok(names)
}

/// Removes `.tmp-*` checkouts and `.link-*` symlinks an interrupted
/// change left in `dir`.
fn remove_temporaries(dir: &Path) -> Result<()> {
    for e in fs::read_dir(dir).ctx("read directory", dir)?.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(".tmp-") {
            remove_tree(&e.path())?;
        } else if name.starts_with(".link-") {
            fs::remove_file(e.path()).ctx("remove", e.path())?;
        }
    }
    Ok(())
}

/// Removes `p` whatever its depth (an app's files come from a server).
fn remove_tree(p: &Path) -> Result<()> {
    Ok(strata_store::remove::remove_tree(p)?)
}

fn short(c: &Checksum) -> String {
    c.to_string()[..12].to_owned()
}
