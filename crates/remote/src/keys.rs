//! ed25519 keys in OSTree's formats: a secret key is the base64 of 64 bytes
//! (seed ‖ public key, as libsodium keeps it), a public key the base64 of
//! 32 bytes; key files hold one base64 key per line.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
/// The key types of this API, re-exported so users need not depend on
/// ed25519-dalek themselves (and cannot pick a mismatched version).
pub use ed25519_dalek::{SigningKey, VerifyingKey};

use crate::error::{Error, Result};

/// A new random secret key (seed from the kernel's CSPRNG).
pub fn generate() -> Result<SigningKey> {
    let mut seed = [0u8; 32];
    fill_random(&mut seed)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Fills `buf` from getrandom(2), which needs no /dev (an initramfs or a
/// chroot may lack it) and waits only until the pool is first seeded.
fn fill_random(mut buf: &mut [u8]) -> Result<()> {
    while !buf.is_empty() {
        match rustix::rand::getrandom(&mut *buf, rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => buf = &mut buf[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => {
                return Err(Error::Io {
                    action: "read random bytes from",
                    path: "getrandom(2)".into(),
                    source: e.into(),
                });
            }
        }
    }
    Ok(())
}

/// The secret key file text: base64 of seed ‖ public key, and a newline.
pub fn format_secret(key: &SigningKey) -> String {
    format!("{}\n", STANDARD.encode(key.to_keypair_bytes()))
}

/// The keys a remote's signatures are checked against: a signature by a
/// trusted key that is not revoked.
#[derive(Debug, Clone, Default)]
pub struct TrustedKeys {
    /// Keys whose signature is accepted.
    pub trusted: Vec<VerifyingKey>,
    /// Keys refused even when also listed in `trusted`.
    pub revoked: Vec<VerifyingKey>,
}

/// The public key as base64.
pub fn format_public(key: &VerifyingKey) -> String {
    STANDARD.encode(key.as_bytes())
}

/// Reads a secret key: base64 of 64 bytes (seed ‖ public, checked to
/// match) or of a bare 32-byte seed. `what` names the source for errors.
pub fn parse_secret(text: &str, what: &str) -> Result<SigningKey> {
    let bad = |why: &str| Error::Key {
        what: what.to_owned(),
        why: why.to_owned(),
    };
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| bad("no key in it"))?;
    let bytes = STANDARD.decode(line).map_err(|_| bad("not base64"))?;
    match bytes.len() {
        64 => {
            let arr: [u8; 64] = bytes.try_into().map_err(|_| bad("not 64 bytes"))?;
            SigningKey::from_keypair_bytes(&arr)
                .map_err(|_| bad("the public half does not match the seed"))
        }
        32 => {
            let arr: [u8; 32] = bytes.try_into().map_err(|_| bad("not 32 bytes"))?;
            Ok(SigningKey::from_bytes(&arr))
        }
        n => Err(bad(&format!(
            "a secret key is 64 bytes (seed and public key), this is {n}"
        ))),
    }
}

/// Reads one public key given as base64.
pub fn parse_public(b64: &str, what: &str) -> Result<VerifyingKey> {
    let bad = |why: String| Error::Key {
        what: what.to_owned(),
        why,
    };
    let bytes = STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("not base64".into()))?;
    let arr: [u8; 32] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| bad(format!("a public key is 32 bytes, this is {}", b.len())))?;
    VerifyingKey::from_bytes(&arr).map_err(|_| bad("not a valid ed25519 point".into()))
}

/// Reads a key file: one base64 public key per line; blank lines and `#` comments skipped.
pub fn parse_public_file(text: &str, what: &str) -> Result<Vec<VerifyingKey>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_public(l, what))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_round_trip_and_public() {
        let k = generate().expect("random");
        let text = format_secret(&k);
        let back = parse_secret(&text, "test").expect("parses");
        assert_eq!(back.to_keypair_bytes(), k.to_keypair_bytes());
        let pubs = parse_public_file(
            &format!("# comment\n{}\n\n", format_public(&k.verifying_key())),
            "t",
        )
        .expect("parses");
        assert_eq!(pubs, vec![k.verifying_key()]);
        assert!(parse_secret("AAAA", "t").is_err());
        // 64 bytes whose public half does not match the seed.
        let mut bytes = k.to_keypair_bytes();
        bytes[40] ^= 1;
        assert!(parse_secret(&STANDARD.encode(bytes), "t").is_err());
    }
}
