//! Key files and offline signing, interchanged with imgtool 2.5.0 in both directions.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::Path;

use base64::Engine as _;
use common::{fwsign, fwsign_status, imgtool, imgtool_python, keys, pseudo_random_bytes, text};

const SIGN: &[&str] =
    &["sign", "-v", "2.0.1", "-H", "0x200", "--pad-header", "-S", "0x10000", "-s", "auto"];

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sign_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    SIGN.iter().copied().chain(extra.iter().copied()).collect()
}

#[test]
fn getpub_matches_imgtool_for_imgtool_keys() {
    let k = keys();
    let dir = k.dir.path();
    for key in ["ed.pem", "ec.pem", "ed-pub.pem", "ec-pub.pem"] {
        let pairs: [(&[&str], &[&str]); 5] = [
            (&["getpub", "-k", key], &["getpub", "-k", key]),
            (
                &["getpub", "-k", key, "-e", "lang-c"],
                &["getpub", "-k", key, "-e", "c", "--name-suffix", ""],
            ),
            (&["getpub", "-k", key, "-e", "pem"], &["getpub", "-k", key, "-e", "pem"]),
            (&["getpub", "-k", key, "-e", "raw"], &["getpub", "-k", key, "-e", "raw"]),
            (
                &["getpub", "-k", key, "--name-suffix", "_2"],
                &["getpub", "-k", key, "--name-suffix", "_2"],
            ),
        ];
        for (by_imgtool, by_fwsign) in pairs {
            let expected = imgtool(dir, by_imgtool).stdout;
            let actual = fwsign(dir, by_fwsign).stdout;
            assert!(
                expected == actual,
                "{by_fwsign:?} differs from imgtool:\n{}\nvs\n{}",
                String::from_utf8_lossy(&expected),
                String::from_utf8_lossy(&actual)
            );
        }
        let hash = imgtool(dir, &["getpubhash", "-k", key, "-e", "raw"]).stdout;
        let ours = fwsign(dir, &["getpub", "-k", key, "-e", "hash"]).stdout;
        let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            String::from_utf8_lossy(&ours).trim(),
            hex,
            "{key}: KEYHASH differs from getpubhash"
        );
    }
}

#[test]
fn fwsign_keys_work_in_imgtool() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(2000, 11)).unwrap();
    for (file, kind) in [("ed.pem", "ed25519"), ("ec.pem", "ecdsa-p256")] {
        fwsign(dir, &["keygen", "-k", file, "-t", kind]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join(file)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{kind}: private key readable by others");
        }
        let by_imgtool = imgtool(dir, &["getpub", "-k", file, "-e", "raw"]).stdout;
        let by_fwsign = fwsign(dir, &["getpub", "-k", file, "-e", "raw"]).stdout;
        assert_eq!(by_imgtool, by_fwsign, "{kind}: imgtool reads a different public key");
        imgtool(dir, &sign_args(&["-k", file, "in.bin", "imgtool.bin"]));
        fwsign(dir, &sign_args(&["-k", file, "in.bin", "fwsign.bin"]));
        let verified = imgtool(dir, &["verify", "-k", file, "fwsign.bin"]);
        assert!(text(&verified).contains("correctly validated"), "{kind}: {}", text(&verified));
        if kind == "ed25519" {
            assert!(
                read(dir, "imgtool.bin") == read(dir, "fwsign.bin"),
                "images differ with an fwsign key"
            );
        }
    }
    let existing = fwsign_status(dir, &["keygen", "-k", "ed.pem", "-t", "ed25519"]);
    assert_eq!(existing.status.code(), Some(2), "keygen overwrote a key: {}", text(&existing));
}

