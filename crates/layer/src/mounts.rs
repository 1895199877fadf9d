//! Overlay mounts of a build, undone when dropped.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

use crate::error::{Error, Result};

/// An overlayfs mounted at a directory; unmounted (lazily, so a process
/// still inside cannot make it stick) when dropped.
#[derive(Debug)]
pub struct Overlay {
    target: PathBuf,
}

fn option_path(p: &Path) -> Result<&str> {
    p.to_str()
        .filter(|s| !s.contains([',', ':', '\\']))
        .ok_or_else(|| {
            Error::Refused(format!(
                "{}: an overlay layer's path must be UTF-8 without ',', ':' or '\\'",
                p.display()
            ))
        })
}

impl Overlay {
    /// Mounts `lower` (read-only layers, topmost first) with `upper` and
    /// `work` (writable; `None` for a read-only overlay) at `target`.
    /// Every change is whole in `upper` (no redirects, no metacopy), as
    /// [`strata_store::write::overlay`] needs.
    pub fn mount(lower: &[&Path], upper: Option<(&Path, &Path)>, target: &Path) -> Result<Overlay> {
        let lowers: Vec<&str> = lower
            .iter()
            .map(|p| option_path(p))
            .collect::<Result<_>>()?;
        let mut opts = format!("lowerdir={}", lowers.join(":"));
        if let Some((u, w)) = upper {
            opts.push_str(&format!(
                ",upperdir={},workdir={}",
                option_path(u)?,
                option_path(w)?
            ));
        }
        opts.push_str(",redirect_dir=off,index=off,metacopy=off");
        let flags = if upper.is_some() {
            MountFlags::empty()
        } else {
            MountFlags::RDONLY
        };
        let data = std::ffi::CString::new(opts.clone())
            .map_err(|_| Error::Refused(format!("overlay options with a NUL byte: {opts:?}")))?;
        rustix::mount::mount("overlay", target, "overlay", flags, data.as_c_str()).map_err(
            |e| Error::Tool {
                what: format!("mount an overlay at {} ({opts})", target.display()),
                why: std::io::Error::from(e).to_string(),
            },
        )?;
        Ok(Overlay {
            target: target.to_owned(),
        })
    }

    /// Leaves it mounted for good (until reboot).
    pub fn keep(self) {
        std::mem::forget(self);
    }

    /// Unmounts now, reporting failure (drop only tries).
    pub fn unmount(self) -> Result<()> {
        let r = rustix::mount::unmount(&self.target, UnmountFlags::empty());
        let target = self.target.clone();
        std::mem::forget(self);
        r.map_err(|e| Error::Tool {
            what: format!("unmount {}", target.display()),
            why: std::io::Error::from(e).to_string(),
        })
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.target, UnmountFlags::DETACH);
    }
}

/// Unmounts whatever is mounted at `target` (a leftover of a build that
/// was killed), lazily; nothing mounted is fine.
pub fn unmount_leftover(target: &Path) {
    while crate::tree::is_mount_point(target) {
        if rustix::mount::unmount(target, UnmountFlags::DETACH).is_err() {
            break;
        }
    }
}
