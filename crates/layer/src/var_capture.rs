//! What packages put in `/var`, turned into the image: `/var` is the
//! machine's shared state, never part of a deployment, so a layered
//! package's `/var` content must be recreated at boot by tmpfiles.d, as
//! prepare-tree does for the base (and rpm-ostree for RPMs):
//!
//! - directories become `d` lines;
//! - files move to `usr/share/factory/var/…` and become `C` lines (copied
//!   when missing);
//! - symlinks become `L` lines;
//! - under `/var/opt` and `/var/usrlocal` (where `/opt` and `/usr/local`
//!   point), files move to `usr/lib/opt/…` and `usr/lib/usrlocal/…`, and
//!   each becomes a link, so they follow the image on upgrades;
//! - under `/var/opt`, a package's own directory (`/var/opt/google`) moves
//!   whole to `usr/lib/opt/…` and becomes one link, as rpm-ostree does,
//!   so programs that find their files relative to themselves work;
//! - under `/var/log` and `/var/cache` only directories are kept; apt's,
//!   dpkg's and debconf's own state is left out;
//! - anything else (a fifo, a device) is refused, naming the path.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use crate::error::{Error, IoContext, Result};
use crate::tree::ensure_dir_like;

/// Paths under `/var` that are the build's own state (apt's, dpkg's,
/// debconf's, ldconfig's), not the packages'.
const LEFT_OUT: &[&str] = &[
    "lib/apt",
    "lib/dpkg",
    "cache/apt",
    "cache/debconf",
    "cache/ldconfig",
    "log/apt",
    "log/dpkg.log",
    "log/alternatives.log",
    "tmp",
    "backups",
];

/// Where a prepared tree keeps its `/var` content.
const FACTORY_VAR: &str = "usr/share/factory/var";

/// Under these only directories are kept (`/var/log/nginx` must exist);
/// files there are the build's logs and caches, made again at run time.
const DIRS_ONLY: &[&str] = &["log/", "cache/"];

/// Where a file under `/var` goes in the image, and the line that puts it
/// back. Pure.
fn placement(rel: &str) -> (String, String) {
    let var_path = format!("/var/{rel}");
    for (under_var, in_usr) in [("opt/", "usr/lib/opt/"), ("usrlocal/", "usr/lib/usrlocal/")] {
        if let Some(rest) = rel.strip_prefix(under_var) {
            let image = format!("{in_usr}{rest}");
            return (
                image.clone(),
                format!("L {} - - - - /{}", escape(&var_path), escape(&image)),
            );
        }
    }
    let image = format!("usr/share/factory/var/{rel}");
    (
        image.clone(),
        format!("C {} - - - - /{}", escape(&var_path), escape(&image)),
    )
}

/// tmpfiles.d's C-style escaping of the characters that split its fields.
fn escape(path: &str) -> String {
    path.replace('\\', "\\x5c")
        .replace(' ', "\\x20")
        .replace('\t', "\\x09")
        .replace('%', "%%")
}

fn left_out(rel: &str) -> bool {
    LEFT_OUT
        .iter()
        .any(|p| rel == *p || rel.strip_prefix(p).is_some_and(|r| r.starts_with('/')))
}

/// Moves what is in `var_upper` (the `/var` overlay's upper directory)
/// into `upper` (the image overlay's upper directory; missing directories
/// are made like those of `lower`) and returns the tmpfiles.d lines.
pub fn capture(var_upper: &Path, upper: &Path, lower: &Path) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    walk(var_upper, "", upper, lower, &mut lines)?;
    Ok(lines)
}

