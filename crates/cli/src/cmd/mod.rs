//! One function per command: turn arguments into a library call and print
//! the result. Decisions belong to the libraries; what is chosen here is
//! only which sysroot and repository the arguments name.

mod app;
mod export;
mod health;
mod inspect;
mod layer;
mod maintain;
mod publish;
mod system;
mod systemd;
mod toolbox;
mod update;
mod write;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use strata_store::Repo;
use strata_sysroot::Sysroot;

use crate::args::{
    AppCommand, Cli, Command, LayerCommand, RemoteCommand, SysrootCommand, ToolboxCommand,
};

pub fn run(cli: Cli) -> Result<ExitCode> {
    let sysroot = cli.sysroot.clone().unwrap_or_else(Sysroot::default_root);
    // Without --repo, repository commands work on the sysroot's repository
    // (so `strata remote add` on a machine needs no path).
    let repo_path = || -> Result<PathBuf> {
        if let Some(r) = &cli.repo {
            return Ok(r.clone());
        }
        if let Some(machine) = Sysroot::repo_path(&sysroot) {
            return Ok(machine);
        }
        anyhow::bail!("no repository given: pass --repo PATH or set STRATA_REPO")
    };
    let open = || -> Result<Repo> { Ok(Repo::open(&repo_path()?)?) };
    match &cli.command {
        Command::Init(a) => write::init(
            cli.repo
                .as_deref()
                .context("no repository given: pass --repo PATH or set STRATA_REPO")?,
            a,
        ),
        Command::Commit(a) => write::commit(&open()?, a),
        Command::Checkout(a) => write::checkout(&open()?, a),
        Command::Export(a) => export::export(&open()?, a),
        Command::RevParse(a) => inspect::rev_parse(&open()?, a),
        Command::Log(a) => inspect::log(&open()?, a),
        Command::Ls(a) => inspect::ls(&open()?, a),
        Command::Cat(a) => inspect::cat(&open()?, a),
        Command::Show(a) => inspect::show(&open()?, a),
        Command::Diff(a) => inspect::diff(&open()?, a),
        Command::Refs(a) => inspect::refs(&open()?, a),
        Command::Fsck(a) => maintain::fsck(&open()?, a),
        Command::Keygen(a) => publish::keygen(a),
        Command::Sign(a) => publish::sign(&open()?, a),
        Command::Summary(a) => publish::summary(&open()?, a),
        Command::Remote(RemoteCommand::Add(a)) => publish::remote_add(&mut open()?, a),
        Command::Remote(RemoteCommand::List(a)) => publish::remote_list(&open()?, a),
        Command::Remote(RemoteCommand::Delete(a)) => publish::remote_delete(&mut open()?, a),
        Command::Pull(a) => publish::pull(&open()?, a),
        Command::Serve(a) => publish::serve(&open()?, a),
        Command::Sysroot(SysrootCommand::Init(a)) => system::init(&sysroot, a),
        Command::PrepareTree(a) => system::prepare_tree(a),
        Command::Install(a) => system::install(a, cli.repo.as_deref(), &cli.stateroot),
        Command::Deploy(a) => system::deploy(&sysroot, &cli.stateroot, a),
        Command::Status(a) => system::status(&sysroot, a),
        Command::Upgrade(a) => system::upgrade(&sysroot, &cli.stateroot, a),
        Command::Switch(a) => system::switch(&sysroot, &cli.stateroot, a),
        Command::Rollback => system::rollback(&sysroot),
        Command::Cleanup => system::cleanup(&sysroot),
        Command::EtcDiff => system::etc_diff(&sysroot),
        Command::Kargs(a) => system::kargs(&sysroot, a),
        Command::HealthCheck(a) => health::check(&sysroot, a),
        Command::FinalizeStaged(a) => system::finalize_staged(&sysroot, a),
        Command::AutoUpdate => update::auto_update(&sysroot, &cli.stateroot),
        Command::Prune(a) => maintain::prune(&open()?, a),
        Command::Layer(LayerCommand::Add(a)) => layer::add(&sysroot, a),
        Command::Layer(LayerCommand::Remove(a)) => layer::remove(&sysroot, a),
        Command::Layer(LayerCommand::List(a)) => layer::list(&sysroot, a),
        Command::UsrOverlay => layer::usr_overlay(&sysroot),
        Command::Toolbox(c) => {
            // The repository only when a commit is exported.
            let repo = || -> Result<Repo> { open() };
            match c {
                ToolboxCommand::Create(a) => toolbox::create(&sysroot, &repo, a),
                ToolboxCommand::Enter(a) => toolbox::enter(a),
                ToolboxCommand::Run(a) => toolbox::run(a),
                ToolboxCommand::List(a) => toolbox::list(a),
                ToolboxCommand::Rm(a) => toolbox::rm(a),
            }
        }
        Command::App(c) => {
            // Publishing works on --repo; the rest on the sysroot's apps.
            let inst = || app::installation(&sysroot, &cli.stateroot);
            match c {
                AppCommand::Publish(a) => app::publish(&open()?, a),
                AppCommand::Install(a) => app::install(&inst()?, a),
                AppCommand::Run(a) => app::run(&inst()?, a),
                AppCommand::List(a) => app::list(&inst()?, a),
                AppCommand::Update(a) => app::update(&inst()?, a),
                AppCommand::Rollback(a) => app::rollback(&inst()?, a),
                AppCommand::Remove(a) => app::remove(&inst()?, a),
                AppCommand::Info(a) => app::info(&inst()?, a),
            }
        }
    }
}
