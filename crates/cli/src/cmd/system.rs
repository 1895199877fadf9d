//! Commands on the machine: sysroot init, deploy, status, upgrade, switch,
//! rollback, cleanup, etc-diff, kargs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use indicatif::BinaryBytes;
use strata_sysroot::Sysroot;
use strata_sysroot::deploy::DeployReport;
use strata_sysroot::upgrade::{UpgradeOptions, UpgradeOutcome};

use crate::args::{
    DeployArgs, FinalizeStagedArgs, InstallArgs, KargsArgs, PrepareTreeArgs, StatusArgs,
    SwitchArgs, SysrootInitArgs, UpgradeArgs,
};
use crate::progress::Bar;
use crate::time::format_rfc3339;

pub fn init(root: &Path, SysrootInitArgs { esp, root_karg }: &SysrootInitArgs) -> Result<ExitCode> {
    let s = Sysroot::init(root, esp.as_deref(), root_karg.as_deref())?;
    eprintln!(
        "sysroot ready at {} (ESP {})",
        root.display(),
        s.esp().path().display()
    );
    Ok(ExitCode::SUCCESS)
}

pub(super) fn print_deployed(r: &DeployReport) {
    println!(
        "deployed {} as the default (boot entry generation {})",
        r.id.rel_path(),
        r.generation
    );
    if r.tries > 0 {
        println!(
            "boot counting: {} tries; if none completes a boot, the machine falls back to the previous deployment",
            r.tries
        );
    }
    if let Some(m) = &r.merge {
        println!(
            "/etc merge: {} modified, {} added, {} removed kept from the machine; {} conflicts",
            m.modified,
            m.added,
            m.removed,
            m.conflicts.len()
        );
        for c in &m.conflicts {
            println!("  conflict: {c}");
        }
        for p in &m.problems {
            println!("  not carried over in full: {p}");
        }
    }
}

pub fn deploy(
    root: &Path,
    stateroot: &str,
    DeployArgs { target, kargs }: &DeployArgs,
) -> Result<ExitCode> {
    let mut s = Sysroot::open(root)?;
    s.set_relayer(super::layer::relayer());
    let kargs = (!kargs.is_empty()).then(|| kargs.to_vec());
    let bar = Bar::on_terminal();
    let r = s.deploy_target(stateroot, target, kargs, &bar);
    bar.finish();
    print_deployed(&r?);
    Ok(ExitCode::SUCCESS)
}