#[test]
fn encrypted_keys_interchange_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(1500, 12)).unwrap();
    std::fs::write(dir.join("password.txt"), "correct horse\n").unwrap();
    let k = keys();
    for name in ["ed", "ec"] {
        // imgtool's own export with a password (what `imgtool keygen -p` writes).
        let plain = k.path(&format!("{name}.pem"));
        let encrypted = format!("{name}-imgtool-enc.pem");
        let script = format!(
            "from imgtool import keys; keys.load({plain:?}).export_private({encrypted:?}, passwd=b'correct horse')"
        );
        let status = std::process::Command::new(imgtool_python())
            .current_dir(dir)
            .args(["-c", &script])
            .status()
            .unwrap();
        assert!(status.success(), "imgtool could not export an encrypted key");
        assert!(
            std::fs::read_to_string(dir.join(&encrypted))
                .unwrap()
                .contains("ENCRYPTED PRIVATE KEY")
        );
        let expected = fwsign(dir, &["getpub", "-k", &plain, "-e", "raw"]).stdout;
        let from_file = fwsign(
            dir,
            &["getpub", "-k", &encrypted, "-e", "raw", "--password-file", "password.txt"],
        );
        assert_eq!(from_file.stdout, expected);
        let from_env = std::process::Command::new(env!("CARGO_BIN_EXE_fwsign"))
            .current_dir(dir)
            .env("FW_KEY_PW", "correct horse")
            .args(["getpub", "-k", &encrypted, "-e", "raw", "--password-env", "FW_KEY_PW"])
            .output()
            .unwrap();
        assert_eq!(from_env.stdout, expected, "{}", text(&from_env));
        if name == "ed" {
            fwsign(
                dir,
                &sign_args(&[
                    "-k",
                    &encrypted,
                    "--password-file",
                    "password.txt",
                    "in.bin",
                    "enc.bin",
                ]),
            );
            imgtool(dir, &sign_args(&["-k", &plain, "in.bin", "plain.bin"]));
            assert!(
                read(dir, "enc.bin") == read(dir, "plain.bin"),
                "encrypted key signed differently"
            );
        }

        // fwsign's encrypted key, read by imgtool's loader.
        let ours = format!("{name}-fwsign-enc.pem");
        let kind = if name == "ed" { "ed25519" } else { "ecdsa-p256" };
        fwsign(dir, &["keygen", "-k", &ours, "-t", kind, "--password-file", "password.txt"]);
        assert!(
            std::fs::read_to_string(dir.join(&ours)).unwrap().contains("ENCRYPTED PRIVATE KEY")
        );
        let script = format!(
            "import sys; from imgtool import keys; sys.stdout.buffer.write(keys.load({ours:?}, b'correct horse').get_public_bytes())"
        );
        let output = std::process::Command::new(imgtool_python())
            .current_dir(dir)
            .args(["-c", &script])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "imgtool cannot read fwsign's encrypted key: {}",
            text(&output)
        );
        let ours_public =
            fwsign(dir, &["getpub", "-k", &ours, "-e", "raw", "--password-file", "password.txt"])
                .stdout;
        assert_eq!(output.stdout, ours_public);
    }
}

#[test]
fn signing_vectors_match_imgtool() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(3000, 13)).unwrap();
    let key = keys().path("ed.pem");
    let public = keys().path("ed-pub.pem");
    for (vector, extra) in [
        ("digest", &[][..]),
        ("payload", &[][..]),
        ("payload", &["--pure"][..]),
        ("digest", &["--sha", "512"][..]),
    ] {
        let mut args = sign_args(&["--vector-to-sign", vector]);
        args.extend_from_slice(extra);
        let mut by_imgtool = args.clone();
        by_imgtool.extend_from_slice(&["-k", &key, "in.bin", "imgtool.vec"]);
        imgtool(dir, &by_imgtool);
        // An external signer's public key is enough for fwsign.
        let mut by_fwsign = args.clone();
        by_fwsign.extend_from_slice(&["-k", &public, "in.bin", "fwsign.vec"]);
        fwsign(dir, &by_fwsign);
        assert!(
            read(dir, "imgtool.vec") == read(dir, "fwsign.vec"),
            "--vector-to-sign {vector} {extra:?} differs"
        );
    }
}

