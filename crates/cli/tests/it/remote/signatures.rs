//! Signatures against an independent ed25519 (python3's `cryptography`),
//! and what a pull refuses: unsigned, unknown or revoked signers, a
//! commit bound to another ref, a downgrade.

use std::ffi::OsStr;
use std::fs;
use std::process::Command;

use crate::common::dev_server::DevServer;
use crate::common::publish::*;
use crate::common::*;

/// Debian's python3, which has `cryptography` (pyenv's may not).
const PYTHON: &str = "/usr/bin/python3";

/// `genkey`: prints a new secret key file line (base64 of seed ‖ public)
/// and the public key. `check-key KEYFILE PRINTED`: the file's public half
/// is its seed's public key and what keygen printed. `signs KEYFILE DATA
/// SIGFILE`: the seed's signature of DATA appears verbatim in SIGFILE.
/// `verify PUB DATA SIGFILE`: some 64 bytes of SIGFILE are a signature of
/// DATA by PUB (found without parsing GVariant).
const SCRIPT: &str = r#"
import base64, sys
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

def raw_public(priv):
    return priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

def seed_key(path):
    raw = base64.b64decode(open(path).read().strip())
    assert len(raw) == 64, f"a secret key file holds 64 bytes, not {len(raw)}"
    priv = Ed25519PrivateKey.from_private_bytes(raw[:32])
    assert raw_public(priv) == raw[32:], "the public half does not match the seed"
    return priv

cmd, args = sys.argv[1], sys.argv[2:]
if cmd == "genkey":
    priv = Ed25519PrivateKey.generate()
    seed = priv.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    print(base64.b64encode(seed + raw_public(priv)).decode())
    print(base64.b64encode(raw_public(priv)).decode())
elif cmd == "check-key":
    printed = base64.b64encode(raw_public(seed_key(args[0]))).decode()
    assert printed == args[1], f"keygen printed {args[1]}, the seed gives {printed}"
elif cmd == "signs":
    sig = seed_key(args[0]).sign(open(args[1], "rb").read())
    assert sig in open(args[2], "rb").read(), "the signature is not in the file"
elif cmd == "verify":
    pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(args[0]))
    data, blob = open(args[1], "rb").read(), open(args[2], "rb").read()
    found = 0
    for i in range(len(blob) - 63):
        try:
            pub.verify(blob[i:i + 64], data)
            found += 1
        except InvalidSignature:
            pass
    assert found, "no signature by that key in the file"
else:
    sys.exit(f"unknown command {cmd}")
print("ok")
"#;

#[track_caller]
fn have_cryptography() -> bool {
    let found = Command::new(PYTHON)
        .args([
            "-c",
            "import cryptography.hazmat.primitives.asymmetric.ed25519",
        ])
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        skip(&format!(
            "{PYTHON} with the cryptography package is not installed"
        ));
    }
    found
}

fn python<S: AsRef<OsStr>>(args: impl IntoIterator<Item = S>) -> Run {
    run(Command::new(PYTHON).args(["-c", SCRIPT]).args(args))
}

/// strata's keys and signatures are ed25519 as python3's cryptography
/// does it: the same public key from the seed, the same (deterministic)
/// signature bytes, and signatures that verify with the public key alone.
#[test]
fn strata_signatures_verify_with_python() {
    if !have_cryptography() {
        return;
    }
    let p = Publish::with_files();
    let c = p.publish(TIMESTAMP);
    let commit = object_path(&p.server, &c, "commit");
    let meta = object_path(&p.server, &c, "commitmeta");
    python([
        "check-key".as_ref(),
        p.key.secret.as_os_str(),
        p.key.public.as_ref(),
    ])
    .ok();
    python([
        "signs".as_ref(),
        p.key.secret.as_os_str(),
        commit.as_os_str(),
        meta.as_os_str(),
    ])
    .ok();
    python([
        "verify".as_ref(),
        p.key.public.as_ref(),
        commit.as_os_str(),
        meta.as_os_str(),
    ])
    .ok();
    let summary = p.server.join("summary");
    let sig = p.server.join("summary.sig");
    python([
        "verify".as_ref(),
        p.key.public.as_ref(),
        summary.as_os_str(),
        sig.as_os_str(),
    ])
    .ok();
    // And the check can fail: the commit is not signed by another key.
    let other = keygen(&p.path("other.sec"));
    python([
        "verify".as_ref(),
        other.public.as_ref(),
        commit.as_os_str(),
        meta.as_os_str(),
    ])
    .failed();
}