pub fn status(root: &Path, &StatusArgs { json }: &StatusArgs) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    let st = s.status()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&st)?);
        return Ok(ExitCode::SUCCESS);
    }
    if st.deployments.is_empty() {
        println!("no deployments");
    }
    if let Some(policy) = st.update_policy {
        let policy = serde_json::to_value(policy)?;
        let last = match &st.last_update {
            Some(u) => format!(
                "; last run {}: {}{}",
                format_rfc3339(u.time),
                u.result,
                u.version
                    .as_deref()
                    .map(|v| format!(" (version {v})"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        println!("Updates: policy {}{last}", policy.as_str().unwrap_or("?"));
    }
    if let Some(f) = &st.finalize_failure {
        println!(
            "Finalize failed: {} at {}: {}",
            f.deployment,
            format_rfc3339(f.time),
            f.error
        );
    }
    for d in &st.deployments {
        let mut marks = Vec::new();
        if d.booted {
            marks.push("booted");
        }
        if d.default {
            marks.push("default");
        }
        if d.rollback {
            marks.push("rollback");
        }
        if d.failed.is_some() {
            marks.push("failed");
        }
        if d.staged {
            marks.push("staged: finalized at shutdown");
        }
        println!(
            "{} {} {}.{} [{}]",
            if d.booted { "*" } else { " " },
            d.stateroot,
            d.commit,
            d.serial,
            marks.join(", ")
        );
        if let Some(v) = &d.version {
            println!("    Version: {v}");
        }
        println!(
            "    Origin:  {}",
            d.refspec
                .as_deref()
                .unwrap_or("(none: deployed from a checksum)")
        );
        println!("    Date:    {}", format_rfc3339(d.timestamp));
        if !d.subject.is_empty() {
            println!("    Subject: {}", d.subject);
        }
        if !d.kargs.is_empty() {
            println!("    Kargs:   {}", d.kargs.join(" "));
        }
        match (d.boot_state, d.tries_left) {
            (Some("trial"), Some(left)) => {
                println!("    Boot:    on trial, {left} tries left (blessed once a boot completes)")
            }
            (Some("bad"), _) => {
                println!("    Boot:    bad: no tries left; the machine falls back from it")
            }
            _ => {}
        }
        if let Some(f) = &d.failed {
            println!("    Failed:  {} ({})", f.reason, format_rfc3339(f.time));
        }
        if let Some(base) = &d.base_commit {
            println!("    Base:    {base}");
            println!("    Layered: {}", d.layered.join(" "));
        }
        match d.live {
            Some("live") => println!(
                "    Live:    a newer deployment's /usr is mounted over this one's until the next boot (--apply-live)"
            ),
            Some("usr-overlay") => println!(
                "    Live:    /usr is a writable overlay; changes vanish at the next boot (strata usr-overlay)"
            ),
            _ => {}
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn upgrade(
    root: &Path,
    stateroot: &str,
    &UpgradeArgs {
        check,
        allow_failed,
        stage,
        allow_expired_summary,
    }: &UpgradeArgs,
) -> Result<ExitCode> {
    let mut s = Sysroot::open(root)?;
    s.set_relayer(super::layer::relayer());
    let bar = Bar::on_terminal();
    let opts = UpgradeOptions {
        check_only: check,
        commit_only: check,
        allow_failed,
        stage,
        allow_expired_summary,
    };
    let outcome = s.upgrade(stateroot, &opts, &bar);
    bar.finish();
    match outcome? {
        UpgradeOutcome::UpToDate(c) => {
            println!("up to date at {c}");
            // As `rpm-ostree upgrade --check`: 77 tells scripts "nothing new".
            if check {
                return Ok(ExitCode::from(77));
            }
        }
        UpgradeOutcome::Available { from, to } => println!("update available: {from} -> {to}"),
        UpgradeOutcome::Staged { id, dropped, .. } => {
            super::layer::print_dropped(&dropped);
            println!(
                "staged {}: /etc is merged and the boot entry written at shutdown",
                id.rel_path()
            );
            start_finalize_unit(&s)?;
        }
        UpgradeOutcome::Deployed {
            report, dropped, ..
        } => {
            super::layer::print_dropped(&dropped);
            print_deployed(&report);
            println!("reboot to use it; `strata rollback` goes back");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// On the running machine, starts the unit whose stop finalizes the
/// staged deployment; elsewhere says how to finish it.
fn start_finalize_unit(s: &Sysroot) -> Result<()> {
    if !s.is_running_system() {
        println!(
            "not the running system: finish it with `strata --sysroot {} finalize-staged`",
            s.root().display()
        );
        return Ok(());
    }
    super::systemd::start_finalize_unit()?;
    println!("reboot to use it");
    Ok(())
}

pub fn finalize_staged(
    root: &Path,
    &FinalizeStagedArgs { check }: &FinalizeStagedArgs,
) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    if check {
        return Ok(match s.finalize_failure() {
            Some(f) => {
                eprintln!(
                    "strata: the staged deployment {} failed to finalize at shutdown ({}): {}; the previous default booted",
                    f.deployment,
                    format_rfc3339(f.time),
                    f.error
                );
                ExitCode::FAILURE
            }
            None => ExitCode::SUCCESS,
        });
    }
    match s.finalize_staged() {
        Ok(Some(r)) => print_deployed(&r),
        Ok(None) => println!("nothing is staged"),
        Err(e) => {
            return Err(anyhow::Error::from(e)
                .context("finalizing the staged deployment failed; the previous default stays"));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn switch(
    root: &Path,
    stateroot: &str,
    SwitchArgs { refspec }: &SwitchArgs,
) -> Result<ExitCode> {
    let mut s = Sysroot::open(root)?;
    s.set_relayer(super::layer::relayer());
    let bar = Bar::on_terminal();
    let r = s.switch(stateroot, refspec, None, &bar);
    bar.finish();
    print_deployed(&r?);
    Ok(ExitCode::SUCCESS)
}

pub fn rollback(root: &Path) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    let (new, old) = s.rollback()?;
    println!(
        "default is now {} (was {}); reboot to use it",
        new.rel_path(),
        old.rel_path()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn cleanup(root: &Path) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    let r = s.cleanup()?;
    println!(
        "removed {} deployment(s), {} boot entr{}, {} kernel(s), {} staging leftover(s), {} objects ({})",
        r.deployments_removed.len(),
        r.entries_removed,
        if r.entries_removed == 1 { "y" } else { "ies" },
        r.kernels_removed.len(),
        r.staging_removed,
        r.objects_removed,
        BinaryBytes(r.bytes_freed)
    );
    Ok(ExitCode::SUCCESS)
}

pub fn etc_diff(root: &Path) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    for (c, p) in s.etc_diff()? {
        println!("{c}    /etc/{p}");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn kargs(root: &Path, KargsArgs { append, delete }: &KargsArgs) -> Result<ExitCode> {
    let s = Sysroot::open(root)?;
    println!("{}", s.change_kargs(append, delete)?.join(" "));
    Ok(ExitCode::SUCCESS)
}

pub fn prepare_tree(PrepareTreeArgs { dir, prepare_root }: &PrepareTreeArgs) -> Result<ExitCode> {
    let exe = std::env::current_exe()?;
    let beside = |name: &str| exe.parent().map(|d| d.join(name));
    let helper = match prepare_root.as_deref() {
        Some(p) => p.to_owned(),
        None => [beside("strata-prepare-root.static"), beside("strata-prepare-root"), Some("/usr/lib/strata/strata-prepare-root".into())]
            .into_iter()
            .flatten()
            .find(|p| p.is_file())
            .ok_or_else(|| anyhow::anyhow!("no strata-prepare-root found beside {}; build it with scripts/build-prepare-root or pass --prepare-root", exe.display()))?,
    };
    let p = strata_boot::prepare_tree::run(dir, &exe, &helper)?;
    if !p.initramfs_rebuilt {
        eprintln!(
            "warning: {} has no initramfs-tools (usr/sbin/update-initramfs): its initramfs was kept as it is, without strata's hook, and boots a strata deployment only if it already runs strata-prepare-root",
            dir.display()
        );
    }
    println!(
        "{} is bootable with kernel {}; commit it with `strata commit --bootable`",
        dir.display(),
        p.kernel_version
    );
    Ok(ExitCode::SUCCESS)
}

/// `repo` is the global --repo, the source when --source-repo is not given.
pub fn install(a: &InstallArgs, repo: Option<&Path>, stateroot: &str) -> Result<ExitCode> {
    use strata_sysroot::install::{InstallOptions, Source, install_disk, install_into};
    let source = Source {
        repo: a.source_repo.clone().or_else(|| repo.map(Path::to_owned)),
        remote: a.remote.clone().map(|url| (url, a.sign_pubkey.clone())),
    };
    let opts = InstallOptions {
        source,
        ref_name: a.ref_name.clone(),
        kargs: a.kargs.clone(),
        stateroot: stateroot.to_owned(),
    };
    let bar = Bar::on_terminal();
    let r = match (&a.disk, &a.target_sysroot, &a.target_esp) {
        (Some(disk), _, _) => install_disk(disk, a.size, &opts, &bar),
        (None, Some(root), Some(esp)) => install_into(root, esp, &a.root_karg, None, &opts, &bar),
        _ => anyhow::bail!("give --disk PATH, or --target-sysroot DIR with --target-esp DIR"),
    };
    bar.finish();
    let r = r?;
    println!(
        "installed {} (boot entry generation {})",
        r.id.rel_path(),
        r.generation
    );
    Ok(ExitCode::SUCCESS)
}
