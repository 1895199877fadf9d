//! `strata layer add|remove|list` and `strata usr-overlay`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use strata_layer::live::UsrOverlay;
use strata_layer::{Progress, Step, live, ops};
use strata_sysroot::Sysroot;

use crate::args::{LayerAddArgs, LayerListArgs, LayerRemoveArgs};

/// Steps on stderr always; apt's and dpkg's lines too on a terminal (they
/// are in the error message when something fails).
struct Lines {
    terminal: bool,
}

impl Progress for Lines {
    fn step(&self, step: Step) {
        eprintln!("strata: {}", step.describe());
    }
    fn output(&self, line: &str) {
        if self.terminal {
            eprintln!("  {line}");
        }
    }
}

fn lines() -> Lines {
    Lines {
        terminal: std::io::stderr().is_terminal(),
    }
}

/// What `upgrade` and `auto-update` use to build layered packages again.
pub fn relayer() -> Box<dyn strata_sysroot::upgrade::Relayer> {
    Box::new(ops::Relayer {
        progress: Box::new(lines()),
    })
}

/// Says which requested packages the new base has, so are no longer layered.
pub fn print_dropped(dropped: &[String]) {
    if !dropped.is_empty() {
        println!(
            "no longer layered, the new base has them: {}",
            dropped.join(" ")
        );
    }
}

pub fn add(root: &Path, a: &LayerAddArgs) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    if a.apply_live {
        // Before anything is built: nothing to apply it to.
        live::running(&s, "--apply-live")?;
    }
    let (files, names): (Vec<&String>, Vec<&String>) = a
        .packages
        .iter()
        .partition(|p| p.ends_with(".deb") || p.contains('/'));
    let names: Vec<String> = names.into_iter().cloned().collect();
    let files: Vec<PathBuf> = files.into_iter().map(PathBuf::from).collect();
    let p = lines();
    let changed = ops::add(&s, &names, &files, &p)?;
    print_dropped(&changed.built.dropped);
    for (name, version) in &changed.built.versions {
        println!("layered {name} {version}");
    }
    super::system::print_deployed(&changed.report);
    if a.apply_live {
        p.step(Step::ApplyLive);
        for w in live::apply_live(&s, &changed.report.id)? {
            eprintln!("warning: {w}");
        }
        println!(
            "applied live: the new packages run now; the rest of the system changes at the next boot"
        );
    } else {
        println!("reboot to use it (or add --apply-live next time); `strata rollback` goes back");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remove(root: &Path, a: &LayerRemoveArgs) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    let changed = ops::remove(&s, &a.packages, &lines())?;
    for name in &a.packages {
        println!("removed {name}");
    }
    super::system::print_deployed(&changed.report);
    println!("reboot to use it; `strata rollback` goes back");
    Ok(ExitCode::SUCCESS)
}

pub fn list(root: &Path, &LayerListArgs { json }: &LayerListArgs) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    let l = ops::list(&s)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&l)?);
        return Ok(ExitCode::SUCCESS);
    }
    if l.packages.is_empty() {
        println!("no layered packages in {}", l.deployment);
    }
    for p in &l.packages {
        println!(
            "{} {}{}",
            p.name,
            p.version.as_deref().unwrap_or("(not installed)"),
            if p.source == "local" {
                " (local .deb)"
            } else {
                ""
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn usr_overlay(root: &Path) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    match live::usr_overlay(&s)? {
        UsrOverlay::Mounted(d) => println!(
            "/usr is writable until the next boot (changes kept in {}, then gone)",
            d.display()
        ),
        UsrOverlay::Already(d) => println!(
            "/usr is writable already until the next boot (changes in {})",
            d.display()
        ),
    }
    Ok(ExitCode::SUCCESS)
}
