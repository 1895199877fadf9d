//! Commands that write: init, commit, checkout.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use strata_store::checkout::CheckoutOptions;
use strata_store::gvariant::Value;
use strata_store::write::dir::DirImportOptions;
use strata_store::write::tar::TarImportOptions;
use strata_store::write::{CommitOptions, Parent, Source, commit_with};
use strata_store::{RefName, Repo};

use crate::args::{CheckoutArgs, CommitArgs, InitArgs};
use crate::time::parse_timestamp;

pub fn init(path: &Path, &InitArgs { mode }: &InitArgs) -> Result<ExitCode> {
    Repo::init(path, mode)?;
    Ok(ExitCode::SUCCESS)
}

pub fn commit(repo: &Repo, a: &CommitArgs) -> Result<ExitCode> {
    let branch = RefName::parse(&a.branch)?;
    if branch.remote.is_some() {
        bail!("cannot commit to remote ref {branch}: commit to a local branch");
    }
    let mut metadata = Vec::new();
    for kv in &a.metadata {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("missing '=' in --add-metadata-string {kv:?}"))?;
        metadata.push((k.to_owned(), Value::str(v)));
    }
    if a.bootable {
        let tree = a
            .tree
            .as_deref()
            .context("--bootable needs --tree: the kernel is looked for in the directory")?;
        let kver = bootable_kernel(tree)?;
        metadata.push(("ostree.bootable".to_owned(), Value::Bool(true)));
        metadata.push(("ostree.linux".to_owned(), Value::str(kver)));
    }
    let parent = match a.parent.as_deref() {
        None => Parent::BranchHead,
        Some("none") => Parent::None,
        Some(rev) => Parent::Commit(repo.resolve_rev(rev)?),
    };
    let opts = CommitOptions {
        subject: a.subject.clone(),
        body: a.body.clone(),
        timestamp: a
            .timestamp
            .as_deref()
            .map(parse_timestamp)
            .transpose()
            .map_err(anyhow::Error::msg)?,
        metadata,
        parent,
        no_bindings: a.no_bindings,
    };
    let source = match (&a.tree, &a.tar) {
        (Some(t), _) => Source::Dir(
            t.clone(),
            DirImportOptions {
                skip_special: a.skip_special,
                canonical_permissions: a.canonical_permissions,
            },
        ),
        (None, Some(t)) => Source::Tar(
            t.clone(),
            TarImportOptions {
                skip_special: a.skip_special,
            },
        ),
        (None, None) => bail!("give --tree DIR or --tar FILE"),
    };
    // Read the key before committing, so a bad key file changes nothing.
    let key = a
        .sign_key
        .as_deref()
        .map(crate::cmd::publish::read_secret_key)
        .transpose()?;
    // Signed before the branch moves: a published ref never points at a
    // commit still waiting for its signature.
    let r = commit_with(repo, &branch, &source, &opts, |c| -> Result<()> {
        if let Some(key) = &key {
            strata_remote::sign::sign_commit(repo, c, key)?;
        }
        Ok(())
    })?;
    println!("{}", r.checksum);
    if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        eprintln!(
            "{branch}: {} content objects ({} new), {} new metadata objects, {} bytes written",
            r.content_total, r.content_written, r.meta_written, r.bytes_written
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn checkout(repo: &Repo, a: &CheckoutArgs) -> Result<ExitCode> {
    let &CheckoutArgs {
        ref rev,
        ref dest,
        ref subpath,
        copy,
        union,
    } = a;
    let c = repo.resolve_rev(rev)?;
    repo.checkout(
        &c,
        dest,
        &CheckoutOptions {
            copy,
            union,
            subpath: subpath.clone(),
        },
    )
    .with_context(|| format!("checking out {c} into {}", dest.display()))?;
    Ok(ExitCode::SUCCESS)
}

/// The kernel version of a prepared tree: the one `usr/lib/modules/<kver>`
/// holding both `vmlinuz` and `initramfs.img`.
fn bootable_kernel(tree: &Path) -> Result<String> {
    let modules = tree.join("usr/lib/modules");
    let mut found = Vec::new();
    for e in std::fs::read_dir(&modules)
        .with_context(|| format!("--bootable: cannot read {}", modules.display()))?
    {
        let e = e?;
        if e.path().join("vmlinuz").is_file() && e.path().join("initramfs.img").is_file() {
            found.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    match found.as_slice() {
        [k] => Ok(k.clone()),
        [] => bail!(
            "--bootable: no usr/lib/modules/<kver>/ with vmlinuz and initramfs.img in {} (run `strata prepare-tree` first)",
            tree.display()
        ),
        _ => bail!(
            "--bootable: several kernels in {}: {}",
            modules.display(),
            found.join(", ")
        ),
    }
}
