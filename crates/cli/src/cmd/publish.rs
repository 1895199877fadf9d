//! Commands that publish and fetch: keygen, sign, summary, remote, pull, serve.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::BinaryBytes;
use strata_remote::keys::SigningKey;
use strata_remote::pull::{self, PullOptions};
use strata_remote::remotes::{self, Remote};
use strata_remote::stall::StallLimit;
use strata_remote::{keys, serve, sign, summary};
use strata_store::Repo;

use crate::args::{
    KeygenArgs, PullArgs, RemoteAddArgs, RemoteDeleteArgs, RemoteListArgs, ServeArgs, SignArgs,
    SummaryArgs,
};
use crate::progress::Bar;

pub fn read_secret_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read secret key file {}", path.display()))?;
    Ok(keys::parse_secret(&text, &path.display().to_string())?)
}

pub fn keygen(KeygenArgs { output }: &KeygenArgs) -> Result<ExitCode> {
    use std::os::unix::fs::OpenOptionsExt;
    let key = keys::generate()?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(output)
        .with_context(|| {
            format!(
                "could not create {} (it must not exist yet)",
                output.display()
            )
        })?;
    f.write_all(keys::format_secret(&key).as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("could not write {}", output.display()))?;
    println!("{}", keys::format_public(&key.verifying_key()));
    Ok(ExitCode::SUCCESS)
}

pub fn sign(repo: &Repo, SignArgs { rev, key }: &SignArgs) -> Result<ExitCode> {
    let key = read_secret_key(key)?;
    let c = repo.resolve_rev(rev)?;
    sign::sign_commit(repo, &c, &key)?;
    Ok(ExitCode::SUCCESS)
}

pub fn summary(repo: &Repo, a: &SummaryArgs) -> Result<ExitCode> {
    let SummaryArgs {
        update,
        sign_key,
        expires_in,
    } = a;
    if !update {
        bail!("nothing to do: pass --update to regenerate the summary");
    }
    let key = sign_key.as_deref().map(read_secret_key).transpose()?;
    let expires = expires_in.map(|d| summary::now().saturating_add(d));
    let s = summary::update(repo, key.as_ref(), expires)?;
    eprintln!(
        "summary lists {} ref(s){}{}",
        s.refs.len(),
        if key.is_some() { ", signed" } else { "" },
        s.expires()
            .map(|t| format!(", expires {}", crate::time::format_rfc3339(t)))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

pub fn remote_add(repo: &mut Repo, a: &RemoteAddArgs) -> Result<ExitCode> {
    let RemoteAddArgs {
        name,
        url,
        sign_pubkey: key,
        sign_pubkey_file: key_file,
        sign_revoked_file: revoked_file,
        no_sign_verify,
        stall_timeout,
        stall_min_speed,
        ignore_summary_expiry,
        no_sign_verify_summary,
    } = a;
    let abs = |p: &Option<PathBuf>| -> Result<Option<PathBuf>> {
        p.as_ref()
            .map(|p| std::path::absolute(p).with_context(|| format!("bad path {}", p.display())))
            .transpose()
    };
    let remote = Remote {
        name: name.to_owned(),
        url: url.to_owned(),
        sign_verify: !*no_sign_verify,
        key: key.clone(),
        key_file: abs(key_file)?,
        revoked_file: abs(revoked_file)?,
        stall: StallLimit {
            window: Duration::from_secs(*stall_timeout),
            min_speed: *stall_min_speed,
        },
        ignore_summary_expiry: *ignore_summary_expiry,
        sign_verify_summary: !*no_sign_verify_summary,
    };
    if let Some(p) = &remote.key_file {
        remote
            .keys()
            .with_context(|| format!("checking key file {}", p.display()))?;
    }
    remotes::add(repo, &remote)?;
    Ok(ExitCode::SUCCESS)
}

pub fn remote_list(repo: &Repo, &RemoteListArgs { json }: &RemoteListArgs) -> Result<ExitCode> {
    let list = remotes::list(repo)?;
    if json {
        let doc: Vec<_> = list
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "url": r.url,
                    "sign_verify": r.sign_verify,
                    "sign_verify_summary": r.sign_verify && r.sign_verify_summary,
                    "ignore_summary_expiry": r.ignore_summary_expiry,
                    "stall_timeout_secs": r.stall.window.as_secs(),
                    "stall_min_speed": r.stall.min_speed,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for r in list {
            let note = match (r.sign_verify, r.sign_verify_summary) {
                (false, _) => "\t(unverified)",
                (true, false) => "\t(summary unverified)",
                (true, true) => "",
            };
            println!("{}\t{}{note}", r.name, r.url);
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn remote_delete(
    repo: &mut Repo,
    RemoteDeleteArgs { name }: &RemoteDeleteArgs,
) -> Result<ExitCode> {
    remotes::delete(repo, name)?;
    Ok(ExitCode::SUCCESS)
}

pub fn pull(repo: &Repo, a: &PullArgs) -> Result<ExitCode> {
    let &PullArgs {
        ref remote,
        ref ref_name,
        depth,
        commit,
        allow_downgrade,
        concurrency,
        stall_timeout,
        allow_expired_summary,
    } = a;
    let progress = Bar::on_terminal();
    let start = Instant::now();
    let opts = PullOptions {
        commit_only: false,
        remote: remote.clone(),
        ref_name: ref_name.clone(),
        depth,
        commit,
        allow_downgrade,
        concurrency,
        stall_timeout: stall_timeout.map(Duration::from_secs),
        allow_expired_summary,
    };
    let result = pull::run(repo, &opts, &progress);
    progress.finish();
    let r = result?;
    let secs = start.elapsed().as_secs_f64();
    if r.up_to_date {
        println!("{remote}:{ref_name} is up to date at {}", r.commit);
    } else {
        println!(
            "{remote}:{ref_name} {} -> {}: {} objects, {} in {secs:.2} s{}",
            r.previous
                .map(|p| p.to_hex()[..12].to_owned())
                .unwrap_or_else(|| "(new)".into()),
            r.commit,
            r.objects_fetched,
            BinaryBytes(r.bytes_fetched),
            r.signed_by
                .map(|k| format!(", signed by {k}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn serve(repo: &Repo, ServeArgs { listen }: &ServeArgs) -> Result<ExitCode> {
    serve::run(repo.path(), listen, |addr| {
        eprintln!(
            "serving {} on http://{addr}/ (development server; press Ctrl-C to stop)",
            repo.path().display()
        );
    })?;
    Ok(ExitCode::SUCCESS)
}
