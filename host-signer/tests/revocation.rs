//! `fwsign sign --revoke-key`: the protected REVOKE_KEYS TLV, against imgtool and the verifier.
//!
//! imgtool writes the same TLV with `--custom-tlv 0xa3 …`, so the two images must be
//! byte-identical, and imgtool must verify fwsign's. The attacker's side: the TLV added outside
//! the signed region is refused, not ignored.

#![allow(clippy::unwrap_used)]

mod common;

use common::{fwsign, fwsign_status, imgtool, keys, pseudo_random_bytes, text};
use fwsign_keys::keys::{NoPassword, load_key};
use verifier_core::format::tlv;
use verifier_core::{Policy, PublicKey, RevokedKey, SliceReader, TrustedKey, verify_image};

const SIGN: &[&str] = &["sign", "-v", "1.0.0", "-H", "0x200", "-S", "0x20000", "--pad-header"];

fn sign_args<'a>(key: &'a str, extra: &[&'a str], output: &'a str) -> Vec<&'a str> {
    let mut args = SIGN.to_vec();
    args.extend_from_slice(&["-k", key, "-s", "2"]);
    args.extend_from_slice(extra);
    args.extend_from_slice(&["in.bin", output]);
    args
}

#[test]
fn revoke_key_matches_imgtool_custom_tlv_and_imgtool_verifies_it() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(3000, 16)).unwrap();
    let key = keys().path("ed.pem");
    let hash = [0x5a_u8; 32];
    let hash_hex = fwsign_keys::hex(&hash);
    let value: Vec<u8> = [RevokedKey::Slot(1), RevokedKey::SpkiSha256(hash)]
        .iter()
        .flat_map(RevokedKey::encode)
        .collect();
    let custom = format!("0x{}", fwsign_keys::hex(&value));
    fwsign(dir, &sign_args(&key, &["--revoke-key", "1", "--revoke-key", &hash_hex], "fw.bin"));
    imgtool(dir, &sign_args(&key, &["--custom-tlv", "0xa3", &custom], "imgtool.bin"));
    let image = std::fs::read(dir.join("fw.bin")).unwrap();
    assert_eq!(image, std::fs::read(dir.join("imgtool.bin")).unwrap());
    imgtool(dir, &["verify", "-k", &key, "fw.bin"]);

    let public = load_key(std::path::Path::new(&key), &NoPassword).unwrap();
    // The signing key in slot 0: an image naming its own slot would be refused.
    let keys = [TrustedKey::new(public.public_key()), TrustedKey::new(PublicKey::Ed25519([0; 32]))];
    let verified = verify_image(&mut SliceReader::new(&image), &keys, &Policy::default()).unwrap();
    assert_eq!(verified.revocations().keys(), [RevokedKey::Slot(1), RevokedKey::SpkiSha256(hash)]);

    let dump = fwsign(dir, &["dumpinfo", "--format", "json", "fw.bin"]);
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(dump.contains("REVOKE_KEYS"), "{dump}");
    assert!(dump.contains("\"slot\": 1") || dump.contains("\"slot\":1"), "{dump}");
    assert!(dump.contains(&hash_hex), "{dump}");
}

#[test]
fn bad_revoke_key_values_are_refused_naming_the_option_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(100, 1)).unwrap();
    let key = keys().path("ed.pem");
    let five = ["--revoke-key", "0", "--revoke-key", "1", "--revoke-key", "2", "--revoke-key", "3"];
    let cases: [(&[&str], &str); 5] = [
        (&["--revoke-key", "255"], "--revoke-key"),
        (&["--revoke-key", "slot1"], "key slot 0..=254"),
        (&["--revoke-key", &"0g".repeat(32)], "64 hex digits"),
        (&[&five[..], &["--revoke-key", "4"]].concat(), "more than 4 times"),
        (&["--custom-tlv", "0xa3", "0x00"], "--revoke-key"),
    ];
    for (extra, expected) in cases {
        let output = fwsign_status(dir, &sign_args(&key, extra, "out.bin"));
        assert!(!output.status.success(), "{extra:?} was accepted");
        assert!(text(&output).contains(expected), "{extra:?}: {}", text(&output));
        assert!(!dir.join("out.bin").exists(), "{extra:?} left an output");
    }
}

#[test]
fn a_revocation_added_outside_the_signed_region_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(500, 2)).unwrap();
    let key = keys().path("ed.pem");
    fwsign(dir, &sign_args(&key, &[], "plain.bin"));
    let mut image = std::fs::read(dir.join("plain.bin")).unwrap();
    let value = RevokedKey::Slot(0).encode();
    host_signer::image::append_unprotected_tlv(&mut image, tlv::REVOKE_KEYS, &value).unwrap();
    std::fs::write(dir.join("forged.bin"), &image).unwrap();
    let output = fwsign_status(dir, &["verify", "-k", &key, "forged.bin"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("TLV 0x00a3 is not allowed in the unprotected area"),
        "{}",
        text(&output)
    );
}

#[test]
fn sign_for_a_device_refuses_an_image_revoking_its_own_key() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(200, 3)).unwrap();
    let (old, new) = (keys().path("ed.pem"), keys().path("ec.pem"));
    let profile = format!(
        "board = \"sim\"\n[slot]\nsize = 0x20000\nsector_size = 0x1000\naddress = 0x20000\n\
         header_size = 0x200\nalign = 4\nmax_align = 8\nerased_value = 0xff\n[rules]\n\
         security_counter = \"required\"\nallowed_flags = []\n[keys]\ntrusted = [\"{old}\", \"{new}\"]\n"
    );
    std::fs::write(dir.join("device.toml"), profile).unwrap();
    let sign = |key: &str, slot: &str| {
        let args = ["sign", "--device", "device.toml", "-k", key, "-v", "2.0.0", "-s", "2"];
        let args = [&args[..], &["--pad-header", "--revoke-key", slot, "in.bin", "out.bin"]];
        fwsign_status(dir, &args.concat())
    };
    let output = sign(&new, "1");
    assert!(!output.status.success(), "{}", text(&output));
    assert!(
        text(&output)
            .contains("--revoke-key: image revokes trusted key #1, the key that signed it"),
        "{}",
        text(&output)
    );
    assert!(!dir.join("out.bin").exists());
    // Signed by the new key (slot 1), revoking the old one (slot 0): a rotation image.
    let output = sign(&new, "0");
    assert!(output.status.success(), "{}", text(&output));
    fwsign(dir, &["verify", "--device", "device.toml", "out.bin"]);
}
