//! ed25519 signatures of commits and summaries, in OSTree's format.
//!
//! A commit's signatures live in its detached metadata (`.commitmeta`, an
//! `a{sv}`) under `ostree.sign.ed25519` as `aay`, each a 64-byte signature
//! over the raw commit object bytes. `summary.sig` has the same shape, over
//! the summary bytes. A check passes when any signature verifies with a
//! trusted key that is not revoked.

use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use strata_store::gvariant::{Type, Value};
use strata_store::objects::commit::{metadata_to_value, parse_detached};
use strata_store::{Checksum, ObjectType, Repo, durable};

use crate::error::{Error, Result};

/// The metadata key holding ed25519 signatures.
pub const SIGN_KEY: &str = "ostree.sign.ed25519";

/// The signatures in detached metadata (entries of the wrong size are ignored).
pub fn signatures(detached: &[(String, Value)]) -> Vec<[u8; 64]> {
    detached
        .iter()
        .filter(|(k, _)| k == SIGN_KEY)
        .filter_map(|(_, v)| v.as_array())
        .flatten()
        .filter_map(|s| s.as_bytes().and_then(|b| <[u8; 64]>::try_from(b).ok()))
        .collect()
}

/// Adds a signature of `data` by `key` to detached metadata, keeping what
/// was there (other keys, other signatures). Signing twice adds nothing.
pub fn add_signature(detached: &mut Vec<(String, Value)>, data: &[u8], key: &SigningKey) {
    let sig = key.sign(data).to_bytes();
    let mut sigs = signatures(detached);
    if !sigs.contains(&sig) {
        sigs.push(sig);
    }
    let value = Value::Array(
        Type::Array(Box::new(Type::Byte)),
        sigs.iter().map(|s| Value::Bytes(s.to_vec())).collect(),
    );
    match detached.iter_mut().find(|(k, _)| k == SIGN_KEY) {
        Some((_, v)) => *v = value,
        None => detached.push((SIGN_KEY.to_owned(), value)),
    }
}

/// Serializes detached metadata (`a{sv}`).
pub fn detached_to_bytes(detached: &[(String, Value)]) -> Vec<u8> {
    metadata_to_value(detached).to_bytes()
}

/// Checks that some signature of `data` verifies with a trusted, non-revoked key.
pub fn verify(
    data: &[u8],
    detached: &[(String, Value)],
    trusted: &[VerifyingKey],
    revoked: &[VerifyingKey],
    what: &str,
) -> Result<VerifyingKey> {
    let sigs = signatures(detached);
    if sigs.is_empty() {
        return Err(Error::Signature {
            what: what.to_owned(),
            why: "it is not signed (no ostree.sign.ed25519 signature)".into(),
        });
    }
    let mut revoked_hit = false;
    for s in &sigs {
        let sig = Signature::from_bytes(s);
        for k in trusted {
            if k.verify_strict(data, &sig).is_ok() {
                if revoked.contains(k) {
                    revoked_hit = true;
                } else {
                    return Ok(*k);
                }
            }
        }
    }
    let why = if revoked_hit {
        "it is signed only by a revoked key".to_owned()
    } else {
        format!(
            "none of its {} signature(s) is by a trusted key",
            sigs.len()
        )
    };
    Err(Error::Signature {
        what: what.to_owned(),
        why,
    })
}

/// Signs a commit of `repo` with `key`, adding to its detached metadata.
pub fn sign_commit(repo: &Repo, commit: &Checksum, key: &SigningKey) -> Result<()> {
    let data = repo.read_meta(commit, ObjectType::Commit)?;
    let mut detached = read_detached(repo, commit)?;
    add_signature(&mut detached, &data, key);
    write_detached(repo, commit, &detached)
}

/// The detached metadata of a commit; empty when there is none.
pub fn read_detached(repo: &Repo, commit: &Checksum) -> Result<Vec<(String, Value)>> {
    let path = repo.object_path(commit, ObjectType::CommitMeta);
    match std::fs::read(&path) {
        Ok(bytes) => parse_detached(&bytes)
            .map_err(|e| Error::Store(strata_store::Error::Format { path, source: e })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(source) => Err(Error::Io {
            action: "read",
            path,
            source,
        }),
    }
}

/// Replaces a commit's detached metadata, atomically and durably.
pub fn write_detached(repo: &Repo, commit: &Checksum, detached: &[(String, Value)]) -> Result<()> {
    let path = repo.object_path(commit, ObjectType::CommitMeta);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            action: "create",
            path: dir.to_owned(),
            source,
        })?;
    }
    durable::write_file(&path, &detached_to_bytes(detached), 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        let mut out = [0u8; N];
        hex_decode(s, &mut out);
        out
    }

    fn hex_decode(s: &str, out: &mut [u8]) {
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex");
        }
    }

    /// RFC 8032, section 7.1, tests 1 and 2.
    #[test]
    fn rfc8032_vectors() {
        let vectors = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                "",
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                "72",
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
        ];
        for (sk, pk, msg, sig) in vectors {
            let key = SigningKey::from_bytes(&unhex::<32>(sk));
            assert_eq!(key.verifying_key().to_bytes(), unhex::<32>(pk));
            let mut m = vec![0u8; msg.len() / 2];
            hex_decode(msg, &mut m);
            let mut detached = Vec::new();
            add_signature(&mut detached, &m, &key);
            assert_eq!(signatures(&detached), vec![unhex::<64>(sig)]);
            let vk = key.verifying_key();
            assert!(verify(&m, &detached, &[vk], &[], "m").is_ok());
            assert!(
                verify(&m, &detached, &[vk], &[vk], "m").is_err(),
                "revoked key"
            );
            assert!(
                verify(b"other", &detached, &[vk], &[], "m").is_err(),
                "other data"
            );
        }
    }

    #[test]
    fn unsigned_and_unknown_key_refused() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        assert!(verify(b"x", &[], &[a.verifying_key()], &[], "x").is_err());
        let mut d = Vec::new();
        add_signature(&mut d, b"x", &a);
        add_signature(&mut d, b"x", &a);
        assert_eq!(signatures(&d).len(), 1, "signing twice adds nothing");
        assert!(verify(b"x", &d, &[b.verifying_key()], &[], "x").is_err());
        let bytes = detached_to_bytes(&d);
        assert_eq!(
            signatures(&parse_detached(&bytes).expect("parses")),
            signatures(&d)
        );
    }
}
