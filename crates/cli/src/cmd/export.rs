//! `strata export`: a commit as an OCI image.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use strata_oci::{Compression, ExportOptions, Exported, image};
use strata_store::{Checksum, Repo};

use crate::args::{CompressionArg, ExportArgs};
use crate::time::format_rfc3339;

/// The export options for `commit`: its time as `created`, this machine's
/// architecture.
pub fn options(
    repo: &Repo,
    commit: &Checksum,
    tag: &str,
    compression: Compression,
) -> Result<ExportOptions> {
    let c = repo.load_commit(commit)?;
    Ok(ExportOptions {
        tag: tag.to_owned(),
        compression,
        created: format_rfc3339(c.timestamp),
        architecture: image::host_architecture().to_owned(),
    })
}

pub fn export(repo: &Repo, a: &ExportArgs) -> Result<ExitCode> {
    let commit = repo.resolve_rev(&a.rev)?;
    let compression = match a.compression {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
    };
    let tag = a
        .tag
        .clone()
        .unwrap_or_else(|| strata_oci::default_tag(&commit));
    let opts = options(repo, &commit, &tag, compression)?;
    let (dest, load, e) = match (&a.oci, &a.oci_archive) {
        (Some(dir), _) => (
            dir,
            format!("podman pull oci:{}", dir.display()),
            strata_oci::export_dir(repo, &commit, dir, &opts),
        ),
        (None, Some(file)) => (
            file,
            format!("podman load -i {}", file.display()),
            strata_oci::export_archive(repo, &commit, file, &opts),
        ),
        (None, None) => anyhow::bail!("give --oci DIR or --oci-archive FILE"),
    };
    let e: Exported = e.with_context(|| format!("exporting {commit} to {}", dest.display()))?;
    if a.json {
        println!(
            "{}",
            json!({
                "commit": commit.to_hex(),
                "path": dest,
                "tag": tag,
                "manifest": e.manifest_digest,
                "config": e.config_digest,
                "layer": e.layer_digest,
                "diff_id": e.diff_id,
                "layer_size": e.layer_size,
                "files": e.stats.files,
                "hardlinks": e.stats.hardlinks,
                "symlinks": e.stats.symlinks,
                "dirs": e.stats.dirs,
                "content_bytes": e.stats.bytes,
                "private": e.stats.private,
                "skipped_tmpfiles_lines": e.stats.skipped_lines,
            })
        );
    } else {
        println!("exported commit {commit} to {}", dest.display());
        println!("  manifest {}", e.manifest_digest);
        println!(
            "  layer    {} ({:.1} MB; {} files, {} hard links, {} symlinks, {} directories)",
            e.layer_digest,
            e.layer_size as f64 / 1e6,
            e.stats.files,
            e.stats.hardlinks,
            e.stats.symlinks,
            e.stats.dirs
        );
        if e.stats.private {
            println!(
                "  readable by its owner only: the image holds files others may not read (/etc/shadow)"
            );
        }
        if e.stats.skipped_lines > 0 {
            eprintln!(
                "warning: {} tmpfiles.d line(s) for /var left out: an owner the image does not \
                 name, a copy whose source is missing, or a path under a file or symlink",
                e.stats.skipped_lines
            );
        }
        println!("load it with: {load}");
    }
    Ok(ExitCode::SUCCESS)
}
