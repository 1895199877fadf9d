//! Command-line arguments, as clap derives them.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    Init {
        /// Where the EFI system partition is (relative paths are inside the sysroot).
        #[arg(long, value_name = "DIR")]
        esp: Option<PathBuf>,
        /// Kernel arguments that name the root filesystem (e.g. "root=UUID=… rw").
        #[arg(long, value_name = "ARGS")]
        root_karg: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository.
    Init {
        /// How objects are stored: bare (real owners, hardlink checkouts; needs
        /// root), bare-user (owners kept in an xattr) or archive (compressed,
        /// for serving over HTTP; `archive-z2` is the same).
        #[arg(long, default_value = "bare")]
        mode: String,
    },
    /// Store a directory or tarball as a new commit and move a branch to it.
    ///
    /// Prints the new commit's checksum. The same tree and metadata give the
    /// same checksum as `ostree commit`.
    ///
    /// Example: strata commit --repo repo -b os/stable -s "v1" --tree rootfs/
    Commit(CommitArgs),
    /// Check a commit out into a directory (hardlinks from bare repositories).
    Checkout {
        rev: String,
        dest: PathBuf,
        /// Check out only this path of the commit.
        #[arg(long)]
        subpath: Option<String>,
        /// Copy files instead of hardlinking them.
        #[arg(long)]
        copy: bool,
        /// Write into an existing, non-empty DEST, replacing what is there.
        #[arg(long)]
        union: bool,
    },
    /// Print the checksum a revision names.
    RevParse { rev: String },
    /// Show the history of a commit, newest first.
    Log { rev: String },
    /// List a directory of a commit (mode, uid, gid, size, path).
    Ls {
        rev: String,
        #[arg(default_value = "/")]
        path: String,
        /// List subdirectories too.
        #[arg(short = 'R', long)]
        recursive: bool,
    },
    /// Print the content of a file in a commit (symlinks inside the commit are followed).
    Cat { rev: String, path: String },
    /// Show a commit: checksums, date, subject, body and metadata.
    Show {
        rev: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Show which paths differ between two commits (A added, D deleted, M modified).
    Diff { from: String, to: String },
    /// List refs, or delete one.
    Refs {
        /// Delete this ref (the commits stay until `prune`).
        #[arg(long, value_name = "REF")]
        delete: Option<String>,
    },
    /// Verify every object's checksum and that every commit is complete.
    Fsck {
        /// Remove corrupt objects and mark the commits that needed them partial.
        #[arg(long)]
        delete: bool,
    },
    /// Make an ed25519 key pair: the secret key goes to FILE, the public key to stdout.
    Keygen {
        /// Where to write the secret key (created with mode 0600; must not exist).
        #[arg(long)]
        output: PathBuf,
    },
    /// Sign a commit (adds to its detached metadata).
    Sign {
        rev: String,
        /// The secret key file (from `strata keygen`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Write the summary file that lists the repository's branches for pulls.
    Summary {
        /// Regenerate `summary` (required; there is nothing else to do yet).
        #[arg(short, long)]
        update: bool,
        /// Also write `summary.sig`, signed with this secret key.
        #[arg(long, value_name = "FILE")]
        sign_key: Option<PathBuf>,
    },
    /// Manage remotes.
    #[command(subcommand)]
    Remote(RemoteCommand),
    /// Fetch a ref from a remote, verified, into refs/remotes/REMOTE/REF.
    ///
    /// Only missing objects are fetched; every object is checked against its
    /// checksum, the commit against the remote's keys and its ref binding.
    Pull {
        remote: String,
        #[arg(value_name = "REF")]
        ref_name: String,
        /// Also fetch N parent commits.
        #[arg(long, default_value_t = 0)]
        depth: u32,
        /// Pull this commit instead of the ref's newest.
        #[arg(long, value_name = "CHECKSUM")]
        commit: Option<String>,
        /// Accept a commit older than the one we have.
        #[arg(long)]
        allow_downgrade: bool,
        /// Connections to the server, each fetching on its own thread (over
        /// plain http://, each pipelines up to 16 requests).
        #[arg(long, default_value_t = 8, value_name = "N")]
        concurrency: usize,
    },
    /// Serve the repository over HTTP for development (use nginx in production).
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
    },
    /// Manage the sysroot.
    #[command(subcommand)]
    Sysroot(SysrootCommand),
    /// Make a plain root filesystem (a debootstrap tree) bootable, in place.
    ///
    /// Moves the kernel and initramfs to usr/lib/modules/<kver>/, /etc to
    /// /usr/etc, empties /var (recreated at boot by tmpfiles.d), installs
    /// strata and its initramfs hook, and rebuilds the initramfs in the tree.
    /// Then commit it with `strata commit --bootable`.
    PrepareTree {
        dir: PathBuf,
        /// The static strata-prepare-root to install (default: beside this binary,
        /// as built by scripts/build-prepare-root).
        #[arg(long, value_name = "FILE")]
        prepare_root: Option<PathBuf>,
    },
    /// Install onto a disk (image file or block device): GPT, ESP with
    /// systemd-boot, ext4 root holding the sysroot, and the first deployment.
    ///
    /// Example: strata install --disk vm.img --size 8G --repo repo --ref os/stable
    Install {
        /// The disk: an image file (created or resized) or a block device.
        #[arg(long, conflicts_with = "target_sysroot")]
        disk: Option<PathBuf>,
        /// Size of a new image file (e.g. 8G, 512M).
        #[arg(long, default_value = "8G")]
        size: String,
        /// Install into this mounted root filesystem instead of a disk (with --target-esp).
        #[arg(long, requires = "target_esp", value_name = "DIR")]
        target_sysroot: Option<PathBuf>,
        /// The mounted ESP of --target-sysroot.
        #[arg(long, value_name = "DIR")]
        target_esp: Option<PathBuf>,
        /// Kernel arguments naming the root for --target-sysroot (e.g. "root=UUID=… rw").
        #[arg(long, value_name = "ARGS", default_value = "rw")]
        root_karg: String,
        /// Take the commit from this local repository (the global --repo
        /// works too).
        #[arg(long)]
        source_repo: Option<PathBuf>,
        /// The URL the machine upgrades from, kept as remote `origin`; the
        /// commit is pulled from it unless --source-repo gives it.
        #[arg(long)]
        remote: Option<String>,
        /// The remote's public key (base64); without it, pulls are unverified.
        #[arg(long, requires = "remote", value_name = "BASE64")]
        sign_pubkey: Option<String>,
        /// The ref to install.
        #[arg(long = "ref", value_name = "REF")]
        ref_name: String,
        /// Kernel arguments (repeatable).
        #[arg(long = "karg", value_name = "ARG")]
        kargs: Vec<String>,
    },
    /// Deploy a commit (REV, or REMOTE:REF pulled first) as the new default.
    ///
    /// A hardlink checkout with /etc merged from the current deployment, its
    /// kernel copied to the ESP, and a boot entry that makes it the default.
    /// The previous default stays as the rollback target.
    Deploy {
        #[arg(value_name = "REV|REMOTE:REF")]
        target: String,
        /// Kernel arguments for this deployment (repeatable; default: the current ones).
        #[arg(long = "karg", value_name = "ARG")]
        kargs: Vec<String>,
    },
    /// Show the deployments: booted, default, rollback.
    Status {
        /// Print JSON (versioned by its "schema" field).
        #[arg(long)]
        json: bool,
    },
    /// Pull what the current deployment follows and deploy it if new.
    Upgrade {
        /// Only say whether an update is available (still fetches it).
        #[arg(long)]
        check: bool,
    },
    /// Follow another ref (REMOTE:REF) and deploy it.
    Switch { refspec: String },
    /// Make the previous deployment the default again.
    Rollback,
    /// Remove deployments other than the booted, default and rollback ones,
    /// unused kernels on the ESP, and objects nothing needs.
    Cleanup,
    /// Show how /etc differs from the deployment's defaults (A/M/D).
    EtcDiff,
    /// Show or change the kernel arguments of the default deployment.
    Kargs {
        #[arg(long, value_name = "ARG")]
        append: Vec<String>,
        /// Remove KEY (every KEY=…) or exactly KEY=VALUE.
        #[arg(long, value_name = "ARG")]
        delete: Vec<String>,
    },
    /// Remove objects no ref (or commit) reaches.
    Prune {
        /// Keep only what refs reach; other commits are removed.
        #[arg(long)]
        refs_only: bool,
        /// Keep at most N parents of each ref's commit (-1: all).
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        depth: Option<i64>,
        /// Remove commits older than this (like `30d`, `12h`, `2w`), except ref heads.
        #[arg(long, value_name = "DURATION")]
        keep_younger_than: Option<String>,
        /// Only print what would be removed.
        #[arg(long)]
        no_prune: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum RemoteCommand {
    /// Add a remote. Signature verification is on unless --no-sign-verify.
    ///
    /// Example: strata remote add origin https://updates.example.com/repo --sign-pubkey BASE64
    Add {
        name: String,
        /// http://, https:// or file:// URL of an archive repository.
        url: String,
        /// A trusted ed25519 public key (base64, as `strata keygen` prints).
        #[arg(long, value_name = "BASE64")]
        sign_pubkey: Option<String>,
        /// A file of trusted public keys, one base64 key per line.
        #[arg(long, value_name = "FILE")]
        sign_pubkey_file: Option<PathBuf>,
        /// A file of revoked public keys: signatures by them are refused.
        #[arg(long, value_name = "FILE")]
        sign_revoked_file: Option<PathBuf>,
        /// Accept unsigned commits from this remote (not recommended).
        #[arg(long, conflicts_with_all = ["sign_pubkey", "sign_pubkey_file"])]
        no_sign_verify: bool,
    },
    /// List remotes (name and URL).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete a remote (refs pulled from it stay until deleted).
    Delete { name: String },
}

#[derive(Debug, clap::Args)]
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
