//! A [`Signer`] that runs an external program: the escape hatch for cloud KMS, remote
//! signing services and anything else fwsign does not speak to directly.
//!
//! # Protocol
//! The command line is run by the shell (`sh -c`), once per signature:
//! - **stdin**: the bytes to sign: the image digest (32 bytes for SHA-256, 64 for SHA-512),
//!   or for an Ed25519 `--pure` image the whole hashed region.
//! - **environment**:
//!   - `FWSIGN_SIGN_ALGORITHM`: `ed25519` or `ecdsa-p256`;
//!   - `FWSIGN_SIGN_INPUT`: `digest` or `message` (pure images);
//!   - `FWSIGN_SIGN_HASH`: `sha256` or `sha512`, the image hash (the digest's algorithm);
//!   - `FWSIGN_KEY_ID`: what `-k` named;
//!   - `FWSIGN_PUBLIC_KEY`: the public key, base64 DER SubjectPublicKeyInfo.
//! - **stdout**: the signature, raw bytes or base64 text (whitespace ignored). Ed25519: the 64
//!   signature bytes. ECDSA: DER `SEQUENCE { r, s }` or raw `r ‖ s` (64 bytes), as a KMS
//!   returns either. ECDSA is over the digest as given (a prehash: do not hash it again).
//! - **exit status** 0; otherwise the run fails and the program's stderr is shown.
//!
//! The output is accepted only if it verifies with the public key, so a wrong key or a
//! garbled reply is an error, never a broken image.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::Engine as _;
use verifier_core::PublicKey;

use crate::keys::Algorithm;
use crate::signer::{SignError, Signer, ecdsa_raw_to_der, signature_verifies};

/// A [`Signer`] that asks an external command for each signature.
#[derive(Debug, Clone)]
pub struct CommandSigner {
    command: String,
    key_id: String,
    public_key: PublicKey,
}

impl CommandSigner {
    /// A signer running `command` for the key `key_id`, whose public half is `public_key`.
    pub fn new(command: &str, key_id: &str, public_key: PublicKey) -> Self {
        Self { command: command.to_owned(), key_id: key_id.to_owned(), public_key }
    }

    fn error(&self, message: String) -> SignError {
        SignError::Backend { key_id: format!("--sign-cmd '{}'", self.command), message }
    }

    fn run(&self, input: &[u8], kind: &str, hash: &str) -> Result<Vec<u8>, SignError> {
        let algorithm = Algorithm::of(&self.public_key);
        let public_key =
            base64::engine::general_purpose::STANDARD.encode(&*self.public_key.spki_der());
        let mut child = shell(&self.command)
            .env("FWSIGN_SIGN_ALGORITHM", algorithm.name())
            .env("FWSIGN_SIGN_INPUT", kind)
            .env("FWSIGN_SIGN_HASH", hash)
            .env("FWSIGN_KEY_ID", &self.key_id)
            .env("FWSIGN_PUBLIC_KEY", public_key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.error(format!("cannot start: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading its input is judged by its exit status.
            let _ = stdin.write_all(input);
        }
        let output = child
            .wait_with_output()
            .map_err(|e| self.error(format!("waiting for it failed: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let detail = stderr.trim();
            return Err(self.error(format!(
                "exited with {}{}{detail}",
                output.status,
                if detail.is_empty() { "" } else { ": " }
            )));
        }
        self.accept(input, &output.stdout)
    }

    /// Picks the reading of the program's output that verifies.
    fn accept(&self, message: &[u8], stdout: &[u8]) -> Result<Vec<u8>, SignError> {
        let compact: Vec<u8> =
            stdout.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        let decoded = base64::engine::general_purpose::STANDARD.decode(&compact).ok();
        let readings = decoded.into_iter().chain([stdout.to_vec()]);
        for reading in readings {
            let candidate = match self.public_key {
                PublicKey::P256(_) if reading.len() == 64 => ecdsa_raw_to_der(&reading),
                _ => Some(reading),
            };
            if let Some(signature) = candidate
                && signature_verifies(&self.public_key, message, &signature)
            {
                return Ok(signature);
            }
        }
        Err(self.error(format!(
            "its output ({} bytes) is not a {} signature that verifies with the public key of {}",
            stdout.len(),
            Algorithm::of(&self.public_key),
            self.key_id
        )))
    }
}

#[cfg(unix)]
fn shell(command: &str) -> Command {
    let mut shell = Command::new("sh");
    shell.arg("-c").arg(command);
    shell
}

#[cfg(not(unix))]
fn shell(command: &str) -> Command {
    let mut shell = Command::new("cmd");
    shell.arg("/C").arg(command);
    shell
}

impl Signer for CommandSigner {
    fn key_id(&self) -> &str {
        &self.key_id
    }

    fn public_key(&self) -> PublicKey {
        self.public_key
    }

    fn sign_digest(&self, digest: &[u8]) -> Result<Vec<u8>, SignError> {
        let hash = match digest.len() {
            32 => "sha256",
            64 if matches!(self.public_key, PublicKey::Ed25519(_)) => "sha512",
            len => {
                return Err(SignError::DigestLength {
                    key_id: self.key_id.clone(),
                    algorithm: Algorithm::of(&self.public_key),
                    len,
                });
            }
        };
        self.run(digest, "digest", hash)
    }

    fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        match self.public_key {
            PublicKey::Ed25519(_) => self.run(message, "message", "sha512"),
            PublicKey::P256(_) => Err(SignError::Unsupported {
                key_id: self.key_id.clone(),
                algorithm: Algorithm::EcdsaP256,
                what: "a pure signature over the whole image",
            }),
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::keys::PrivateKey;
    use crate::signer::KeyFileSigner;

    fn p256() -> (KeyFileSigner, PublicKey) {
        let key = PrivateKey::generate(Algorithm::EcdsaP256).expect("key");
        let public = key.public_key();
        (KeyFileSigner::new(std::path::Path::new("k.pem"), key), public)
    }

    #[test]
    fn accepts_der_raw_and_base64_but_only_if_it_verifies() {
        let (file_signer, public) = p256();
        let digest = [0x11; 32];
        let der = file_signer.sign_digest(&digest).expect("sign");
        let raw = p256::ecdsa::Signature::from_der(&der).expect("der").to_bytes().to_vec();
        let signer = CommandSigner::new("true", "kms:key", public);
        let base64 = base64::engine::general_purpose::STANDARD.encode(&raw) + "\n";
        for output in [der.clone(), raw, base64.into_bytes()] {
            assert_eq!(signer.accept(&digest, &output).expect("accepted"), der);
        }
        assert!(signer.accept(&[0x22; 32], &der).is_err());
    }

    #[test]
    fn runs_the_command_with_the_protocol_environment() {
        let (_, public) = p256();
        let signer = CommandSigner::new(
            "echo \"$FWSIGN_SIGN_ALGORITHM $FWSIGN_SIGN_INPUT $FWSIGN_SIGN_HASH $FWSIGN_KEY_ID\" >&2; exit 3",
            "kms:key",
            public,
        );
        let error = signer.sign_digest(&[0; 32]).expect_err("fails").to_string();
        assert!(error.contains("ecdsa-p256 digest sha256 kms:key"), "{error}");
        assert!(error.contains("exit status: 3"), "{error}");
    }
}
