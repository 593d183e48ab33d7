//! Generates the linker memory map for the selected board and embeds the trusted public keys.
//!
//! Keys come from the PEM files listed in `FWSIGN_TRUSTED_KEYS` (separated by `,`), by
//! default `target/dev-keys/ed25519.pem` and `target/dev-keys/p256.pem` of the workspace (the
//! ones whose algorithm the build enables). A key whose algorithm is not enabled is an error.
//! Private (PKCS#8, SEC1) and public (SubjectPublicKeyInfo) PEM files are accepted; only the
//! public key is embedded.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use pkcs8::der::{Decode, asn1::OctetStringRef};
use verifier_core::PublicKey;

const ED25519_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");

fn main() {
    println!("cargo:rerun-if-env-changed=FWSIGN_TRUSTED_KEYS");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return; // host build: an empty `main`, nothing to link or embed
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = selected_board();
    fs::write(out.join("memory.x"), board.bootloader_memory_x()).expect("write memory.x");
    fs::write(out.join("device.x"), "").expect("write device.x"); // interrupts: boards::interrupts
    println!("cargo:rustc-link-search={}", out.display());
    // No page alignment: keeps the ELF headers out of the loaded image.
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    if feature("DEFMT") {
        println!("cargo:rustc-link-arg-bins=-Tdefmt.x");
    }
    let algorithms = Algorithms { ed25519: feature("ED25519"), p256: feature("P256") };
    if !algorithms.ed25519 && !algorithms.p256 {
        panic!("enable at least one signature algorithm feature: ed25519, p256");
    }
    let keys: Vec<PublicKey> =
        key_paths(&algorithms).iter().map(|path| algorithms.check(path, load(path))).collect();
    if keys.is_empty() {
        panic!("no trusted keys: FWSIGN_TRUSTED_KEYS lists no PEM file");
    }
    fs::write(out.join("trusted_keys.rs"), render(&keys)).expect("write trusted_keys.rs");
}

fn selected_board() -> boards::Board {
    let enabled: Vec<_> = boards::ALL
        .into_iter()
        .chain(boards::BENCH)
        .filter(|b| {
            env::var_os(format!("CARGO_FEATURE_{}", b.name.to_uppercase().replace('-', "_")))
                .is_some()
        })
        .collect();
    match enabled.as_slice() {
        [board] => *board,
        _ => panic!(
            "enable exactly one board feature (mps2-an386, mps2-an385, mps2-an505, nrf52840dk, mps2-an386-bench)"
        ),
    }
}

fn feature(name: &str) -> bool {
    env::var_os(format!("CARGO_FEATURE_{name}")).is_some()
}

/// The signature algorithms this build verifies.
struct Algorithms {
    ed25519: bool,
    p256: bool,
}

impl Algorithms {
    /// `key`, if this build can verify its signatures; a build error naming the key otherwise.
    fn check(&self, path: &Path, key: PublicKey) -> PublicKey {
        let (enabled, feature) = match key {
            PublicKey::Ed25519(_) => (self.ed25519, "ed25519"),
            PublicKey::P256(_) => (self.p256, "p256"),
        };
        if !enabled {
            panic!(
                "trusted key {}: this build cannot verify its signatures: enable the `{feature}` feature or leave the key out of FWSIGN_TRUSTED_KEYS",
                path.display()
            );
        }
        key
    }
}

/// `FWSIGN_TRUSTED_KEYS`, or the development key of each enabled algorithm.
fn key_paths(algorithms: &Algorithms) -> Vec<PathBuf> {
    if let Ok(list) = env::var("FWSIGN_TRUSTED_KEYS") {
        return list.split(',').filter(|p| !p.is_empty()).map(PathBuf::from).collect();
    }
    let manifest =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let dev_keys = manifest.join("../../target/dev-keys");
    [(algorithms.ed25519, "ed25519.pem"), (algorithms.p256, "p256.pem")]
        .into_iter()
        .filter(|(enabled, _)| *enabled)
        .map(|(_, name)| dev_keys.join(name))
        .collect()
}

fn load(path: &Path) -> PublicKey {
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "trusted key {}: {e}\nCreate development keys with `cargo xtask keys`, or list PEM files in FWSIGN_TRUSTED_KEYS",
            path.display()
        )
    });
    public_key(&text).unwrap_or_else(|e| panic!("trusted key {}: {e}", path.display()))
}

fn public_key(pem: &str) -> Result<PublicKey, String> {
    let (label, der) =
        pkcs8::der::pem::decode_vec(pem.as_bytes()).map_err(|e| format!("not a PEM file: {e}"))?;
    match label {
        "PUBLIC KEY" => PublicKey::from_spki_der(&der)
            .ok_or_else(|| "not an Ed25519 or P-256 public key".into()),
        "PRIVATE KEY" => {
            let info =
                pkcs8::PrivateKeyInfoRef::try_from(der.as_slice()).map_err(|e| e.to_string())?;
            if info.algorithm.oid == ED25519_OID {
                let seed = <&OctetStringRef>::from_der(info.private_key.as_bytes())
                    .map_err(|e| e.to_string())?;
                let seed = ed25519_compact::Seed::from_slice(seed.as_bytes())
                    .map_err(|e| e.to_string())?;
                Ok(PublicKey::Ed25519(*ed25519_compact::KeyPair::from_seed(seed).pk))
            } else {
                use p256::pkcs8::DecodePrivateKey;
                let key = p256::SecretKey::from_pkcs8_der(&der)
                    .map_err(|e| format!("not Ed25519 or P-256: {e}"))?;
                Ok(p256_public(&key))
            }
        }
        "EC PRIVATE KEY" => {
            Ok(p256_public(&p256::SecretKey::from_sec1_der(&der).map_err(|e| e.to_string())?))
        }
        other => Err(format!("unexpected PEM label {other:?}: expected a private or public key")),
    }
}

fn p256_public(key: &p256::SecretKey) -> PublicKey {
    use p256::elliptic_curve::sec1::ToSec1Point;
    let point = key.public_key().as_affine().to_sec1_point(false);
    let mut bytes = [0u8; 65];
    bytes.copy_from_slice(point.as_bytes());
    PublicKey::P256(bytes)
}

fn render(keys: &[PublicKey]) -> String {
    let mut out = format!(
        "/// Keys embedded from PEM files at build time.\nstatic TRUSTED_KEYS: [TrustedKey; {}] = [\n",
        keys.len()
    );
    for key in keys {
        let (variant, bytes): (&str, &[u8]) = match key {
            PublicKey::Ed25519(b) => ("Ed25519", b),
            PublicKey::P256(b) => ("P256", b),
        };
        let _ = writeln!(out, "    TrustedKey::new(PublicKey::{variant}({bytes:?})),");
    }
    out.push_str("];\n");
    out
}
