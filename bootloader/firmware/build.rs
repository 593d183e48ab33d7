//! Generates the linker memory map for the selected board and embeds its device profile: the
//! boot rules and the trusted and revoked keys.
//!
//! The profile is `FWSIGN_DEVICE_PROFILE` (relative to the workspace root), by default the
//! board's `boards/profiles/<board>.toml`;
//! its slot geometry must match the board's memory map. Its trusted keys (PEM files or SPKI
//! hashes; a PKCS#11 key must be exported to PEM first) are embedded, unless a non-empty
//! `FWSIGN_TRUSTED_KEYS` lists PEM files (separated by `,`) to trust instead, for tests with
//! other keys. A key whose algorithm is not enabled is an error. Private (PKCS#8, SEC1) and
//! public (SubjectPublicKeyInfo) PEM files are accepted; only the public key is embedded.
//! The profile's transparency-log keys are embedded with the `tlog` feature, which a profile
//! listing them requires and a profile without them refuses. With the `provisioned-keys`
//! feature (for a profile saying `[keys] source = "provisioned"`) no signing key is embedded:
//! the bootloader reads them from the device's provisioning record.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use device_profile::{KeySource, KeySpec, Profile};
use pkcs8::der::{Decode, asn1::OctetStringRef};
use verifier_core::PublicKey;
use verifier_core::tlog::LogKey;

const ED25519_OID: pkcs8::ObjectIdentifier = pkcs8::ObjectIdentifier::new_unwrap("1.3.101.112");

fn main() {
    println!("cargo:rerun-if-env-changed=FWSIGN_TRUSTED_KEYS");
    println!("cargo:rerun-if-env-changed=FWSIGN_DEVICE_PROFILE");
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
    let profile = device_profile(&board);
    let keys = if provisioned_keys(&profile) {
        // Read from the provisioning record at every boot.
        format!(
            "/// `[keys] revoke_by_use` of the device profile.\nconst REVOKE_BY_USE: bool = {};\n",
            profile.revoke_by_use
        )
    } else {
        render(&compiled_keys(&profile, &algorithms))
    };
    let code = keys + &render_rules(&profile) + &log_keys(&profile);
    fs::write(out.join("device_profile.rs"), code).expect("write device_profile.rs");
}

/// Whether this build reads its keys from the provisioning record: the `provisioned-keys`
/// feature, which a profile saying `[keys] source = "provisioned"` requires and any other
/// refuses.
fn provisioned_keys(profile: &Profile) -> bool {
    let origin = profile.path.display();
    match (feature("PROVISIONED_KEYS"), profile.key_source) {
        (true, KeySource::Provisioned) => {
            if !profile.revoked_keys.is_empty() {
                panic!(
                    "{origin}: [keys] revoked with source = \"provisioned\": revoke a provisioned key in the device's record"
                );
            }
            true
        }
        (false, KeySource::Compiled) => false,
        (true, KeySource::Compiled) => {
            panic!("{origin}: the `provisioned-keys` feature needs [keys] source = \"provisioned\"")
        }
        (false, KeySource::Provisioned) => panic!(
            "{origin}: [keys] source = \"provisioned\": build with the `provisioned-keys` feature"
        ),
    }
}

/// The trusted and revoked keys embedded in the bootloader.
fn compiled_keys(profile: &Profile, algorithms: &Algorithms) -> Vec<Embedded> {
    let mut keys: Vec<Embedded> = trusted_keys(profile, algorithms);
    if keys.is_empty() {
        panic!("no trusted keys: FWSIGN_TRUSTED_KEYS lists no PEM file");
    }
    for spec in &profile.revoked_keys {
        let KeySpec::Pem(path) = spec else {
            panic!("{}: revoked key {spec}: give it as a PEM file", profile.path.display())
        };
        keys.push(Embedded::Revoked(load(path)));
    }
    keys
}

