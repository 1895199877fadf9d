//! `strata app …`: sandboxed apps in Flatpak's format.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;
use strata_app::installation::{self, Installation, Installed};
use strata_app::publish::{self, PublishOptions, XA_INSTALLED_SIZE};
use strata_app::run::{self, RunOptions};
use strata_app::sandbox::{self, Grant};
use strata_app::{Kind, flatpak_ref};
use strata_store::{Checksum, Repo};
use strata_sysroot::Sysroot;

use crate::args::{
    AppIdArgs, AppInfoArgs, AppInstallArgs, AppListArgs, AppPublishArgs, AppRunArgs, AppUpdateArgs,
};
use crate::progress::Bar;

/// Where apps live on a strata machine, in the stateroot's /var.
const APPS_IN_VAR: &str = "lib/strata/apps";

/// The sysroot's installation: its repository, and
/// `/var/lib/strata/apps` of the stateroot.
pub fn installation(root: &Path, stateroot: &str) -> Result<Installation> {
    let s = Sysroot::open(root)?;
    let repo = Repo::open(s.repo().path())?;
    Ok(Installation::open(
        repo,
        &s.state_var(stateroot).join(APPS_IN_VAR),
    )?)
}

/// Steps on stderr, pulls as a bar on a terminal.
struct Steps {
    bar: Bar,
}

impl installation::Progress for Steps {
    fn step(&self, what: &str) {
        eprintln!("strata: {what}");
    }
    fn pull(&self) -> &dyn strata_remote::progress::Progress {
        &self.bar
    }
}

fn short(c: &Checksum) -> String {
    c.to_hex()[..12].to_owned()
}

pub fn install(inst: &Installation, a: &AppInstallArgs) -> Result<ExitCode> {
    let p = Steps {
        bar: Bar::on_terminal(),
    };
    let result = inst.install(&a.remote, &a.id, a.branch.as_deref(), &p);
    p.bar.finish();
    let r = result?;
    let (rt, brought) = &r.runtime;
    println!(
        "runtime {} {} (commit {})",
        rt.flatpak_ref(),
        if *brought {
            "installed"
        } else {
            "was installed already"
        },
        short(&rt.commit)
    );
    println!(
        "installed {} (commit {}) from {}",
        r.app.flatpak_ref(),
        short(&r.app.commit),
        r.app.origin
    );
    println!("run it with: strata app run {}", r.app.id);
    Ok(ExitCode::SUCCESS)
}

pub fn run(inst: &Installation, a: &AppRunArgs) -> Result<ExitCode> {
    let prepared = run::prepare(
        inst,
        &a.id,
        &RunOptions {
            command: a.command.clone(),
            args: a.args.clone(),
        },
    )?;
    for g in &prepared.grants {
        if let Grant::Ignored(why) = g {
            eprintln!("warning: not granted: {why}");
        }
    }
    Err(prepared.exec().into())
}

fn installed_json(inst: &Installation, i: &Installed) -> serde_json::Value {
    json!({
        "kind": i.kind,
        "id": i.id,
        "arch": i.arch,
        "branch": i.branch,
        "ref": i.flatpak_ref().to_string(),
        "commit": i.commit.to_hex(),
        "previous": i.previous.map(|p| p.to_hex()),
        "origin": i.origin,
        "path": i.path,
        "installed_size": installed_size(inst, &i.commit),
    })
}

fn installed_size(inst: &Installation, c: &Checksum) -> Option<u64> {
    let commit = inst.repo().load_commit(c).ok()?;
    commit
        .metadata
        .iter()
        .find(|(k, _)| k == XA_INSTALLED_SIZE)
        .and_then(|(_, v)| publish::size_of(v))
}

