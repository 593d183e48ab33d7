//! `--device`: the signer, the verifier and the bootloader agree on what a device boots.
//!
//! The slot-fit limit is refused by `fwsign sign --device` and `fwsign verify --device` alike,
//! naming the limit; and a few hundred generated images get the same verdict from
//! `fwsign verify --device` as from the bootloader's decision on simulated flash, revoked keys
//! and images revoking keys (their own included) among them.

mod common;

use std::path::PathBuf;

use bootloader::sim::SimFlash;
use bootloader::{BootError, BootLoader, Config, Layout, Region, SignatureValidator, TrustedKey};
use common::{fwsign, fwsign_status, pseudo_random_bytes, text};
use device_profile::Profile;
use verifier_core::{SliceReader, read_header, tlv::TlvLayout};

const SLOT: u32 = 0x2_0000;
const SECTOR: u32 = 0x1000;
const LIMIT: u32 = SLOT - SECTOR;
type Flash = SimFlash<4, 0x1000>;

fn layout() -> Layout {
    Layout {
        primary: Region::new(0, SLOT),
        secondary: Region::new(SLOT, SLOT),
        scratch: Region::new(2 * SLOT, SECTOR),
        state: Region::new(2 * SLOT + SECTOR, 3 * SECTOR),
        sector_size: SECTOR,
    }
}

/// A directory with two trusted keys, a revoked one, an untrusted one and a profile trusting
/// the first two and revoking the third.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(security_counter: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, kind) in [
            ("ed.pem", "ed25519"),
            ("p256.pem", "ecdsa-p256"),
            ("old.pem", "ed25519"),
            ("other.pem", "ed25519"),
        ] {
            fwsign(dir.path(), &["keygen", "-k", name, "-t", kind]);
        }
        let profile = format!(
            "board = \"sim\"\n[slot]\nsize = {SLOT:#x}\nsector_size = {SECTOR:#x}\naddress = 0x20000\nheader_size = 0x200\nalign = 4\nmax_align = 8\nerased_value = 0xff\n[rules]\nsecurity_counter = \"{security_counter}\"\nallowed_flags = [\"ROM_FIXED\"]\n[keys]\ntrusted = [\"ed.pem\", \"p256.pem\"]\nrevoked = [\"old.pem\"]\n"
        );
        std::fs::write(dir.path().join("device.toml"), profile).expect("write profile");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn profile(&self) -> Profile {
        Profile::load(&self.path("device.toml")).expect("profile")
    }

    fn payload(&self, name: &str, len: usize) -> String {
        std::fs::write(self.path(name), pseudo_random_bytes(len, len as u64))
            .expect("write payload");
        name.to_owned()
    }
}

/// Header, payload and TLVs of `image`.
fn image_len(image: &[u8]) -> u32 {
    let mut reader = SliceReader::new(image);
    let header = read_header(&mut reader).expect("header");
    TlvLayout::locate(&mut reader, &header).expect("tlvs").end
}

/// Payload length giving an image of exactly `target` bytes with `options`.
fn payload_for(setup: &Setup, options: &[&str], target: u32) -> usize {
    let probe = setup.payload("probe.bin", 100);
    let mut args = vec!["sign", "-H", "0x200", "-S", "0x20000", "--pad-header"];
    args.extend_from_slice(options);
    args.extend_from_slice(&[&probe, "probe.img"]);
    fwsign(setup.dir.path(), &args);
    let overhead = image_len(&std::fs::read(setup.path("probe.img")).expect("probe")) - 100;
    (target - overhead) as usize
}

