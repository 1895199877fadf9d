//! What an installed app shows the host: its desktop files and icons
//! (from its `export/share/applications` and `export/share/icons`), and a
//! launcher `exports/bin/<ID>`. As in Flatpak, an app exports only files
//! named after its ID (`<ID>.desktop`, `<ID>-symbolic.svg`), and desktop
//! files start the app through `strata app run`. Nothing else of
//! `export/` leaves the app (no D-Bus services: they would start host
//! commands), symlinks are not followed, sizes are capped, and a file
//! another app exported is never replaced. Each app's exports are
//! recorded in `exports/.owners/<ID>`, so removing an app removes exactly
//! what it exported.
//!
//! Point `XDG_DATA_DIRS` at `<installation>/exports/share` and `PATH` at
//! `<installation>/exports/bin` (on a strata machine:
//! `/var/lib/strata/apps/exports/…`).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Component, Path, PathBuf};

use strata_store::durable;

use crate::error::{IoContext, Result};
use crate::installation::Installed;

/// The parts of `export/share` that are exported, and the largest file
/// taken from each.
const EXPORTED: &[(&str, u64)] = &[("applications", 64 << 10), ("icons", 1 << 20)];

/// Whether file name `name` belongs to app `id`.
pub fn owned_by(name: &str, id: &str) -> bool {
    name.strip_prefix(id)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('-'))
}

/// A desktop file's text with every `Exec` starting the app through
/// strata, and `TryExec` (a path outside the sandbox) dropped. Keys are
/// read as GLib reads them (`Exec = x` is `Exec`). Pure.
pub fn rewrite_desktop(text: &str, id: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        let key_value = line
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .filter(|_| !line.trim_start().starts_with(['#', '[']));
        match key_value {
            Some(("TryExec", _)) => continue,
            Some(("Exec", exec)) => {
                let mut words = exec.split_whitespace();
                let command = words.next().unwrap_or_default();
                out.push_str("Exec=strata app run");
                if !command.is_empty() && !command.contains(['\'', '"', '\\', '=']) {
                    out.push_str(&format!(" --command={command}"));
                }
                out.push(' ');
                out.push_str(id);
                for w in words {
                    out.push(' ');
                    out.push_str(w);
                }
                out.push('\n');
            }
            _ => {
                out.push_str(line);
                out.push('\n');
            }
        }
    }
    out
}

fn owners_dir(dir: &Path) -> PathBuf {
    dir.join("exports/.owners")
}

/// Every app's recorded exports: path relative to `exports/` → app ID.
fn owners(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut map = BTreeMap::new();
    let Ok(list) = fs::read_dir(owners_dir(dir)) else {
        return map;
    };
    for e in list.flatten() {
        let id = e.file_name().to_string_lossy().into_owned();
        for rel in fs::read_to_string(e.path()).unwrap_or_default().lines() {
            map.insert(PathBuf::from(rel), id.clone());
        }
    }
    map
}

/// A recorded relative path that stays inside `exports/`.
fn safe_rel(rel: &Path) -> bool {
    rel.components().all(|c| matches!(c, Component::Normal(_)))
}

/// Removes what app `id` exported.
pub fn remove(dir: &Path, id: &str) -> Result<()> {
    let record = owners_dir(dir).join(id);
    let Ok(text) = fs::read_to_string(&record) else {
        return Ok(());
    };
    for rel in text.lines().map(Path::new).filter(|r| safe_rel(r)) {
        let p = dir.join("exports").join(rel);
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx("remove", &p),
        }
    }
    fs::remove_file(&record).ctx("remove", &record)?;
    Ok(())
}

/// Exports what `app`'s active version has, replacing what it had.
pub fn update(dir: &Path, app: &Installed) -> Result<()> {
    let id = &app.id;
    remove(dir, id)?;
    let exports = dir.join("exports");
    let others = owners(dir);
    let mut written: Vec<PathBuf> = Vec::new();
    let mut put = |rel: PathBuf, bytes: &[u8], mode: u32| -> Result<()> {
        if others.get(&rel).is_some_and(|owner| owner != id) {
            tracing::info!(path = %rel.display(), "not exported: another app exports it");
            return Ok(());
        }
        let dest = exports.join(&rel);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).ctx("create", parent)?;
        }
        durable::write_file(&dest, bytes, mode)?;
        written.push(rel);
        Ok(())
    };
    put(
        Path::new("bin").join(id),
        format!("#!/bin/sh\nexec strata app run {id} \"$@\"\n").as_bytes(),
        0o755,
    )?;
    for (part, limit) in EXPORTED {
        let top = app.path.join("export/share").join(part);
        let mut stack = vec![top];
        while let Some(d) = stack.pop() {
            // A symlink is neither a directory nor a file here: not followed.
            let Ok(list) = fs::read_dir(&d) else {
                continue;
            };
            for e in list.flatten() {
                let p = e.path();
                let ft = e.file_type().ctx("stat", &p)?;
                if ft.is_dir() {
                    stack.push(p);
                    continue;
                }
                let name = e.file_name().to_string_lossy().into_owned();
                let size = e.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
                if !ft.is_file() || !owned_by(&name, id) || size > *limit {
                    tracing::info!(path = %p.display(), "not exported: not a file named after the app, or too large");
                    continue;
                }
                let Ok(rel) = p.strip_prefix(app.path.join("export")) else {
                    continue;
                };
                let bytes = fs::read(&p).ctx("read", &p)?;
                let bytes = if name.ends_with(".desktop") {
                    rewrite_desktop(&String::from_utf8_lossy(&bytes), id).into_bytes()
                } else {
                    bytes
                };
                put(rel.to_owned(), &bytes, 0o644)?;
            }
        }
    }
    let record: String = written
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect();
    let owners = owners_dir(dir);
    fs::create_dir_all(&owners).ctx("create", &owners)?;
    durable::write_file(&owners.join(id), record.as_bytes(), 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_names_after_the_id_belong_to_it() {
        let id = "org.example.Hello";
        for yes in [
            "org.example.Hello",
            "org.example.Hello.desktop",
            "org.example.Hello-symbolic.svg",
        ] {
            assert!(owned_by(yes, id), "{yes}");
        }
        for no in [
            "org.example.HelloWorld.desktop",
            "firefox.desktop",
            "org.example.Hell",
        ] {
            assert!(!owned_by(no, id), "{no}");
        }
    }

    #[test]
    fn desktop_files_start_the_app_through_strata() {
        let text = "[Desktop Entry]\nName=Hello\nTryExec=/app/bin/hello\nExec=hello --window %U\nIcon=org.example.Hello\n  Exec = /bin/sh -c evil\n# Exec=comment\n";
        assert_eq!(
            rewrite_desktop(text, "org.example.Hello"),
            "[Desktop Entry]\nName=Hello\nExec=strata app run --command=hello org.example.Hello --window %U\nIcon=org.example.Hello\nExec=strata app run --command=/bin/sh org.example.Hello -c evil\n# Exec=comment\n"
        );
    }
}