#[test]
fn fixed_signatures_round_trip_both_ways() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(2500, 14)).unwrap();
    for name in ["ed", "ec"] {
        let key = k.path(&format!("{name}.pem"));
        let public = k.path(&format!("{name}-pub.pem"));

        // imgtool signs and exports the signature; fwsign rebuilds the image from it.
        imgtool(
            dir,
            &sign_args(&["-k", &key, "--sig-out", "imgtool.sig", "in.bin", "imgtool.bin"]),
        );
        fwsign(
            dir,
            &sign_args(&[
                "--fix-sig",
                "imgtool.sig",
                "--fix-sig-pubkey",
                &public,
                "in.bin",
                "fwsign-fixed.bin",
            ]),
        );
        assert!(
            read(dir, "imgtool.bin") == read(dir, "fwsign-fixed.bin"),
            "{name}: fwsign --fix-sig differs"
        );

        // fwsign signs and exports; imgtool rebuilds.
        fwsign(dir, &sign_args(&["-k", &key, "--sig-out", "fwsign.sig", "in.bin", "fwsign.bin"]));
        imgtool(
            dir,
            &sign_args(&[
                "--fix-sig",
                "fwsign.sig",
                "--fix-sig-pubkey",
                &public,
                "in.bin",
                "imgtool-fixed.bin",
            ]),
        );
        assert!(
            read(dir, "fwsign.bin") == read(dir, "imgtool-fixed.bin"),
            "{name}: imgtool --fix-sig differs"
        );
        let verified = imgtool(dir, &["verify", "-k", &key, "imgtool-fixed.bin"]);
        assert!(text(&verified).contains("correctly validated"), "{name}: {}", text(&verified));

        // A signature over another image is refused, and nothing is written.
        std::fs::write(dir.join("other.bin"), pseudo_random_bytes(2500, 15)).unwrap();
        let refused = fwsign_status(
            dir,
            &sign_args(&[
                "--fix-sig",
                "fwsign.sig",
                "--fix-sig-pubkey",
                &public,
                "other.bin",
                "refused.bin",
            ]),
        );
        assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
        assert!(text(&refused).contains("--fix-sig"), "{}", text(&refused));
        assert!(!dir.join("refused.bin").exists());
    }
}

/// The HSM workflow without an HSM: export the digest, sign it with OpenSSL, attach.
#[test]
fn digest_signed_by_openssl_attaches() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    std::fs::write(dir.join("in.bin"), pseudo_random_bytes(4000, 16)).unwrap();
    let openssl = |args: &[&str]| {
        let output = std::process::Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("openssl not found ({e}): install it with `apt-get install openssl`")
            });
        assert!(output.status.success(), "openssl {args:?}: {}", text(&output));
    };
    for (name, raw_input) in [("ed", true), ("ec", false)] {
        let key = k.path(&format!("{name}.pem"));
        let public = k.path(&format!("{name}-pub.pem"));
        fwsign(
            dir,
            &sign_args(&["--vector-to-sign", "digest", "-k", &public, "in.bin", "digest.bin"]),
        );
        let mut args =
            vec!["pkeyutl", "-sign", "-inkey", &key, "-in", "digest.bin", "-out", "sig.raw"];
        if raw_input {
            args.push("-rawin");
        }
        openssl(&args);
        let signature = base64::engine::general_purpose::STANDARD.encode(read(dir, "sig.raw"));
        std::fs::write(dir.join("sig.b64"), signature).unwrap();
        fwsign(
            dir,
            &sign_args(&["--fix-sig", "sig.b64", "--fix-sig-pubkey", &public, "in.bin", "img.bin"]),
        );
        let verified = imgtool(dir, &["verify", "-k", &key, "img.bin"]);
        assert!(text(&verified).contains("correctly validated"), "{name}: {}", text(&verified));
    }
}
