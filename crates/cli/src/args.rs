//! Command-line arguments, as clap derives them.

// The doc comments here are the terminal help text, so they keep `<kver>`
// and bare URLs as a user should read them, not as rustdoc would like.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use strata_store::{Checksum, RepoMode};

/// strata: image-based, atomic OS updates with an OSTree-compatible store.
///
/// Every repository command takes `--repo PATH` (or the STRATA_REPO
/// environment variable). A revision (REV) is a ref (`os/stable`,
/// `remote:os/stable`), a full checksum, a unique checksum prefix, or any
/// of these followed by `^` for the parent commit.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about, long_about)]
pub struct Cli {
    /// The repository to work on.
    #[arg(long, global = true, env = "STRATA_REPO", value_name = "PATH")]
    pub repo: Option<PathBuf>,

    /// The machine's physical root (or a directory standing in for one).
    /// Default: /sysroot on a booted strata machine, / otherwise.
    #[arg(long, global = true, env = "STRATA_SYSROOT", value_name = "DIR")]
    pub sysroot: Option<PathBuf>,

    /// The stateroot: deployments of one OS that share /var.
    #[arg(
        long,
        global = true,
        env = "STRATA_STATEROOT",
        default_value = "default",
        value_name = "NAME"
    )]
    pub stateroot: String,

    /// Show more of what happens, on stderr (repeatable: -v info, -vv
    /// debug, -vvv trace). RUST_LOG, when set, decides instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum SysrootCommand {
    /// Create the layout: a bare repository, deploy and state folders, the ESP folders.
    Init(SysrootInitArgs),
}

