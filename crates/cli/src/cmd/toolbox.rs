//! `strata toolbox …`: mutable containers in podman, made from the OS's
//! own commit by default.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_oci::Compression;
use strata_store::{Checksum, Repo};
use strata_sysroot::Sysroot;
use strata_toolbox::{DEFAULT_NAME, ExecOptions, Host, Toolboxes, spec, validate_name};

use crate::args::{
    ToolboxCreateArgs, ToolboxEnterArgs, ToolboxListArgs, ToolboxRmArgs, ToolboxRunArgs,
};
use crate::time::format_human;

/// Where an image is exported before podman loads it: podman's own
/// temporary directory, on disk rather than in memory.
const EXPORT_TMP: &str = "/var/tmp";

fn name(n: &Option<String>) -> &str {
    n.as_deref().unwrap_or(DEFAULT_NAME)
}

fn host() -> Result<Host> {
    Ok(Host::current(crate::nofile_soft())?)
}

fn exit(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

pub fn create(
    root: &Path,
    repo: &dyn Fn() -> Result<Repo>,
    a: &ToolboxCreateArgs,
) -> Result<ExitCode> {
    let name = name(&a.name);
    validate_name(name)?;
    let tb = Toolboxes::open()?;
    let host = host()?;
    let image = match &a.image {
        Some(image) => image.clone(),
        None => {
            let repo = repo()?;
            let commit = match &a.from {
                Some(rev) => repo.resolve_rev(rev)?,
                None => booted_commit(root)?,
            };
            os_image(&tb, &repo, &commit)?
        }
    };
    eprintln!("strata: creating toolbox {name} from {image}");
    tb.create(name, &image, &host)
        .with_context(|| format!("creating toolbox {name} from {image}"))?;
    println!("created toolbox {name}; enter it with: strata toolbox enter {name}");
    Ok(ExitCode::SUCCESS)
}

/// The booted deployment's commit, or an error that says what to do.
fn booted_commit(root: &Path) -> Result<Checksum> {
    let booted = if root.exists() {
        Sysroot::open(root)?.booted()
    } else {
        None
    };
    booted.map(|d| d.commit).context(
        "this machine is not booted into a strata deployment, so there is no OS commit to \
         make the toolbox from: pass --from REV (a commit of --repo) or --image IMAGE",
    )
}

/// The name of podman's image of `commit`, exported and loaded first when
/// podman does not have it.
fn os_image(tb: &Toolboxes, repo: &Repo, commit: &Checksum) -> Result<String> {
    let tag = strata_oci::default_tag(commit);
    let image = format!("localhost/{tag}");
    if tb.podman().image_exists(&image)? {
        return Ok(image);
    }
    let short = &commit.to_hex()[..12];
    eprintln!("strata: exporting commit {short} as an image for podman");
    let tmp = Scratch::new()?;
    let dir = tmp.0.join("image");
    let opts = super::export::options(repo, commit, &tag, Compression::None)?;
    if let Err(e) = strata_oci::export_dir(repo, commit, &dir, &opts) {
        let denied = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(|io| io.kind() == std::io::ErrorKind::PermissionDenied)
            || e.to_string().contains("Permission denied");
        if denied {
            return Err(anyhow::Error::new(e).context(format!(
                "commit {short} has files only root may read, so only root can export it; \
                 run once: sudo strata export {commit} --oci-archive ~/strata-os.tar \
                 --compression none && sudo chown \"$USER\" ~/strata-os.tar, then: \
                 strata toolbox create --image oci-archive:$HOME/strata-os.tar"
            )));
        }
        return Err(anyhow::Error::new(e).context(format!("exporting commit {commit}")));
    }
    eprintln!("strata: loading it into podman as {image}");
    tb.podman()
        .load_oci_dir(&dir, &image)
        .with_context(|| format!("loading the image of commit {commit} into podman"))?;
    Ok(image)
}

/// A directory in [`EXPORT_TMP`], removed when dropped. Its name is
/// lowercase: podman names an image pulled from a directory after its path,
/// and image names may not have capitals (which `tempfile`'s names have).
struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir =
            Path::new(EXPORT_TMP).join(format!("strata-toolbox-{}-{nanos:x}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Best effort: a leftover in /var/tmp is removed by systemd-tmpfiles.
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `cmd` in the toolbox on the caller's terminal; its exit status.
fn exec(name: &Option<String>, root: bool, cmd: &[String]) -> Result<ExitCode> {
    let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let opts = ExecOptions { root, tty };
    let code = Toolboxes::open()?.run(self::name(name), &host()?, opts, cmd)?;
    Ok(exit(code))
}

pub fn enter(a: &ToolboxEnterArgs) -> Result<ExitCode> {
    exec(&a.name, a.root, &spec::shell_command())
}

pub fn run(a: &ToolboxRunArgs) -> Result<ExitCode> {
    exec(&a.name, a.root, &a.cmd)
}

pub fn list(a: &ToolboxListArgs) -> Result<ExitCode> {
    let list = Toolboxes::open()?.list()?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    if list.is_empty() {
        println!("no toolboxes; make one with: strata toolbox create");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} {:<8} {:<26} IMAGE", "NAME", "STATE", "CREATED");
    for t in list {
        let image = match &t.commit {
            Some(c) => format!("strata commit {}", c.chars().take(12).collect::<String>()),
            None => t.image.clone(),
        };
        let created = u64::try_from(t.created)
            .map(format_human)
            .unwrap_or_default();
        println!("{:<20} {:<8} {:<26} {image}", t.name, t.state, created);
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rm(a: &ToolboxRmArgs) -> Result<ExitCode> {
    let tb = Toolboxes::open()?;
    for name in &a.names {
        tb.remove(name, a.force)?;
        println!("removed toolbox {name}");
    }
    Ok(ExitCode::SUCCESS)
}
