//! A sysroot: the physical root of a machine (or a directory standing in
//! for one) holding the repository, the deployments and the shared state.
//!
//! ```text
//! <sysroot>/
//!   strata/sysroot.conf                       [sysroot] esp=…, root-karg=…
//!   strata/repo/                              bare repository
//!   strata/deploy/<stateroot>/<commit>.<serial>/          a deployment
//!   strata/deploy/<stateroot>/<commit>.<serial>.origin    its origin
//!   strata/deploy/<stateroot>/.staging-*                  being deployed
//!   strata/state/<stateroot>/var/             /var, shared by the stateroot's deployments
//!   strata/failed/<commit>                    a commit that failed to boot (the denylist)
//!   strata/finalize-failure                   the last finalize of a staged deployment failed
//!   run/strata-booted                         (directory sysroots) the booted deployment
//!   run/strata/staged                         (directory sysroots) the staged deployment
//! ```

use std::fs;
use std::path::{Path, PathBuf};

use strata_boot::esp::Esp;
use strata_store::config::Config;
use strata_store::error::IoContext;
use strata_store::{Repo, RepoMode, durable};

use crate::deployment::DeploymentId;
use crate::error::{Error, Result};
use crate::origin::Origin;

/// Written by `strata-prepare-root` at boot: the booted deployment's path.
pub const BOOTED_MARKER: &str = "run/strata-booted";
/// The sysroot's configuration, relative to its root.
const CONF: &str = "strata/sysroot.conf";
/// The sysroot's repository, relative to its root.
const REPO: &str = "strata/repo";
/// Where a booted strata machine mounts its physical root (the sysroot).
const BOOTED_SYSROOT: &str = "/sysroot";

/// Removes the file at `path` if it is there; with `sync`, the removal
/// is durable (its directory fsynced) before this returns.
pub(crate) fn remove_if_present(path: &Path, sync: bool) -> Result<()> {
    match fs::remove_file(path) {
        Ok(()) if sync => match path.parent() {
            Some(dir) => Ok(durable::sync_dir(dir)?),
            None => Ok(()),
        },
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Ok(Err(e).io_ctx("remove", path)?),
    }
}

/// An opened sysroot (layout in the module docs). The operations on it
/// (deploy, upgrade, rollback, cleanup, status…) are its methods, each in
/// its own module.
pub struct Sysroot {
    root: PathBuf,
    repo: Repo,
    esp: Esp,
    root_karg: String,
    relayer: Option<Box<dyn crate::upgrade::Relayer>>,
}

impl Sysroot {
    /// Creates the layout. `esp` defaults to `<sysroot>/efi` (a plain
    /// directory for a directory sysroot); `root_karg` names the root
    /// filesystem on the kernel command line (e.g. `root=UUID=…`).
    pub fn init(root: &Path, esp: Option<&Path>, root_karg: Option<&str>) -> Result<Sysroot> {
        Self::init_with_esp(root, esp, root_karg, None)
    }