pub fn list(inst: &Installation, a: &AppListArgs) -> Result<ExitCode> {
    let all = inst.list()?;
    if a.json {
        let v: Vec<_> = all.iter().map(|i| installed_json(inst, i)).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no apps installed");
    }
    for i in &all {
        println!(
            "{:<8} {:<40} {:<10} {} {}",
            i.kind.as_str(),
            i.id,
            i.branch,
            short(&i.commit),
            i.origin
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn update(inst: &Installation, a: &AppUpdateArgs) -> Result<ExitCode> {
    let p = Steps {
        bar: Bar::on_terminal(),
    };
    let result = inst.update(a.id.as_deref(), &p);
    p.bar.finish();
    for u in result? {
        if u.from == u.to {
            println!("{}: up to date at {}", u.flatpak_ref, short(&u.to));
        } else {
            println!(
                "{}: {} -> {} (the old version stays for strata app rollback)",
                u.flatpak_ref,
                short(&u.from),
                short(&u.to)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(inst: &Installation, a: &AppIdArgs) -> Result<ExitCode> {
    let u = inst.rollback(&a.id)?;
    println!(
        "{}: {} -> {} (rolled back)",
        u.flatpak_ref,
        short(&u.from),
        short(&u.to)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn remove(inst: &Installation, a: &AppIdArgs) -> Result<ExitCode> {
    for r in inst.remove(&a.id)?.refs {
        println!("removed {r}");
    }
    println!("their objects go at the next strata cleanup (or strata prune)");
    Ok(ExitCode::SUCCESS)
}

pub fn info(inst: &Installation, a: &AppInfoArgs) -> Result<ExitCode> {
    let app = inst.app(&a.id)?;
    let meta = app.metadata()?;
    let runtime = match &meta.runtime {
        Some(r) => inst.get(r)?,
        None => None,
    };
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let grants: Vec<serde_json::Value> = meta
        .context
        .filesystems
        .iter()
        .map(
            |spec| match home.as_deref().map(|h| sandbox::resolve_grant(spec, h)) {
                Some(Grant::Path {
                    path, read_only, ..
                }) => json!({"grant": spec, "path": path, "read_only": read_only}),
                Some(Grant::Ignored(why)) => json!({"grant": spec, "ignored": why}),
                None => json!({"grant": spec, "ignored": "no HOME"}),
            },
        )
        .collect();
    let v = json!({
        "app": installed_json(inst, &app),
        "runtime": runtime.as_ref().map(|r| installed_json(inst, r)),
        "command": meta.command,
        "permissions": {
            "network": meta.context.shares("network"),
            "ipc": meta.context.shares("ipc"),
            "sockets": meta.context.sockets,
            "devices": meta.context.devices,
            "filesystems": grants,
            "persistent": meta.context.persistent,
            "environment": meta.environment.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        },
        "data": home.map(|h| sandbox::data_dir(&h, &app.id)),
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{}", app.flatpak_ref());
    println!("  Commit:   {}", app.commit);
    if let Some(p) = app.previous {
        println!("  Previous: {p}");
    }
    println!("  Origin:   {}", app.origin);
    if let Some(n) = installed_size(inst, &app.commit) {
        println!("  Size:     {n} bytes");
    }
    match &runtime {
        Some(r) => println!("  Runtime:  {} ({})", r.flatpak_ref(), short(&r.commit)),
        None => println!(
            "  Runtime:  {:?} (not installed)",
            meta.runtime.map(|r| r.triple())
        ),
    }
    println!(
        "  Command:  {}",
        meta.command.as_deref().unwrap_or("(none)")
    );
    println!("  Permissions:");
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    println!(
        "    network:     {}",
        yes_no(meta.context.shares("network"))
    );
    println!("    ipc:         {}", yes_no(meta.context.shares("ipc")));
    let list = |v: &[String]| {
        if v.is_empty() {
            "(none)".to_owned()
        } else {
            v.join(" ")
        }
    };
    println!("    sockets:     {}", list(&meta.context.sockets));
    println!("    devices:     {}", list(&meta.context.devices));
    for g in &v["permissions"]["filesystems"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        match (g.get("path"), g.get("ignored")) {
            (Some(p), _) => println!(
                "    filesystem:  {} ({})",
                p.as_str().unwrap_or_default(),
                if g["read_only"] == true {
                    "read-only"
                } else {
                    "read-write"
                }
            ),
            (_, Some(why)) => println!("    not granted: {}", why.as_str().unwrap_or_default()),
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn publish(repo: &Repo, a: &AppPublishArgs) -> Result<ExitCode> {
    let p = publish::publish(
        repo,
        &a.dir,
        &PublishOptions {
            arch: a
                .arch
                .clone()
                .unwrap_or_else(|| flatpak_ref::default_arch().to_owned()),
            branch: a.branch.clone(),
            subject: a.subject.clone(),
            timestamp: a.timestamp,
        },
    )?;
    let what = match p.metadata.kind {
        Kind::App => "app",
        Kind::Runtime => "runtime",
    };
    println!(
        "published {what} {} as commit {} ({} bytes of files)",
        p.flatpak_ref, p.commit, p.installed_size
    );
    Ok(ExitCode::SUCCESS)
}
