//! Commands that read: rev-parse, log, ls, cat, show, diff, refs.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use serde_json::json;
use strata_store::diff::diff_commits;
use strata_store::gvariant::Value;
use strata_store::tree::{Entry, Listed};
use strata_store::{Checksum, Commit, RefName, Repo};

use crate::args::{CatArgs, DiffArgs, LsArgs, RefsArgs, RevArgs, ShowArgs};
use crate::time::{format_human, format_rfc3339};

pub fn rev_parse(repo: &Repo, RevArgs { rev }: &RevArgs) -> Result<ExitCode> {
    println!("{}", repo.resolve_rev(rev)?);
    Ok(ExitCode::SUCCESS)
}

fn print_commit(out: &mut impl Write, checksum: &Checksum, c: &Commit) -> std::io::Result<()> {
    writeln!(out, "commit {checksum}")?;
    if let Some(p) = c.parent {
        writeln!(out, "Parent:  {p}")?;
    }
    writeln!(out, "ContentChecksum:  {}", c.content_checksum())?;
    writeln!(out, "Date:  {}", format_human(c.timestamp))?;
    if let Some(v) = c.version() {
        writeln!(out, "Version: {v}")?;
    }
    writeln!(out)?;
    if c.subject.is_empty() {
        writeln!(out, "    (no subject)")?;
    } else {
        writeln!(out, "    {}", c.subject)?;
    }
    if !c.body.is_empty() {
        writeln!(out)?;
        for line in c.body.lines() {
            writeln!(out, "    {line}")?;
        }
    }
    writeln!(out)
}

pub fn log(repo: &Repo, RevArgs { rev }: &RevArgs) -> Result<ExitCode> {
    let mut cur = Some(repo.resolve_rev(rev)?);
    let mut out = std::io::stdout().lock();
    while let Some(c) = cur {
        if !repo.has_object(&c, strata_store::ObjectType::Commit) {
            writeln!(out, "<< History beyond this commit not fetched >>")?;
            break;
        }
        let commit = repo.load_commit(&c)?;
        print_commit(&mut out, &c, &commit)?;
        cur = commit.parent;
    }
    Ok(ExitCode::SUCCESS)
}

fn mode_string(mode: u32) -> String {
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        _ => '-',
    };
    format!("{kind}{:05o}", mode & 0o7777)
}

pub fn ls(
    repo: &Repo,
    LsArgs {
        rev,
        path,
        recursive,
    }: &LsArgs,
) -> Result<ExitCode> {
    let c = repo.resolve_rev(rev)?;
    let mut out = std::io::stdout().lock();
    for item in repo.list(&c, path, *recursive)? {
        match item {
            Listed::Dir { path, meta } => writeln!(
                out,
                "{} {} {} {:>6} {path}",
                mode_string(meta.mode),
                meta.uid,
                meta.gid,
                0
            )?,
            Listed::File { path, header, size } => {
                write!(
                    out,
                    "{} {} {} {:>6} {path}",
                    mode_string(header.mode),
                    header.uid,
                    header.gid,
                    size
                )?;
                if header.is_symlink() {
                    write!(out, " -> {}", header.symlink_target)?;
                }
                writeln!(out)?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn cat(repo: &Repo, CatArgs { rev, path }: &CatArgs) -> Result<ExitCode> {
    let c = repo.resolve_rev(rev)?;
    let (entry, canonical) = repo.resolve(&c, path)?;
    let Entry::File(f) = entry else {
        bail!("{path} is a directory in commit {c} (resolved to {canonical})");
    };
    let (_, content) = repo.load_file(&f)?;
    std::io::stdout().lock().write_all(&content)?;
    Ok(ExitCode::SUCCESS)
}

/// GVariant values as JSON: numbers, strings, arrays; bytes as hex strings.
fn value_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Bool(b) => json!(b),
        Value::Byte(x) => json!(x),
        Value::Int16(x) => json!(x),
        Value::Uint16(x) => json!(x),
        Value::Int32(x) | Value::Handle(x) => json!(x),
        Value::Uint32(x) => json!(x),
        Value::Int64(x) => json!(x),
        Value::Uint64(x) => json!(x),
        Value::Double(x) => json!(x),
        Value::Str(_, s) => json!(s),
        Value::Variant(inner) => value_json(inner),
        Value::Maybe(_, inner) => inner
            .as_deref()
            .map(value_json)
            .unwrap_or(serde_json::Value::Null),
        Value::Bytes(b) => json!(hex::encode(b)),
        Value::Array(_, items) if matches!(items.first(), Some(Value::DictEntry(..))) => {
            let mut m = serde_json::Map::new();
            for item in items {
                if let Value::DictEntry(k, v) = item {
                    let key = k.as_str().map(str::to_owned).unwrap_or_else(|| k.to_text());
                    m.insert(key, value_json(v));
                }
            }
            serde_json::Value::Object(m)
        }
        Value::Array(_, items) | Value::Tuple(items) => items.iter().map(value_json).collect(),
        Value::DictEntry(k, v) => json!([value_json(k), value_json(v)]),
    }
}

pub fn show(repo: &Repo, ShowArgs { rev, json: as_json }: &ShowArgs) -> Result<ExitCode> {
    let checksum = repo.resolve_rev(rev)?;
    let c = repo.load_commit(&checksum)?;
    if *as_json {
        let mut metadata = serde_json::Map::new();
        for (k, v) in &c.metadata {
            metadata.insert(k.clone(), value_json(v));
        }
        let doc = json!({
            "checksum": checksum.to_hex(),
            "parent": c.parent.map(|p| p.to_hex()),
            "subject": c.subject,
            "body": c.body,
            "timestamp": c.timestamp,
            "date": format_rfc3339(c.timestamp),
            "version": c.version(),
            "root_dirtree": c.root_tree.to_hex(),
            "root_dirmeta": c.root_meta.to_hex(),
            "content_checksum": c.content_checksum().to_hex(),
            "ref_bindings": c.ref_bindings(),
            "partial": repo.is_partial(&checksum),
            "metadata": metadata,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    print_commit(&mut out, &checksum, &c)?;
    if !c.metadata.is_empty() {
        writeln!(out, "Metadata:")?;
        for (k, v) in &c.metadata {
            writeln!(out, "  {k}: {}", v.to_text())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn diff(repo: &Repo, DiffArgs { from, to }: &DiffArgs) -> Result<ExitCode> {
    let (a, b) = (repo.resolve_rev(from)?, repo.resolve_rev(to)?);
    let mut out = std::io::stdout().lock();
    for (change, path) in diff_commits(repo, &a, &b)? {
        writeln!(out, "{}    {path}", change.letter())?;
    }
    Ok(ExitCode::SUCCESS)
}

pub fn refs(repo: &Repo, RefsArgs { delete }: &RefsArgs) -> Result<ExitCode> {
    if let Some(r) = delete {
        repo.delete_ref(&RefName::parse(r)?)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    for (r, _) in repo.list_refs()? {
        writeln!(out, "{r}")?;
    }
    Ok(ExitCode::SUCCESS)
}
