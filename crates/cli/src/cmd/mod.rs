//! One function per command: turn arguments into a library call and print
//! the result. No logic of its own lives here.

mod inspect;
mod maintain;
mod publish;
mod system;
mod write;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_store::Repo;

use crate::args::{Cli, Command, RemoteCommand, SysrootCommand};

/// The sysroot: as given, else `/sysroot` on a booted strata machine
/// (where `/` is the deployment), else `/`.
fn sysroot_path(given: Option<&Path>) -> PathBuf {
    match given {
        Some(p) => p.to_owned(),
        None if Path::new("/run/strata-booted").exists()
            && Path::new("/sysroot/strata/sysroot.conf").exists() =>
        {
            PathBuf::from("/sysroot")
        }
        None => PathBuf::from("/"),
    }
}

pub fn run(cli: Cli) -> Result<ExitCode> {
    let sysroot = sysroot_path(cli.sysroot.as_deref());
    // Without --repo, repository commands work on the sysroot's repository
    // (so `strata remote add` on a machine needs no path).
    let repo_path = || -> Result<PathBuf> {
        if let Some(r) = &cli.repo {
            return Ok(r.clone());
        }
        let machine = sysroot.join("strata/repo");
        if machine.join("config").exists() {
            return Ok(machine);
        }
        anyhow::bail!("no repository given: pass --repo PATH or set STRATA_REPO")
    };
    let open = || -> Result<Repo> { Ok(Repo::open(&repo_path()?)?) };
    match cli.command {
        Command::Init { ref mode } => write::init(
            cli.repo
                .as_deref()
                .context("no repository given: pass --repo PATH or set STRATA_REPO")?,
            mode,
        ),
        Command::Commit(ref a) => write::commit(&open()?, a),
        Command::Checkout {
            ref rev,
            ref dest,
            ref subpath,
            copy,
            union,
        } => write::checkout(&open()?, rev, dest, subpath.clone(), copy, union),
        Command::RevParse { ref rev } => inspect::rev_parse(&open()?, rev),
        Command::Log { ref rev } => inspect::log(&open()?, rev),
        Command::Ls {
            ref rev,
            ref path,
            recursive,
        } => inspect::ls(&open()?, rev, path, recursive),
        Command::Cat { ref rev, ref path } => inspect::cat(&open()?, rev, path),
        Command::Show { ref rev, json } => inspect::show(&open()?, rev, json),
        Command::Diff { ref from, ref to } => inspect::diff(&open()?, from, to),
        Command::Refs { ref delete } => inspect::refs(&open()?, delete.as_deref()),
        Command::Fsck { delete } => maintain::fsck(&open()?, delete),
        Command::Keygen { ref output } => publish::keygen(output),
        Command::Sign { ref rev, ref key } => publish::sign(&open()?, rev, key),
        Command::Summary {
            update,
            ref sign_key,
        } => publish::summary(&open()?, update, sign_key.as_deref()),
        Command::Remote(ref r) => match r {
            RemoteCommand::Add {
                name,
                url,
                sign_pubkey,
                sign_pubkey_file,
                sign_revoked_file,
                no_sign_verify,
            } => publish::remote_add(
                &mut open()?,
                name,
                url,
                sign_pubkey,
                sign_pubkey_file,
                sign_revoked_file,
                *no_sign_verify,
            ),
            RemoteCommand::List { json } => publish::remote_list(&open()?, *json),
            RemoteCommand::Delete { name } => publish::remote_delete(&mut open()?, name),
        },
        Command::Pull {
            ref remote,
            ref ref_name,
            depth,
            ref commit,
            allow_downgrade,
            concurrency,
        } => publish::pull(
            &open()?,
            remote,
            ref_name,
            depth,
            commit.as_deref(),
            allow_downgrade,
            concurrency,
        ),
        Command::Serve { ref listen } => publish::serve(&open()?, listen),
        Command::Sysroot(SysrootCommand::Init {
            ref esp,
            ref root_karg,
        }) => system::init(&sysroot, esp.as_deref(), root_karg.as_deref()),
        Command::PrepareTree {
            ref dir,
            ref prepare_root,
        } => system::prepare_tree(dir, prepare_root.as_deref()),
        Command::Install {
            ref disk,
            ref size,
            ref target_sysroot,
            ref target_esp,
            ref root_karg,
            ref source_repo,
            ref remote,
            ref sign_pubkey,
            ref ref_name,
            ref kargs,
        } => system::install(system::InstallArgs {
            disk: disk.clone(),
            size: size.clone(),
            target_sysroot: target_sysroot.clone(),
            target_esp: target_esp.clone(),
            root_karg: root_karg.clone(),
            source_repo: source_repo.clone().or_else(|| cli.repo.clone()),
            remote: remote.clone(),
            sign_pubkey: sign_pubkey.clone(),
            ref_name: ref_name.clone(),
            kargs: kargs.clone(),
            stateroot: cli.stateroot.clone(),
        }),
        Command::Deploy {
            ref target,
            ref kargs,
        } => system::deploy(&sysroot, &cli.stateroot, target, kargs),
        Command::Status { json } => system::status(&sysroot, json),
        Command::Upgrade { check } => system::upgrade(&sysroot, &cli.stateroot, check),
        Command::Switch { ref refspec } => system::switch(&sysroot, &cli.stateroot, refspec),
        Command::Rollback => system::rollback(&sysroot),
        Command::Cleanup => system::cleanup(&sysroot),
        Command::EtcDiff => system::etc_diff(&sysroot),
        Command::Kargs {
            ref append,
            ref delete,
        } => system::kargs(&sysroot, append, delete),
        Command::Prune {
            refs_only,
            depth,
            ref keep_younger_than,
            no_prune,
        } => maintain::prune(
            &open()?,
            refs_only,
            depth,
            keep_younger_than.as_deref(),
            no_prune,
        ),
    }
}
