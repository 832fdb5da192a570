//! Ed25519 keys and detached signatures for bundles.
//!
//! Keys are PEM: the private key as PKCS#8 (`BEGIN PRIVATE KEY`, written mode 0600) and
//! the public key as SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`). That is what OpenSSL
//! uses, so an air-gapped site can check a signature with
//! `openssl pkeyutl -verify -pubin -inkey rune.pub -rawin -in SHA256SUMS -sigfile SHA256SUMS.sig`
//! without trusting any binary from the bundle. A signature is the raw 64 bytes.

use crate::{Error, Result};
use ed25519_dalek::pkcs8::{spki::der::pem::LineEnding, DecodePrivateKey, DecodePublicKey};
use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use std::path::Path;

/// A new key pair as (private PEM, public PEM), from the operating system's randomness.
///
/// # Errors
/// [`Error::Invalid`] if the OS has no randomness to give or the key cannot be encoded.
pub fn generate() -> Result<(String, String)> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::Invalid(format!("no OS randomness for a key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let private = key.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::Invalid(format!("encoding the key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::Invalid(format!("encoding the public key: {e}")))?;
    Ok((private.to_string(), public))
}

/// Reads a PKCS#8 PEM private key.
///
/// # Errors
/// [`Error::Io`] when unreadable; [`Error::Invalid`] naming the file when it is not an
/// ed25519 private key (e.g. the public key was given by mistake).
pub fn read_signing_key(path: &Path) -> Result<SigningKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: not an ed25519 private key in PKCS#8 PEM ({e}); create one with `rune airgap keygen`",
            path.display()
        ))
    })
}

/// Reads a SubjectPublicKeyInfo PEM public key.
///
/// # Errors
/// As [`read_signing_key`], for public keys.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    VerifyingKey::from_public_key_pem(&text).map_err(|e| {
        Error::Invalid(format!(
            "{}: not an ed25519 public key in PEM ({e}); use the .pub file from `rune airgap keygen`",
            path.display()
        ))
    })
}

/// Signs `data`: the raw 64-byte signature.
pub fn sign(key: &SigningKey, data: &[u8]) -> Vec<u8> {
    key.sign(data).to_bytes().to_vec()
}

/// Checks `signature` over `data`.
///
/// # Errors
/// [`Error::Verification`] when the signature is malformed or does not match.
pub fn verify(key: &VerifyingKey, data: &[u8], signature: &[u8]) -> Result<()> {
    let bytes: [u8; 64] = signature.try_into().map_err(|_| {
        Error::Verification(format!("signature is {} bytes, an ed25519 signature is 64", signature.len()))
    })?;
    key.verify(data, &Signature::from_bytes(&bytes))
        .map_err(|_| Error::Verification("the signature does not match this public key and content".into()))
}

/// Writes a file readable by its owner only (private keys).
///
/// # Errors
/// [`Error::Io`] naming the file; refuses to overwrite an existing file.
pub fn write_private(path: &Path, content: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    file.write_all(content.as_bytes()).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_through_pem_files() {
        let tmp = tempfile::tempdir().unwrap();
        let (private, public) = generate().unwrap();
        assert!(private.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(public.starts_with("-----BEGIN PUBLIC KEY-----"));
        write_private(&tmp.path().join("k"), &private).unwrap();
        std::fs::write(tmp.path().join("k.pub"), &public).unwrap();
        let key = read_signing_key(&tmp.path().join("k")).unwrap();
        let pubkey = read_verifying_key(&tmp.path().join("k.pub")).unwrap();
        let sig = sign(&key, b"content");
        verify(&pubkey, b"content", &sig).unwrap();
        assert!(matches!(verify(&pubkey, b"contenT", &sig), Err(Error::Verification(_))));
        assert!(verify(&pubkey, b"content", &sig[..10]).unwrap_err().to_string().contains("10 bytes"));
        let (_, other_public) = generate().unwrap();
        std::fs::write(tmp.path().join("other.pub"), other_public).unwrap();
        let other = read_verifying_key(&tmp.path().join("other.pub")).unwrap();
        assert!(verify(&other, b"content", &sig).is_err());
    }

    #[test]
    fn wrong_key_files_are_named_in_the_error() {
        let tmp = tempfile::tempdir().unwrap();
        let (private, public) = generate().unwrap();
        std::fs::write(tmp.path().join("pub"), &public).unwrap();
        std::fs::write(tmp.path().join("priv"), &private).unwrap();
        let err = read_signing_key(&tmp.path().join("pub")).unwrap_err().to_string();
        assert!(err.contains("not an ed25519 private key"), "{err}");
        let err = read_verifying_key(&tmp.path().join("priv")).unwrap_err().to_string();
        assert!(err.contains("not an ed25519 public key"), "{err}");
        let err = write_private(&tmp.path().join("priv"), "x").unwrap_err().to_string();
        assert!(err.contains("priv"), "refuses to overwrite: {err}");
    }
}