fn walk(
    var_upper: &Path,
    rel_dir: &str,
    upper: &Path,
    lower: &Path,
    lines: &mut Vec<String>,
) -> Result<()> {
    let dir = var_upper.join(rel_dir);
    let mut names: Vec<String> = Vec::new();
    for e in fs::read_dir(&dir).ctx("read directory", &dir)? {
        let e = e.ctx("read directory", &dir)?;
        let name = e
            .file_name()
            .into_string()
            .map_err(|n| Error::CannotLayer {
                path: format!("/var/{rel_dir}/{}", n.to_string_lossy()),
                why: "the name is not valid UTF-8".into(),
            })?;
        names.push(name);
    }
    names.sort();
    for name in names {
        let rel = if rel_dir.is_empty() {
            name.clone()
        } else {
            format!("{rel_dir}/{name}")
        };
        if left_out(&rel) {
            continue;
        }
        let shown = format!("/var/{rel}");
        if rel.chars().any(char::is_control) {
            return Err(Error::CannotLayer {
                path: shown,
                why: "the name has control characters, which tmpfiles.d cannot write".into(),
            });
        }
        let path = var_upper.join(&rel);
        let m = fs::symlink_metadata(&path).ctx("stat", &path)?;
        let ft = m.file_type();
        if ft.is_dir() {
            let new_opt_dir = rel_dir == "opt"
                && fs::symlink_metadata(lower.join(FACTORY_VAR).join(&rel)).is_err();
            if new_opt_dir {
                let image = format!("usr/lib/opt/{name}");
                ensure_dir_like(upper, lower, Path::new("usr/lib/opt"))?;
                let dest = upper.join(&image);
                fs::rename(&path, &dest).ctx("move into the image", &dest)?;
                lines.push(format!("L {} - - - - /{}", escape(&shown), escape(&image)));
                continue;
            }
            // One the base has is made by the base's own tmpfiles.d lines.
            let in_base = fs::symlink_metadata(lower.join(FACTORY_VAR).join(&rel)).is_ok();
            if !in_base {
                lines.push(format!(
                    "d {} {:04o} {} {} -",
                    escape(&shown),
                    m.mode() & 0o7777,
                    m.uid(),
                    m.gid()
                ));
            }
            walk(var_upper, &rel, upper, lower, lines)?;
        } else if DIRS_ONLY.iter().any(|p| rel.starts_with(p)) {
            continue;
        } else if ft.is_symlink() {
            let t = fs::read_link(&path).ctx("read symlink", &path)?;
            let t = t.to_str().ok_or_else(|| Error::CannotLayer {
                path: shown.clone(),
                why: "the symlink's target is not valid UTF-8".into(),
            })?;
            lines.push(format!("L {} - - - - {}", escape(&shown), escape(t)));
        } else if ft.is_file() {
            let (image, line) = placement(&rel);
            let dest = upper.join(&image);
            if let Some(parent) = Path::new(&image).parent() {
                ensure_dir_like(upper, lower, parent)?;
            }
            fs::rename(&path, &dest).ctx("move into the image", &dest)?;
            lines.push(line);
        } else if ft.is_char_device() && m.rdev() == 0 {
            // A package removed something the base has in /var: the
            // machine's /var is its own, so that is left alone.
            tracing::warn!(path = %shown, "a package removed this; /var keeps it");
        } else {
            return Err(Error::CannotLayer {
                path: shown,
                why: "a package made a device, fifo or socket here, which an image cannot hold"
                    .into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_go_to_the_factory_and_opt_to_usr_lib() {
        assert_eq!(
            placement("lib/foo/db"),
            (
                "usr/share/factory/var/lib/foo/db".to_owned(),
                "C /var/lib/foo/db - - - - /usr/share/factory/var/lib/foo/db".to_owned()
            )
        );
        assert_eq!(
            placement("opt/app/bin/x y"),
            (
                "usr/lib/opt/app/bin/x y".to_owned(),
                "L /var/opt/app/bin/x\\x20y - - - - /usr/lib/opt/app/bin/x\\x20y".to_owned()
            )
        );
        assert_eq!(placement("usrlocal/bin/t").0, "usr/lib/usrlocal/bin/t");
        assert_eq!(
            placement("lib/a%b").1,
            "C /var/lib/a%%b - - - - /usr/share/factory/var/lib/a%%b"
        );
    }

    #[test]
    fn a_fifo_in_var_is_refused_by_path() {
        let t = tempfile::tempdir().expect("tmp");
        let (var, upper, lower) = (t.path().join("v"), t.path().join("u"), t.path().join("l"));
        for d in [&var, &upper, &lower] {
            fs::create_dir_all(d.join("lib/pkg")).expect("mkdir");
        }
        fs::write(var.join("lib/pkg/data"), "x").expect("write");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            var.join("lib/pkg/pipe"),
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o644),
            0,
        )
        .expect("mkfifo");
        let e = capture(&var, &upper, &lower).expect_err("a fifo");
        assert!(e.to_string().starts_with("/var/lib/pkg/pipe: "), "{e}");
    }

    #[test]
    fn build_state_is_left_out() {
        for rel in [
            "lib/apt",
            "lib/apt/lists/x",
            "cache/debconf/config.dat",
            "log/dpkg.log",
            "lib/dpkg",
        ] {
            assert!(left_out(rel), "{rel}");
        }
        for rel in [
            "lib/aptitude",
            "lib/foo",
            "opt/x",
            "cachefoo",
            "log/nginx",
            "cache/man",
        ] {
            assert!(!left_out(rel), "{rel}");
        }
    }
}