#[derive(Debug, Args)]
pub struct SysrootInitArgs {
    /// Where the EFI system partition is (relative paths are inside the sysroot).
    #[arg(long, value_name = "DIR")]
    pub esp: Option<PathBuf>,
    /// Kernel arguments that name the root filesystem (e.g. "root=UUID=… rw").
    #[arg(long, value_name = "ARGS")]
    pub root_karg: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository.
    Init(InitArgs),
    /// Store a directory or tarball as a new commit and move a branch to it.
    ///
    /// Prints the new commit's checksum. The same tree and metadata give the
    /// same checksum as `ostree commit`.
    ///
    /// Example: strata commit --repo repo -b os/stable -s "v1" --tree rootfs/
    Commit(CommitArgs),
    /// Check a commit out into a directory (hardlinks from bare repositories).
    Checkout(CheckoutArgs),
    /// Write a commit as an OCI image, for podman, docker or a registry.
    ///
    /// One layer: the commit's tree with `/usr/etc` at `/etc`, and `/var`
    /// as the commit's first boot would fill it (its tmpfiles.d lines). The
    /// same commit gives the same bytes, so the same digests.
    ///
    /// Examples:
    ///   strata export os/stable --oci ./image && podman pull oci:./image
    ///   strata export os/stable --oci-archive os.tar && podman load -i os.tar
    ///   echo 'FROM oci-archive:os.tar' > Containerfile && podman build .
    Export(ExportArgs),
    /// Print the checksum a revision names.
    RevParse(RevArgs),
    /// Show the history of a commit, newest first.
    Log(RevArgs),
    /// List a directory of a commit (mode, uid, gid, size, path).
    Ls(LsArgs),
    /// Print the content of a file in a commit (symlinks inside the commit are followed).
    Cat(CatArgs),
    /// Show a commit: checksums, date, subject, body and metadata.
    Show(ShowArgs),
    /// Show which paths differ between two commits (A added, D deleted, M modified).
    Diff(DiffArgs),
    /// List refs, or delete one.
    Refs(RefsArgs),
    /// Verify every object's checksum and that every commit is complete.
    Fsck(FsckArgs),
    /// Make an ed25519 key pair: the secret key goes to FILE, the public key to stdout.
    Keygen(KeygenArgs),
    /// Sign a commit (adds to its detached metadata).
    Sign(SignArgs),
    /// Write the summary file that lists the repository's branches for pulls.
    Summary(SummaryArgs),
    /// Manage remotes.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Fetch a ref from a remote, verified, into refs/remotes/REMOTE/REF.
    ///
    /// Only missing objects are fetched; every object is checked against its
    /// checksum, the commit against the remote's keys and its ref binding.
    Pull(PullArgs),
    /// Serve the repository over HTTP for development (use nginx in production).
    Serve(ServeArgs),
    /// Manage the sysroot.
    #[command(subcommand)]
    Sysroot(SysrootCommand),
    /// Make a plain root filesystem (a debootstrap tree) bootable, in place.
    ///
    /// Moves the kernel and initramfs to usr/lib/modules/<kver>/, /etc to
    /// /usr/etc, empties /var (recreated at boot by tmpfiles.d), installs
    /// strata and its initramfs hook, and rebuilds the initramfs in the tree.
    /// Then commit it with `strata commit --bootable`.
    PrepareTree(PrepareTreeArgs),
    /// Install onto a disk (image file or block device): GPT, ESP with
    /// systemd-boot, ext4 root holding the sysroot, and the first deployment.
    ///
    /// Example: strata install --disk vm.img --size 8G --repo repo --ref os/stable
    Install(InstallArgs),
    /// Deploy a commit (REV, or REMOTE:REF pulled first) as the new default.
    ///
    /// A hardlink checkout with /etc merged from the current deployment, its
    /// kernel copied to the ESP, and a boot entry that makes it the default.
    /// The previous default stays as the rollback target.
    Deploy(DeployArgs),
    /// Show the deployments: booted, default, rollback.
    Status(StatusArgs),
    /// Pull what the current deployment follows and deploy it if new.
    Upgrade(UpgradeArgs),
    /// Follow another ref (REMOTE:REF) and deploy it.
    Switch(SwitchArgs),
    /// Make the previous deployment the default again.
    Rollback,
    /// Remove deployments other than the booted, default and rollback ones,
    /// unused kernels on the ESP, and objects nothing needs.
    Cleanup,
    /// Show how /etc differs from the deployment's defaults (A/M/D).
    EtcDiff,
    /// Show or change the kernel arguments of the default deployment.
    Kargs(KargsArgs),
    /// Add Debian packages to the image as a layer, kept across upgrades.
    ///
    /// The packages are installed with the image's own apt and dpkg into a
    /// new local commit (the base plus the packages, maintainer scripts
    /// confined by bubblewrap without network), deployed like any other:
    /// it runs after a reboot, and `strata rollback` goes back. Every
    /// `strata upgrade` installs them again on the new base.
    ///
    /// Example: strata layer add htop ./tool_1.0_amd64.deb --apply-live
    #[command(subcommand)]
    Layer(LayerCommand),
    /// Make /usr writable until the next boot: an overlay whose changes
    /// vanish at reboot (as `ostree admin unlock`), for quick experiments
    /// such as `apt-get install` on the running system.
    #[command(alias = "unlock")]
    UsrOverlay,
    /// Run the health checks; at boot (`--boot`), also judge the boot.
    ///
    /// Checks are executables in /usr/lib/strata/health.d/ and
    /// /etc/strata/health.d/, in required.d/ (a failure fails the boot) and
    /// wanted.d/ (reported only), each with `[health] timeout` from
    /// /etc/strata/strata.conf. strata-health.service runs
    /// `strata health-check --boot` before boot-complete.target on every
    /// boot: it first notices a fallback from a deployment whose tries ran
    /// out and records it as failed; then, if a required check fails while
    /// the booted entry is on trial, it records why, marks the entry bad
    /// (systemd-bless-boot bad) and reboots (`[health] reboot`), so the
    /// machine falls back to the previous deployment.
    HealthCheck(HealthCheckArgs),
    /// Finish the staged deployment: merge /etc, install its kernel, write
    /// its boot entry.
    ///
    /// strata-finalize-staged.service runs this at shutdown, after
    /// `strata upgrade --stage`; by hand it makes the staged deployment the
    /// default now. With --check, only report a finalize that failed
    /// (exit 1).
    FinalizeStaged(FinalizeStagedArgs),
    /// One run of the unattended updater (strata-update.service).
    ///
    /// `[update] policy` in /etc/strata/strata.conf decides: none, check
    /// (fetch and verify the new commit object only), download (pull it),
    /// stage (stage it: finalized at the next shutdown) or apply (stage it
    /// and reboot). apply reboots only inside the window (window-days,
    /// window-start, window-minutes; UTC), not while a shutdown inhibitor
    /// is held, and waits up to session-wait for logged-in users. Nothing
    /// happens until the booted deployment is blessed; a commit that failed
    /// to boot here is never taken. `strata status` shows the last run.
    AutoUpdate,
    /// Remove objects no ref (or commit) reaches.
    Prune(PruneArgs),
    /// Sandboxed apps in Flatpak's format, from the same repository as the
    /// OS and verified as it is.
    ///
    /// Apps and their runtimes are pulled from a configured remote (strata
    /// remote add) into the machine's repository, so their files equal to
    /// the OS's are the same objects, and checked out under
    /// /var/lib/strata/apps (untouched by OS upgrades and rollbacks). Each
    /// runs in bubblewrap with the runtime at /usr and the app at /app,
    /// read-only, its own PID and IPC namespaces, no network unless its
    /// metadata says shared=network, none of the host's files but what
    /// filesystems= grants, its data in ~/.var/app/ID, and a seccomp
    /// filter blocking what Flatpak blocks.
    ///
    /// Example: strata app install apps org.example.Hello && strata app run org.example.Hello
    #[command(subcommand)]
    App(AppCommand),
    /// Toolboxes: a mutable Debian in a podman container, for everything
    /// the image does not have (compilers, debuggers, `apt-get install`).
    ///
    /// A toolbox is you, in a container: your user, uid, home and shell;
    /// the host's network, devices, /tmp and $XDG_RUNTIME_DIR; the host's /
    /// at /run/host; /etc/hosts, resolv.conf and localtime following the
    /// host's. Its image is the booted OS's own commit (exported with
    /// `strata export` and loaded into podman, no registry needed), or any
    /// image podman has. It lives in podman's storage in /var, so it
    /// survives reboots, upgrades and rollbacks; the host's /usr is never
    /// touched.
    ///
    /// Needs podman (Debian: apt-get install podman); rootless podman also
    /// needs uidmap and entries in /etc/subuid and /etc/subgid.
    ///
    /// Example: strata toolbox create && strata toolbox enter
    #[command(subcommand)]
    Toolbox(ToolboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Install an app and the runtime it names from a remote.
    Install(AppInstallArgs),
    /// Run an installed app in its sandbox.
    Run(AppRunArgs),
    /// List installed apps and runtimes.
    List(AppListArgs),
    /// Update an app and its runtime (all when no ID is given); the old
    /// version runs until the new one is complete, and stays for rollback.
    Update(AppUpdateArgs),
    /// Make the version before an app's last update active again.
    Rollback(AppIdArgs),
    /// Remove an app, and the runtimes no other app uses.
    Remove(AppIdArgs),
    /// An app's permissions, sizes, commits and runtime.
    Info(AppInfoArgs),
    /// Commit an app or runtime directory (metadata, files/, export/) as
    /// Flatpak's `build-export` does, to app/ID/ARCH/BRANCH or
    /// runtime/ID/ARCH/BRANCH in --repo; then sign it and update the
    /// summary to serve it, to strata and to flatpak alike.
    Publish(AppPublishArgs),
}

#[derive(Debug, Args)]
pub struct AppInstallArgs {
    /// A configured remote (strata remote add).
    pub remote: String,
    /// The app's ID, as org.example.Hello.
    pub id: String,
    /// The branch; default: the remote's only branch of the app.
    pub branch: Option<String>,
}

#[derive(Debug, Args)]
pub struct AppRunArgs {
    /// Run this command instead of the metadata's command=.
    #[arg(long, value_name = "CMD")]
    pub command: Option<String>,
    /// The app's ID.
    pub id: String,
    /// Arguments for the command.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum ToolboxCommand {
    /// Make a toolbox (default name: strata).
    ///
    /// Examples:
    ///   strata toolbox create                      # from the booted commit
    ///   strata toolbox create dev --from os/stable # from any commit
    ///   strata toolbox create deb --image docker.io/library/debian:12
    Create(ToolboxCreateArgs),
    /// Open a login shell in a toolbox (started if it is stopped).
    Enter(ToolboxEnterArgs),
    /// Run a command in a toolbox; exits with the command's status.
    ///
    /// Example: strata toolbox run dev -- make -j2
    Run(ToolboxRunArgs),
    /// List the toolboxes.
    List(ToolboxListArgs),
    /// Remove toolboxes (with what was installed in them).
    Rm(ToolboxRmArgs),
}

#[derive(Debug, Args)]
pub struct ToolboxCreateArgs {
    /// Its name: letters, digits, '_', '.', '-'.
    pub name: Option<String>,
    /// Make it from this commit (a ref or checksum of --repo, or of the
    /// sysroot's repository) instead of the booted one.
    #[arg(long, value_name = "REV", conflicts_with = "image")]
    pub from: Option<String>,
    /// Make it from this image, which podman has or can pull
    /// (`oci-archive:FILE` takes a `strata export --oci-archive`).
    #[arg(long, value_name = "IMAGE")]
    pub image: Option<String>,
}

#[derive(Debug, Args)]
pub struct ToolboxEnterArgs {
    /// The toolbox (default: strata).
    pub name: Option<String>,
    /// As root instead of as yourself.
    #[arg(long)]
    pub root: bool,
}

#[derive(Debug, Args)]
pub struct ToolboxRunArgs {
    /// The toolbox (default: strata).
    pub name: Option<String>,
    /// As root instead of as yourself.
    #[arg(long)]
    pub root: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ToolboxListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ToolboxRmArgs {
    /// The toolboxes.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Remove running ones too.
    #[arg(long, short)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct AppListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppUpdateArgs {
    /// The app's ID; default: every app and runtime.
    pub id: Option<String>,
}

#[derive(Debug, Args)]
pub struct AppIdArgs {
    /// The app's ID.
    pub id: String,
}

#[derive(Debug, Args)]
pub struct AppInfoArgs {
    /// The app's ID.
    pub id: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AppPublishArgs {
    /// The app or runtime directory.
    pub dir: PathBuf,
    /// The branch.
    #[arg(long, default_value = "stable")]
    pub branch: String,
    /// The arch; default: this machine's.
    #[arg(long)]
    pub arch: Option<String>,
    /// The commit's subject.
    #[arg(short, long)]
    pub subject: Option<String>,
    /// The commit's time (RFC 3339, or seconds since the epoch).
    #[arg(long, value_parser = crate::time::parse_timestamp)]
    pub timestamp: Option<u64>,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// How objects are stored: bare (real owners, hardlink checkouts; needs
    /// root), bare-user (owners kept in an xattr) or archive (compressed,
    /// for serving over HTTP; `archive-z2` is the same).
    // Parsed by RepoMode's FromStr, whose error names the accepted modes.
    #[arg(long, default_value = "bare")]
    pub mode: RepoMode,
}

#[derive(Debug, Args)]
pub struct CheckoutArgs {
    pub rev: String,
    pub dest: PathBuf,
    /// Check out only this path of the commit.
    #[arg(long)]
    pub subpath: Option<String>,
    /// Copy files instead of hardlinking them.
    #[arg(long)]
    pub copy: bool,
    /// Write into an existing, non-empty DEST, replacing what is there.
    #[arg(long)]
    pub union: bool,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("dest").required(true).args(["oci", "oci_archive"])))]
pub struct ExportArgs {
    /// The commit: a checksum, a prefix of one, or a ref.
    pub rev: String,
    /// Write an OCI image layout into this new directory.
    #[arg(long, value_name = "DIR")]
    pub oci: Option<PathBuf>,
    /// Write one tar file (an `oci-archive`), replacing what is there.
    #[arg(long, value_name = "FILE")]
    pub oci_archive: Option<PathBuf>,
    /// The name the image gets when `podman load` reads an --oci-archive
    /// (the index's `org.opencontainers.image.ref.name`): `NAME:TAG`.
    /// Default: strata:COMMIT, the name `strata toolbox create --from
    /// COMMIT` looks for, so a loaded export is not made again. (A pull
    /// from an --oci directory names the image after the directory.)
    #[arg(long, value_name = "NAME:TAG")]
    pub tag: Option<String>,
    /// How the layer is compressed: gzip (what registries expect) or none
    /// (the fastest to write and load locally).
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Print what was written as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--compression` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CompressionArg {
    /// A plain tar.
    None,
    /// gzip.
    Gzip,
}

#[derive(Debug, Args)]
pub struct RevArgs {
    pub rev: String,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    pub rev: String,
    #[arg(default_value = "/")]
    pub path: String,
    /// List subdirectories too.
    #[arg(short = 'R', long)]
    pub recursive: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    pub rev: String,
    pub path: String,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    pub rev: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    pub from: String,
    pub to: String,
}

#[derive(Debug, Args)]
pub struct RefsArgs {
    /// Delete this ref (the commits stay until `prune`).
    #[arg(long, value_name = "REF")]
    pub delete: Option<String>,
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Remove corrupt objects and mark the commits that needed them partial.
    #[arg(long)]
    pub delete: bool,
}

#[derive(Debug, Args)]
pub struct KeygenArgs {
    /// Where to write the secret key (created with mode 0600; must not exist).
    #[arg(long)]
    pub output: PathBuf,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    pub rev: String,
    /// The secret key file (from `strata keygen`).
    #[arg(long)]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// Regenerate `summary` (required; there is nothing else to do yet).
    #[arg(short, long)]
    pub update: bool,
    /// Also write `summary.sig`, signed with this secret key. Clients that
    /// verify (remotes added with a key) refuse an unsigned summary.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
    /// Clients refuse the signed summary this long from now (30m, 12h, 7d,
    /// 2w): a mirror stuck on an old summary is then noticed. Regenerate it
    /// before then (a timer that runs this command every day, with 7d).
    #[arg(long, value_name = "DURATION", requires = "sign_key", value_parser = crate::time::parse_duration)]
    pub expires_in: Option<u64>,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    pub remote: String,
    #[arg(value_name = "REF")]
    pub ref_name: String,
    /// Also fetch N parent commits.
    #[arg(long, default_value_t = 0)]
    pub depth: u32,
    /// Pull this commit instead of the ref's newest.
    #[arg(long, value_name = "CHECKSUM")]
    pub commit: Option<Checksum>,
    /// Accept a commit older than the one we have.
    #[arg(long)]
    pub allow_downgrade: bool,
    /// Connections to the server, each fetching on its own thread (over
    /// plain http://, each pipelines up to 16 requests).
    #[arg(long, default_value_t = 8, value_name = "N")]
    pub concurrency: usize,
    /// Give up on a transfer that brings fewer than the remote's
    /// stall-min-speed bytes per second (default 1000) over SECS seconds,
    /// or that waits SECS seconds for a connection or an answer. Default:
    /// the remote's stall-timeout, else 30. Raise it on a slow link; rerun
    /// a stalled pull to resume it.
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: Option<u64>,
    /// Accept a summary past the expiry its publisher signed into it, for
    /// once (an air-gapped mirror refreshed by hand). A summary that
    /// expired on a server kept up to date means the server is stale or
    /// replaying an old summary.
    #[arg(long)]
    pub allow_expired_summary: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

#[derive(Debug, Args)]
pub struct PrepareTreeArgs {
    pub dir: PathBuf,
    /// The static strata-prepare-root to install (default: beside this binary,
    /// as built by scripts/build-prepare-root).
    #[arg(long, value_name = "FILE")]
    pub prepare_root: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The disk: an image file (created or resized) or a block device.
    #[arg(long, conflicts_with = "target_sysroot")]
    pub disk: Option<PathBuf>,
    /// Size of a new image file (e.g. 8G, 512M).
    #[arg(long, default_value = "8G", value_parser = parse_size)]
    pub size: u64,
    /// Install into this mounted root filesystem instead of a disk (with --target-esp).
    #[arg(long, requires = "target_esp", value_name = "DIR")]
    pub target_sysroot: Option<PathBuf>,
    /// The mounted ESP of --target-sysroot.
    #[arg(long, value_name = "DIR")]
    pub target_esp: Option<PathBuf>,
    /// Kernel arguments naming the root for --target-sysroot (e.g. "root=UUID=… rw").
    #[arg(long, value_name = "ARGS", default_value = "rw")]
    pub root_karg: String,
    /// Take the commit from this local repository (the global --repo
    /// works too).
    #[arg(long)]
    pub source_repo: Option<PathBuf>,
    /// The URL the machine upgrades from, kept as remote `origin`; the
    /// commit is pulled from it unless --source-repo gives it.
    #[arg(long)]
    pub remote: Option<String>,
    /// The remote's public key (base64); without it, pulls are unverified.
    #[arg(long, requires = "remote", value_name = "BASE64")]
    pub sign_pubkey: Option<String>,
    /// The ref to install.
    #[arg(long = "ref", value_name = "REF")]
    pub ref_name: String,
    /// Kernel arguments (repeatable).
    #[arg(long = "karg", value_name = "ARG")]
    pub kargs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    #[arg(value_name = "REV|REMOTE:REF")]
    pub target: String,
    /// Kernel arguments for this deployment (repeatable; default: the current ones).
    #[arg(long = "karg", value_name = "ARG")]
    pub kargs: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum LayerCommand {
    /// Add packages (names apt resolves from /etc/apt's sources, or .deb
    /// files) and deploy the result.
    Add(LayerAddArgs),
    /// Remove layered packages: the base with the others, built anew.
    Remove(LayerRemoveArgs),
    /// List the layered packages of the booted (else default) deployment.
    List(LayerListArgs),
}

#[derive(Debug, Args)]
pub struct LayerAddArgs {
    /// Package names, or paths of .deb files (anything ending in .deb or
    /// holding a /).
    #[arg(required = true, value_name = "PKG|FILE.deb")]
    pub packages: Vec<String>,
    /// Also make the packages usable now, without a reboot: the new
    /// deployment's /usr is mounted over the running one's until the next
    /// boot (only when packages are added, on the running base).
    #[arg(long)]
    pub apply_live: bool,
}

#[derive(Debug, Args)]
pub struct LayerRemoveArgs {
    /// Names of layered packages.
    #[arg(required = true, value_name = "PKG")]
    pub packages: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LayerListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print JSON (versioned by its "schema" field).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct UpgradeArgs {
    /// Only say whether an update is available: fetches and verifies the
    /// new commit object, not its files (as `rpm-ostree upgrade --check`).
    #[arg(long)]
    pub check: bool,
    /// Deploy the new commit even if it failed to boot on this machine
    /// before (`strata status` shows why it failed).
    #[arg(long)]
    pub allow_failed: bool,
    /// Check the new commit out now, but merge /etc and write its boot
    /// entry at shutdown (strata-finalize-staged.service), so /etc edits
    /// made until the reboot are kept.
    #[arg(long, conflicts_with = "check")]
    pub stage: bool,
    /// Accept the remote's summary past the expiry its publisher signed
    /// into it: for an air-gapped mirror refreshed by hand (a frozen
    /// mirror would otherwise be refused).
    #[arg(long)]
    pub allow_expired_summary: bool,
}

#[derive(Debug, Args)]
pub struct FinalizeStagedArgs {
    /// Only report whether the last finalize failed (exit 1 if it did).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Args)]
pub struct HealthCheckArgs {
    /// Judge this boot (what strata-health.service does): record a
    /// fallback, and on a required failure of a trial boot mark it bad and
    /// reboot.
    #[arg(long)]
    pub boot: bool,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    pub refspec: String,
}

#[derive(Debug, Args)]
pub struct KargsArgs {
    #[arg(long, value_name = "ARG")]
    pub append: Vec<String>,
    /// Remove KEY (every KEY=…) or exactly KEY=VALUE.
    #[arg(long, value_name = "ARG")]
    pub delete: Vec<String>,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Keep only what refs reach; other commits are removed.
    #[arg(long)]
    pub refs_only: bool,
    /// Keep at most N parents of each ref's commit (-1: all).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub depth: Option<i64>,
    /// Remove commits older than this (like `30d`, `12h`, `2w`), except ref heads.
    #[arg(long, value_name = "DURATION")]
    pub keep_younger_than: Option<String>,
    /// Only print what would be removed.
    #[arg(long)]
    pub no_prune: bool,
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote. Signature verification is on unless --no-sign-verify.
    ///
    /// Example: strata remote add origin https://updates.example.com/repo --sign-pubkey BASE64
    Add(RemoteAddArgs),
    /// List remotes (name and URL).
    List(RemoteListArgs),
    /// Delete a remote (refs pulled from it stay until deleted).
    Delete(RemoteDeleteArgs),
}

#[derive(Debug, Args)]
pub struct RemoteAddArgs {
    pub name: String,
    /// http://, https:// or file:// URL of an archive repository.
    pub url: String,
    /// A trusted ed25519 public key (base64, as `strata keygen` prints).
    #[arg(long, value_name = "BASE64")]
    pub sign_pubkey: Option<String>,
    /// A file of trusted public keys, one base64 key per line.
    #[arg(long, value_name = "FILE")]
    pub sign_pubkey_file: Option<PathBuf>,
    /// A file of revoked public keys: signatures by them are refused.
    #[arg(long, value_name = "FILE")]
    pub sign_revoked_file: Option<PathBuf>,
    /// Accept unsigned commits from this remote (not recommended).
    #[arg(long, conflicts_with_all = ["sign_pubkey", "sign_pubkey_file"])]
    pub no_sign_verify: bool,
    /// Give up on a transfer from this remote that brings fewer than
    /// --stall-min-speed bytes per second over SECS seconds (kept as
    /// stall-timeout; `strata pull --stall-timeout` overrides it).
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..))]
    pub stall_timeout: u64,
    /// The slowest transfer accepted, in bytes per second averaged over the
    /// stall timeout (kept as stall-min-speed; 0: any progress at all).
    #[arg(long, default_value_t = 1000, value_name = "BYTES")]
    pub stall_min_speed: u64,
    /// Accept this remote's summary past its expiry, always (kept as
    /// summary-expiry=ignore): for an air-gapped mirror refreshed by hand.
    #[arg(long)]
    pub ignore_summary_expiry: bool,
    /// Verify commits only, not the summary (kept as
    /// sign-verify-summary=false): for a publisher who signs commits but
    /// not the summary. Refs may then come from an unsigned summary or
    /// refs/heads, which an attacker can hold back (a freeze).
    #[arg(long, conflicts_with = "no_sign_verify")]
    pub no_sign_verify_summary: bool,
}

#[derive(Debug, Args)]
pub struct RemoteListArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoteDeleteArgs {
    pub name: String,
}

#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The branch to move to the new commit.
    #[arg(short, long)]
    pub branch: String,
    /// One-line description.
    #[arg(short, long, default_value = "")]
    pub subject: String,
    /// Longer description.
    #[arg(short = 'm', long, default_value = "")]
    pub body: String,
    /// The commit time: RFC 3339 (2026-01-01T00:00:00Z) or @EPOCH-SECONDS.
    #[arg(long)]
    pub timestamp: Option<String>,
    /// Add a string to the commit metadata (repeatable, kept in order).
    #[arg(long = "add-metadata-string", value_name = "KEY=VALUE")]
    pub metadata: Vec<String>,
    /// The parent commit: a revision, or `none`. Default: the branch's head.
    #[arg(long)]
    pub parent: Option<String>,
    /// Do not record the branch in the commit (`ostree.ref-binding`).
    #[arg(long)]
    pub no_bindings: bool,
    /// Leave out device nodes, fifos and sockets instead of failing.
    #[arg(long)]
    pub skip_special: bool,
    /// Commit every file as owned by root, without setuid, setgid, sticky
    /// or group/other write bits, and without xattrs (ostree's flag of the
    /// same name; what Flatpak apps are committed with). --tree only.
    #[arg(long, conflicts_with = "tar")]
    pub canonical_permissions: bool,
    /// Commit this directory.
    #[arg(long, conflicts_with = "tar", required_unless_present = "tar")]
    pub tree: Option<PathBuf>,
    /// Commit this tarball (plain, gzip or zstd).
    #[arg(long)]
    pub tar: Option<PathBuf>,
    /// Check the tree has a kernel (usr/lib/modules/<kver>/vmlinuz) and
    /// mark the commit bootable (`ostree.bootable`, `ostree.linux`).
    #[arg(long)]
    pub bootable: bool,
    /// Sign the new commit with this secret key file.
    #[arg(long, value_name = "FILE")]
    pub sign_key: Option<PathBuf>,
}

/// Parses `8G`, `512M`, `1T` or plain bytes.
fn parse_size(s: &str) -> anyhow::Result<u64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size {s:?}: expected a number with K, M, G or T"))?;
    let mult: u64 = match unit {
        "" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        _ => anyhow::bail!("invalid size {s:?}: expected a number with K, M, G or T"),
    };
    n.checked_mul(mult)
        .ok_or_else(|| anyhow::anyhow!("invalid size {s:?}: more than 16 EiB"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8G").ok(), Some(8 << 30));
        assert_eq!(parse_size("512MiB").ok(), Some(512 << 20));
        assert_eq!(parse_size("4096").ok(), Some(4096));
        assert!(parse_size("8X").is_err());
        assert!(parse_size("").is_err());
    }

    /// Pins a fix found in review of issue 10: `--size 20000000000G`
    /// wrapped around to a small size in release builds (and panicked in
    /// debug ones); it is refused now.
    #[test]
    fn a_size_past_u64_is_refused() {
        let e = parse_size("20000000000G").expect_err("overflow");
        assert!(e.to_string().contains("more than 16 EiB"), "{e}");
    }
}
