//! Commands that check and clean: fsck, prune.

use std::process::ExitCode;

use anyhow::Result;
use strata_store::Repo;
use strata_store::prune::PruneOptions;

use crate::args::{FsckArgs, PruneArgs};
use crate::time::parse_duration;

pub fn fsck(repo: &Repo, &FsckArgs { delete }: &FsckArgs) -> Result<ExitCode> {
    let r = repo.fsck(delete)?;
    for p in &r.corrupt {
        eprintln!(
            "error: object {}.{} is corrupt: {}",
            p.object.0, p.object.1, p.what
        );
    }
    for p in &r.missing {
        eprintln!("error: object {}.{} {}", p.object.0, p.object.1, p.what);
    }
    for (c, kind) in &r.deleted {
        eprintln!("deleted corrupt object {c}.{kind}");
    }
    for c in &r.marked_partial {
        eprintln!("marked commit {c} partial (objects missing; pull it again to repair)");
    }
    println!(
        "checked {} objects, {} commits ({} partial): {} corrupt, {} missing",
        r.objects_checked,
        r.commits,
        r.partial_commits.len() + r.marked_partial.len(),
        r.corrupt.len(),
        r.missing.len()
    );
    Ok(if r.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

pub fn prune(repo: &Repo, a: &PruneArgs) -> Result<ExitCode> {
    let &PruneArgs {
        refs_only,
        depth,
        ref keep_younger_than,
        no_prune: dry_run,
    } = a;
    let older_than = match keep_younger_than {
        Some(d) => {
            let secs = parse_duration(d).map_err(anyhow::Error::msg)?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            Some(now.saturating_sub(secs))
        }
        None => None,
    };
    let opts = PruneOptions {
        refs_only,
        depth: depth.and_then(|d| u64::try_from(d).ok()),
        older_than,
        dry_run,
        keep: Vec::new(),
    };
    let r = repo.prune(&opts)?;
    println!(
        "{} {} of {} objects ({} commits), {} bytes{}",
        if dry_run { "would delete" } else { "deleted" },
        r.objects_deleted,
        r.objects_total,
        r.commits_deleted,
        r.bytes_freed,
        if dry_run {
            " (nothing removed: --no-prune)"
        } else {
            ""
        }
    );
    Ok(ExitCode::SUCCESS)
}