    /// Like [`Sysroot::init`], with the ESP at `esp_now` for this process
    /// (an installer has it mounted elsewhere than the machine will).
    pub fn init_with_esp(
        root: &Path,
        esp: Option<&Path>,
        root_karg: Option<&str>,
        esp_now: Option<&Path>,
    ) -> Result<Sysroot> {
        let conf = root.join(CONF);
        if conf.exists() {
            return Err(Error::AlreadyInitialized {
                path: root.to_owned(),
            });
        }
        for d in ["strata/deploy", "strata/state"] {
            let p = root.join(d);
            fs::create_dir_all(&p).io_ctx("create", &p)?;
        }
        let repo_path = root.join(REPO);
        if !repo_path.join("config").exists() {
            Repo::init(&repo_path, RepoMode::Bare)?;
        }
        let mut c = Config::default();
        let esp_text = esp
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "efi".into());
        c.set("sysroot", "esp", &esp_text);
        c.set("sysroot", "root-karg", root_karg.unwrap_or("rw"));
        durable::write_file(&conf, c.to_string().as_bytes(), 0o644)?;
        let s = Sysroot::open_with_esp(root, esp_now)?;
        s.esp.ensure_layout()?;
        Ok(s)
    }

    /// Opens the sysroot at `root`, with the ESP where its config says.
    pub fn open(root: &Path) -> Result<Sysroot> {
        Self::open_with_esp(root, None)
    }

    /// Opens the sysroot with the ESP at `esp_now` instead of where the
    /// config says (installers, and `--esp`).
    pub fn open_with_esp(root: &Path, esp_now: Option<&Path>) -> Result<Sysroot> {
        let conf_path = root.join(CONF);
        let text = fs::read_to_string(&conf_path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::NotASysroot {
                    path: root.to_owned(),
                }
            } else {
                Error::Store(strata_store::Error::Io {
                    action: "read",
                    path: conf_path.clone(),
                    source: e,
                })
            }
        })?;
        let c = Config::parse(&text).map_err(|why| Error::BadConfig {
            path: conf_path.clone(),
            why,
        })?;
        let configured = PathBuf::from(c.get("sysroot", "esp").unwrap_or("efi"));
        let esp = match esp_now {
            Some(p) => p.to_owned(),
            None if configured.is_absolute() => configured,
            None => root.join(configured),
        };
        Ok(Sysroot {
            root: root.to_owned(),
            repo: Repo::open(&root.join(REPO))?,
            esp: Esp::new(&esp),
            root_karg: c.get("sysroot", "root-karg").unwrap_or("rw").to_owned(),
            relayer: None,
        })
    }

    /// Gives upgrades the way to build layered packages again on a new
    /// base (see [`crate::upgrade::Relayer`]); without one, upgrading a
    /// deployment with layered packages is refused.
    pub fn set_relayer(&mut self, relayer: Box<dyn crate::upgrade::Relayer>) {
        self.relayer = Some(relayer);
    }

    /// The relayer given by [`Sysroot::set_relayer`].
    pub fn relayer(&self) -> Option<&dyn crate::upgrade::Relayer> {
        self.relayer.as_deref()
    }

    /// The sysroot's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The repository, `strata/repo`.
    pub fn repo(&self) -> &Repo {
        &self.repo
    }
    /// The repository, to change its config (remotes).
    pub fn repo_mut(&mut self) -> &mut Repo {
        &mut self.repo
    }
    /// The EFI system partition (mounted, or a plain directory).
    pub fn esp(&self) -> &Esp {
        &self.esp
    }
    /// The kernel arguments that name the root filesystem (`root=UUID=… rw`;
    /// just `rw` for a directory sysroot), put in every boot entry.
    pub fn root_karg(&self) -> &str {
        &self.root_karg
    }

    /// Where the deployments of `stateroot` live.
    pub fn deploy_dir(&self, stateroot: &str) -> PathBuf {
        self.root.join("strata/deploy").join(stateroot)
    }

    /// The directory of deployment `id`.
    pub fn deployment_path(&self, id: &DeploymentId) -> PathBuf {
        self.deploy_dir(&id.stateroot).join(id.dir_name())
    }

    /// The origin file of deployment `id`, beside its directory.
    pub fn origin_path(&self, id: &DeploymentId) -> PathBuf {
        self.deploy_dir(&id.stateroot)
            .join(format!("{}.origin", id.dir_name()))
    }

    /// The `/var` shared by the deployments of `stateroot`.
    pub fn state_var(&self, stateroot: &str) -> PathBuf {
        self.root.join("strata/state").join(stateroot).join("var")
    }

    /// Reads the origin of deployment `id`; a missing file reads as the
    /// default (follows nothing, no kernel arguments).
    pub fn load_origin(&self, id: &DeploymentId) -> Result<Origin> {
        let p = self.origin_path(id);
        match fs::read_to_string(&p) {
            Ok(t) => Origin::parse(&t).map_err(|why| Error::BadOrigin { path: p, why }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Origin::default()),
            Err(e) => Err(strata_store::Error::Io {
                action: "read",
                path: p,
                source: e,
            }
            .into()),
        }
    }

    /// The sysroot to work on when none is given: `/sysroot` on a booted
    /// strata machine (where `/` is the deployment and the physical root
    /// is mounted at `/sysroot`), else `/`.
    pub fn default_root() -> PathBuf {
        let booted = Path::new("/").join(BOOTED_MARKER).exists()
            && Path::new(BOOTED_SYSROOT).join(CONF).exists();
        PathBuf::from(if booted { BOOTED_SYSROOT } else { "/" })
    }

    /// The repository of the sysroot at `root`, if it has one: what
    /// repository commands work on when no repository is given.
    pub fn repo_path(root: &Path) -> Option<PathBuf> {
        let repo = root.join(REPO);
        repo.join("config").exists().then_some(repo)
    }

    /// The generation a new boot entry gets: one past the highest on the
    /// ESP (bad entries included), so it becomes the default; 1 on an
    /// empty ESP.
    pub(crate) fn next_generation(&self) -> Result<u64> {
        Ok(self
            .esp()
            .entries()?
            .iter()
            .map(|(n, _)| n.generation + 1)
            .max()
            .unwrap_or(1))
    }

    /// The machine's settings (`/etc/strata/strata.conf`): those of the
    /// booted deployment, else of the default; the defaults when neither
    /// has the file.
    pub fn settings(&self) -> Result<crate::settings::Settings> {
        let current = match self.booted() {
            Some(b) => Some(b),
            None => crate::status::entries_by_deployment(self)?
                .into_iter()
                .next()
                .map(|(id, ..)| id),
        };
        match current {
            Some(id) => crate::settings::Settings::load(&self.deployment_path(&id)),
            None => Ok(crate::settings::Settings::default()),
        }
    }

    /// The booted deployment: from `<sysroot>/run/strata-booted`, or, when
    /// this sysroot is the running system's, from `/run/strata-booted`.
    pub fn booted(&self) -> Option<DeploymentId> {
        let mut candidates = vec![self.root.join(BOOTED_MARKER)];
        if self.is_running_system() {
            candidates.push(Path::new("/").join(BOOTED_MARKER));
        }
        candidates
            .iter()
            .find_map(|p| fs::read_to_string(p).ok())
            .and_then(|t| DeploymentId::parse_rel_path(t.trim()))
    }

    /// Whether this sysroot is the physical root of the running machine
    /// (`/sysroot` on a booted strata machine, or `/`).
    pub fn is_running_system(&self) -> bool {
        let canonical = fs::canonicalize(&self.root).ok();
        canonical
            .as_deref()
            .is_some_and(|c| c == Path::new("/") || c == Path::new(BOOTED_SYSROOT))
            && Path::new("/").join(BOOTED_MARKER).exists()
    }

    /// Deployment directories present on disk (staging leftovers excluded).
    pub fn deployments_on_disk(&self) -> Result<Vec<DeploymentId>> {
        let base = self.root.join("strata/deploy");
        let mut out = Vec::new();
        let Ok(stateroots) = fs::read_dir(&base) else {
            return Ok(out);
        };
        for sr in stateroots {
            let sr = sr.io_ctx("list", &base)?;
            let stateroot = sr.file_name().to_string_lossy().into_owned();
            let Ok(list) = fs::read_dir(sr.path()) else {
                continue;
            };
            for e in list {
                let e = e.io_ctx("list", sr.path())?;
                let name = e.file_name().to_string_lossy().into_owned();
                if name.ends_with(".origin") || name.starts_with('.') {
                    continue;
                }
                if let Some(mut id) = DeploymentId::parse_dir_name(&name) {
                    id.stateroot = stateroot.clone();
                    out.push(id);
                }
            }
        }
        out.sort();
        Ok(out)
    }
}