/// A key made by python3's cryptography signs with strata; python verifies
/// the signature, and so does strata's pull.
#[test]
fn python_key_signs_with_strata() {
    if !have_cryptography() {
        return;
    }
    let p = Publish::with_files();
    let out = python(["genkey"]).ok();
    let mut lines = out.stdout.lines();
    let (secret, public) = (
        lines.next().expect("a secret key line"),
        lines.next().expect("a public key line"),
    );
    let key = Key {
        secret: p.path("py.sec"),
        public: public.to_owned(),
    };
    fs::write(&key.secret, format!("{secret}\n")).expect("write the key file");

    let c = commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, None);
    sign(&p.server, BRANCH, &key);
    update_summary(&p.server, Some(&key));
    let commit = object_path(&p.server, &c, "commit");
    let meta = object_path(&p.server, &c, "commitmeta");
    python([
        "verify".as_ref(),
        key.public.as_ref(),
        commit.as_os_str(),
        meta.as_os_str(),
    ])
    .ok();

    let server = DevServer::start(&p.server);
    p.add_remote(server.url(), &["--sign-pubkey", &key.public])
        .ok();
    let r = p.pull(&[]).ok();
    assert!(
        r.stdout.contains(&format!("signed by {}", key.public)),
        "{r:#?}"
    );
    assert_eq!(p.client_ref().as_deref(), Some(c.as_str()));
}

#[test]
fn unsigned_commit_refused() {
    let p = Publish::with_files();
    let c = commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, None);
    update_summary(&p.server, Some(&p.key));
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    p.pull_refused(&[], &[&c, "not signed"]);
}

#[test]
fn unknown_signer_refused() {
    let p = Publish::with_files();
    let other = keygen(&p.path("other.sec"));
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());

    // The summary signed by a stranger.
    commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, Some(&p.key));
    update_summary(&p.server, Some(&other));
    p.pull_refused(&[], &["summary", "trusted key"]);

    // The commit signed by a stranger.
    write_files(&p.tree, &[("etc/hostname", "v2\n")]);
    let c = commit_at(&p.server, BRANCH, &p.tree, LATER, Some(&other));
    update_summary(&p.server, Some(&p.key));
    p.pull_refused(&[], &[&c, "trusted key"]);
}

/// A revoked key's signature is refused even though a key file trusts the
/// key; another trusted signature on the same commit is accepted.
#[test]
fn revoked_signer_refused() {
    let p = Publish::with_files();
    let other = keygen(&p.path("other.sec"));
    let trusted = p.path("trusted.pub");
    let revoked = p.path("revoked.pub");
    fs::write(
        &trusted,
        format!("# release keys\n{}\n{}\n", p.key.public, other.public),
    )
    .expect("write trusted keys");
    fs::write(&revoked, format!("{}\n", p.key.public)).expect("write revoked keys");

    let c = commit_at(&p.server, BRANCH, &p.tree, TIMESTAMP, Some(&p.key));
    update_summary(&p.server, Some(&other));
    let server = DevServer::start(&p.server);
    p.add_remote(
        server.url(),
        &[
            "--sign-pubkey-file",
            &trusted.to_string_lossy(),
            "--sign-revoked-file",
            &revoked.to_string_lossy(),
        ],
    )
    .ok();
    p.pull_refused(&[], &[&c, "revoked"]);

    sign(&p.server, BRANCH, &other);
    let r = p.pull(&[]).ok();
    assert!(
        r.stdout.contains(&format!("signed by {}", other.public)),
        "{r:#?}"
    );
    assert_eq!(p.client_ref().as_deref(), Some(c.as_str()));
}

#[test]
fn remote_without_key_refused() {
    let p = Publish::with_files();
    let r = p.add_remote("http://127.0.0.1:9/", &[]).failed();
    assert!(r.stderr.contains("--no-sign-verify"), "{r:#?}");
    let list = on(&p.client, ["remote", "list"]).ok();
    assert!(!list.stdout.contains(REMOTE), "{list:#?}");
    // With the explicit opt-out it is accepted, and listed as unverified.
    p.add_remote("http://127.0.0.1:9/", &["--no-sign-verify"])
        .ok();
    let list = on(&p.client, ["remote", "list"]).ok();
    assert!(list.stdout.contains("unverified"), "{list:#?}");
}

/// The server swaps branches: os/stable points at a commit made (and
/// signed) for os/other. The signature is good; the binding is not.
#[test]
fn commit_bound_to_another_ref_refused() {
    let p = Publish::with_files();
    let c = commit_at(&p.server, "os/other", &p.tree, TIMESTAMP, Some(&p.key));
    write_head(&p.server, BRANCH, &c);
    update_summary(&p.server, Some(&p.key));
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    p.pull_refused(&[], &[&c, "bound", "os/other"]);
}

#[test]
fn downgrade_refused_unless_allowed() {
    let p = Publish::with_files();
    let v1 = p.publish(TIMESTAMP);
    let server = DevServer::start(&p.server);
    p.add_trusting_remote(server.url());
    p.pull(&[]).ok();
    write_files(&p.tree, &[("etc/hostname", "v2\n")]);
    let v2 = p.publish(LATER);
    p.pull(&[]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(v2.as_str()));

    write_head(&p.server, BRANCH, &v1);
    update_summary(&p.server, Some(&p.key));
    let r = p.pull(&[]).failed();
    assert!(r.stderr.contains("downgrade"), "{r:#?}");
    assert_eq!(p.client_ref().as_deref(), Some(v2.as_str()), "ref moved");

    p.pull(&["--allow-downgrade"]).ok();
    assert_eq!(p.client_ref().as_deref(), Some(v1.as_str()));
    p.fsck_client();
}