#[test]
fn one_byte_over_the_slot_limit_is_refused_by_sign_and_verify_naming_the_limit() {
    let setup = Setup::new("required");
    let options = ["-k", "ed.pem", "-v", "1.0.0", "-s", "1"];
    let fits = setup.payload("fits.bin", payload_for(&setup, &options, LIMIT));
    let over = setup.payload("over.bin", payload_for(&setup, &options, LIMIT) + 1);
    let sign = |input: &str, output: &str| {
        let mut args = vec!["sign", "--device", "device.toml", "--pad-header"];
        args.extend_from_slice(&options);
        args.extend_from_slice(&[input, output]);
        fwsign_status(setup.dir.path(), &args)
    };
    assert!(sign(&fits, "fits.img").status.success(), "{}", text(&sign(&fits, "fits.img")));
    let verified =
        fwsign_status(setup.dir.path(), &["verify", "--device", "device.toml", "fits.img"]);
    assert!(verified.status.success(), "{}", text(&verified));

    let refused = sign(&over, "over.img");
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    assert!(text(&refused).contains(&format!("at most {LIMIT:#x}")), "{}", text(&refused));
    assert!(!setup.path("over.img").exists(), "nothing is written");

    // Without --device the signer allows it (imgtool's trailer estimate)...
    let mut args = vec!["sign", "-H", "0x200", "-S", "0x20000", "--pad-header"];
    args.extend_from_slice(&options);
    args.extend_from_slice(&[&over, "over.img"]);
    fwsign(setup.dir.path(), &args);
    // ...but the device does not, and verify --device says so.
    let refused =
        fwsign_status(setup.dir.path(), &["verify", "--device", "device.toml", "over.img"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains(&format!("at most {LIMIT:#x}")), "{}", text(&refused));
    let image = std::fs::read(setup.path("over.img")).expect("image");
    let keys = trusted_keys(&setup);
    let boot = boot(&setup.profile(), &keys, &image);
    assert_eq!(boot.err(), Some(BootError::NothingBootable(bootloader::Refusal::TooLarge)));
}

#[test]
fn a_security_counter_is_demanded_by_sign_when_the_device_requires_one() {
    let setup = Setup::new("required");
    let input = setup.payload("app.bin", 1000);
    let args = ["sign", "--device", "device.toml", "--pad-header", "-k", "ed.pem", "-v", "1.0.0"];
    let refused = fwsign_status(setup.dir.path(), &[&args[..], &[&input, "app.img"]].concat());
    assert!(
        text(&refused).contains("this device requires one: sign with -s N"),
        "{}",
        text(&refused)
    );

    let key_outside = fwsign_status(
        setup.dir.path(),
        &["verify", "--device", "device.toml", "-k", "other.pem", "app.img"],
    );
    assert_eq!(key_outside.status.code(), Some(2));
    assert!(text(&key_outside).contains("not one of the trusted keys"), "{}", text(&key_outside));
}

#[test]
fn a_device_with_provisioned_keys_gets_only_images_carrying_the_full_public_key() {
    let setup = Setup::new("optional");
    let profile = std::fs::read_to_string(setup.path("device.toml")).expect("profile");
    let provisioned = profile.replace("[keys]\n", "[keys]\nsource = \"provisioned\"\n");
    std::fs::write(setup.path("device.toml"), provisioned).expect("write profile");
    let input = setup.payload("app.bin", 1000);
    let args = ["sign", "--device", "device.toml", "--pad-header", "-k", "ed.pem", "-v", "1.0.0"];

    let by_hash = fwsign_status(setup.dir.path(), &[&args[..], &[&input, "hash.img"]].concat());
    assert!(!by_hash.status.success());
    assert!(text(&by_hash).contains("sign with --public-key-format full"), "{}", text(&by_hash));
    assert!(!setup.path("hash.img").exists(), "a refused image is not written");

    let full = ["--public-key-format", "full", &input, "full.img"];
    fwsign(setup.dir.path(), &[&args[..], &full[..]].concat());
    fwsign(setup.dir.path(), &["verify", "--device", "device.toml", "full.img"]);

    // An image naming its key by hash, signed without --device, is refused by verify --device
    // as the device would refuse it.
    let plain = ["sign", "-k", "ed.pem", "-v", "1.0.0", "-H", "0x200", "-S", "0x20000"];
    fwsign(setup.dir.path(), &[&plain[..], &["--pad-header", &input, "hash.img"]].concat());
    let judged =
        fwsign_status(setup.dir.path(), &["verify", "--device", "device.toml", "hash.img"]);
    assert_eq!(judged.status.code(), Some(1), "{}", text(&judged));
    assert!(text(&judged).contains("no signature by a trusted key"), "{}", text(&judged));
}

/// The keys a bootloader built from the profile embeds: the trusted ones, then the revoked.
fn trusted_keys(setup: &Setup) -> Vec<TrustedKey> {
    use fwsign_keys::keys::{NoPassword, load_key};
    let key = |name: &str| load_key(&setup.path(name), &NoPassword).expect("key").public_key();
    vec![
        TrustedKey::new(key("ed.pem")),
        TrustedKey::new(key("p256.pem")),
        TrustedKey::revoked(key("old.pem")),
    ]
}

/// `fwsign getpub -e hash` of key `name`: what `--revoke-key` takes for a key by hash.
fn key_hash(setup: &Setup, name: &str) -> String {
    let output = fwsign(setup.dir.path(), &["getpub", "-k", name, "-e", "hash"]);
    String::from_utf8(output.stdout).expect("hex").trim().to_owned()
}

/// The bootloader's decision for `image` in the primary slot of a new device.
fn boot(profile: &Profile, keys: &[TrustedKey], image: &[u8]) -> Result<(), BootError> {
    let capacity = (2 * SLOT + 4 * SECTOR) as usize;
    let mut flash = Flash::new(capacity);
    flash.program(0, &image[..image.len().min(SLOT as usize)]);
    let mut loader = BootLoader::new(&mut flash, layout(), Config::default()).expect("layout");
    loader.boot(&mut SignatureValidator::new(keys, profile.rules())).map(|_| ())
}

#[test]
fn verify_device_and_the_bootloader_agree_on_generated_images() {
    let (mut accepted, mut refused, mut total, mut own_key) = (0, 0, 0, 0);
    for rule in ["required", "optional"] {
        let setup = Setup::new(rule);
        let profile = setup.profile();
        let keys = trusted_keys(&setup);
        let counters: [&[&str]; 3] = [&[], &["-s", "0"], &["-s", "3"]];
        let flags: [&[&str]; 5] = [
            &[],
            &["--non-bootable"],
            &["-F", "0x20000"],
            &["-F", "0x40000"],
            &["-L", "0x20000000"],
        ];
        let signers: [&[&str]; 5] =
            [&["-k", "ed.pem"], &["-k", "p256.pem"], &["-k", "old.pem"], &["-k", "other.pem"], &[]];
        // None; the Ed25519 key's slot (its own for the first signer); the P-256 key by hash.
        let p256_hash = key_hash(&setup, "p256.pem");
        let revokes: [&[&str]; 3] = [&[], &["--revoke-key", "0"], &["--revoke-key", &p256_hash]];
        for (c, counter) in counters.iter().enumerate() {
            for (f, flag) in flags.iter().enumerate() {
                for (k, signer) in signers.iter().enumerate() {
                    let revoke = revokes[(c + 2 * f + k) % revokes.len()];
                    let options = [&["-v", "1.2.3"][..], counter, flag, signer, revoke].concat();
                    let sizes: &[isize] = if k < 2 { &[-1, 0, 1] } else { &[0] };
                    for delta in sizes {
                        let len = if *delta == 0 && (c + f + k) % 2 == 0 {
                            600 + 37 * (c + f + k)
                        } else {
                            payload_for(&setup, &options, LIMIT).saturating_add_signed(*delta)
                        };
                        let name = format!("{rule}-{c}-{f}-{k}-{delta}");
                        let input = setup.payload(&format!("{name}.bin"), len);
                        let output = format!("{name}.img");
                        let mut args = vec!["sign", "-H", "0x200", "-S", "0x20000", "--pad-header"];
                        args.extend_from_slice(&options);
                        args.extend_from_slice(&[&input, &output]);
                        fwsign(setup.dir.path(), &args);
                        let host = fwsign_status(
                            setup.dir.path(),
                            &["verify", "--device", "device.toml", &output],
                        );
                        let image = std::fs::read(setup.path(&output)).expect("image");
                        let device = boot(&profile, &keys, &image);
                        assert_eq!(
                            host.status.code() == Some(0),
                            device.is_ok(),
                            "{name} {options:?}: verify says {}, the bootloader {device:?}",
                            text(&host)
                        );
                        assert!(matches!(host.status.code(), Some(0 | 1)), "{}", text(&host));
                        own_key += usize::from(text(&host).contains("the key that signed it"));
                        if device.is_ok() {
                            accepted += 1
                        } else {
                            refused += 1
                        }
                        total += 1;
                    }
                }
            }
        }
    }
    assert!(total >= 180, "{total} images");
    assert!(own_key >= 4, "only {own_key} images revoking their own key");
    assert!(accepted >= 10 && refused >= 100, "accepted {accepted}, refused {refused}");
}
