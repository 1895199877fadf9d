//! What an installed app shows the host: its desktop files and icons
//! (from its `export/share`), and a launcher `exports/bin/<ID>`. As in
//! Flatpak, an app exports only files named after its ID (`<ID>.desktop`,
//! `<ID>-symbolic.svg`), so it cannot replace another program's, and
//! desktop files start the app through `strata app run`.
//!
//! Point `XDG_DATA_DIRS` at `<installation>/exports/share` and `PATH` at
//! `<installation>/exports/bin` (on a strata machine:
//! `/var/lib/strata/apps/exports/…`).

use std::fs;
use std::path::Path;

use strata_store::durable;

use crate::error::{IoContext, Result};
use crate::installation::Installed;

/// Whether file name `name` belongs to app `id`.
pub fn owned_by(name: &str, id: &str) -> bool {
    name.strip_prefix(id)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('-'))
}

/// A desktop file's text with every `Exec=` starting the app through
/// strata, and `TryExec=` (a path outside the sandbox) dropped. Pure.
pub fn rewrite_desktop(text: &str, id: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.lines() {
        if line.starts_with("TryExec=") {
            continue;
        }
        if let Some(exec) = line.strip_prefix("Exec=") {
            let mut words = exec.split_whitespace();
            let command = words.next().unwrap_or_default();
            let rest: Vec<&str> = words.collect();
            out.push_str("Exec=strata app run");
            if !command.is_empty() && !command.contains(['\'', '"', '\\']) {
                out.push_str(&format!(" --command={command}"));
            }
            out.push(' ');
            out.push_str(id);
            for w in rest {
                out.push(' ');
                out.push_str(w);
            }
            out.push('\n');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Removes what app `id` exported.
pub fn remove(dir: &Path, id: &str) -> Result<()> {
    let exports = dir.join("exports");
    let mut stack = vec![exports];
    while let Some(d) = stack.pop() {
        let Ok(list) = fs::read_dir(&d) else {
            continue;
        };
        for e in list.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p);
            } else if owned_by(&e.file_name().to_string_lossy(), id) {
                fs::remove_file(&p).ctx("remove", &p)?;
            }
        }
    }
    Ok(())
}

/// Exports what `app`'s active version has, replacing what it had.
pub fn update(dir: &Path, app: &Installed) -> Result<()> {
    let id = &app.id;
    remove(dir, id)?;
    let exports = dir.join("exports");
    let bin = exports.join("bin");
    fs::create_dir_all(&bin).ctx("create", &bin)?;
    durable::write_file(
        &bin.join(id),
        format!("#!/bin/sh\nexec strata app run {id} \"$@\"\n").as_bytes(),
        0o755,
    )?;
    let share = app.path.join("export/share");
    let mut stack = vec![share.clone()];
    while let Some(d) = stack.pop() {
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
            if !ft.is_file() || !owned_by(&name, id) {
                tracing::info!(path = %p.display(), "not exported: not a file named after the app");
                continue;
            }
            let rel = p.strip_prefix(&share).unwrap_or(&p);
            let dest = exports.join("share").join(rel);
            if let Some(parent) = dest.parent() {
                fs::create_dir_all(parent).ctx("create", parent)?;
            }
            let bytes = fs::read(&p).ctx("read", &p)?;
            let bytes = if name.ends_with(".desktop") {
                rewrite_desktop(&String::from_utf8_lossy(&bytes), id).into_bytes()
            } else {
                bytes
            };
            durable::write_file(&dest, &bytes, 0o644)?;
        }
    }
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
        let text = "[Desktop Entry]\nName=Hello\nTryExec=/app/bin/hello\nExec=hello --window %U\nIcon=org.example.Hello\n";
        assert_eq!(
            rewrite_desktop(text, "org.example.Hello"),
            "[Desktop Entry]\nName=Hello\nExec=strata app run --command=hello org.example.Hello --window %U\nIcon=org.example.Hello\n"
        );
    }
}