/// The device profile, checked against the board's memory map.
fn device_profile(board: &boards::Board) -> Profile {
    // A relative path is taken from the workspace root, where `cargo` is usually run.
    let workspace =
        Path::new(&env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it")).join("../..");
    let path = env::var_os("FWSIGN_DEVICE_PROFILE")
        .map_or_else(|| device_profile::shipped(board.name), |p| workspace.join(p));
    println!("cargo:rerun-if-changed={}", path.display());
    let profile = Profile::load(&path).unwrap_or_else(|e| panic!("{e}"));
    board.check_profile(&profile).unwrap_or_else(|e| panic!("{e}"));
    profile
}

/// `FWSIGN_TRUSTED_KEYS`, or the profile's trusted keys.
fn trusted_keys(profile: &Profile, algorithms: &Algorithms) -> Vec<Embedded> {
    if let Ok(list) = env::var("FWSIGN_TRUSTED_KEYS")
        && !list.is_empty()
    {
        let paths = list.split(',').filter(|p| !p.is_empty()).map(PathBuf::from);
        return paths.map(|path| Embedded::Key(algorithms.check(&path, load(&path)))).collect();
    }
    let origin = profile.path.display();
    profile
        .trusted_keys
        .iter()
        .map(|spec| match spec {
            KeySpec::Pem(path) => Embedded::Key(algorithms.check(path, load(path))),
            KeySpec::SpkiSha256(hash) => Embedded::Hash(*hash),
            KeySpec::Pkcs11(uri) => panic!(
                "{origin}: trusted key {uri}: the bootloader embeds public keys: export it with `fwsign getpub -k '{uri}'` and list the PEM file, or its hash (sha256:…)"
            ),
        })
        .collect()
}

/// The log key table for the `tlog` feature; nothing without it.
fn log_keys(profile: &Profile) -> String {
    let origin = profile.path.display();
    match (feature("TLOG"), profile.log_keys.is_empty()) {
        (true, false) => render_log_keys(&profile.log_verifier_keys()),
        (false, true) => String::new(),
        (true, true) => panic!(
            "{origin}: the `tlog` feature needs log verifier keys in [keys] transparency_log"
        ),
        (false, false) => panic!(
            "{origin}: [keys] transparency_log requires log proofs: build with the `tlog` feature"
        ),
    }
}

fn render_log_keys(keys: &[LogKey<'_>]) -> String {
    let mut out = format!(
        "/// Transparency-log verifier keys embedded from the device profile at build time.\nstatic LOG_KEYS: [LogKey<'static>; {}] = [\n",
        keys.len()
    );
    for key in keys {
        let _ = writeln!(
            out,
            "    LogKey::from_parts({:?}, {:?}, {:?}),",
            key.name(),
            key.key_id(),
            key.public_key()
        );
    }
    out.push_str("];\n");
    out
}

/// A key entry of the generated key table.
enum Embedded {
    Key(PublicKey),
    Revoked(PublicKey),
    Hash([u8; 32]),
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

fn load(path: &Path) -> PublicKey {
    println!("cargo:rerun-if-changed={}", path.display());
    let text = fs::read_to_string(path).unwrap_or_else(|e| {
        panic!(
            "trusted key {}: {e}\nCreate development keys with `cargo xtask keys`, or list other keys in the device profile",
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

fn render(keys: &[Embedded]) -> String {
    let mut out = format!(
        "/// Keys embedded from the device profile at build time.\nstatic TRUSTED_KEYS: [TrustedKey; {}] = [\n",
        keys.len()
    );
    for key in keys {
        let _ = match key {
            Embedded::Key(key) => writeln!(out, "    TrustedKey::new({}),", public_key_expr(key)),
            Embedded::Revoked(key) => {
                writeln!(out, "    TrustedKey::revoked({}),", public_key_expr(key))
            }
            Embedded::Hash(hash) => writeln!(out, "    TrustedKey::from_spki_sha256({hash:?}),"),
        };
    }
    out.push_str("];\n");
    out
}

fn public_key_expr(key: &PublicKey) -> String {
    match key {
        PublicKey::Ed25519(bytes) => format!("bootloader::PublicKey::Ed25519({bytes:?})"),
        PublicKey::P256(bytes) => format!("bootloader::PublicKey::P256({bytes:?})"),
    }
}

fn render_rules(profile: &Profile) -> String {
    let rules = profile.rules();
    format!(
        "/// The device profile's boot rules.\nconst DEVICE_RULES: DeviceRules = DeviceRules {{ require_security_counter: {}, allowed_flags: {:#x}, run_address: {:#x} }};\n",
        rules.require_security_counter, rules.allowed_flags, rules.run_address
    )
}
