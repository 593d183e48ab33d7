//! Keys in a PKCS#11 token (a fresh SoftHSM2 token per test) and the external-command
//! signer: images they sign pass `imgtool verify` and the bootloader's verifier.
//!
//! Needs softhsm2, opensc (pkcs11-tool) and openssl; a missing tool fails the test with the
//! package to install.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;

use common::{imgtool, pseudo_random_bytes, text};
use fwsign_keys::pkcs11::Pkcs11Signer;
use fwsign_keys::pkcs11::uri::Pkcs11Uri;
use fwsign_keys::signer::{Signer as _, signature_verifies};
use fwsign_tests::SoftHsmToken;
use verifier_core::{Policy, PublicKey, SliceReader, TrustedKey, verify_image};

const LABEL: &str = "fwsign";
const PIN: &str = "1234";

/// Runs fwsign against the token, module and PIN from the environment.
fn fwsign_env(token: &SoftHsmToken, envs: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = token.command(env!("CARGO_BIN_EXE_fwsign"));
    command
        .current_dir(token.dir())
        .env("FWSIGN_PKCS11_MODULE", &token.module)
        .env_remove("FWSIGN_PKCS11_PIN")
        .args(args);
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().unwrap()
}

/// Runs fwsign with the PIN in the environment; it must succeed.
fn fwsign_ok(token: &SoftHsmToken, args: &[&str]) -> Output {
    let output = fwsign_env(token, &[("FWSIGN_PKCS11_PIN", PIN)], args);
    assert!(output.status.success(), "fwsign {args:?}: {}", text(&output));
    output
}

fn token_with_input() -> SoftHsmToken {
    let token = SoftHsmToken::new(LABEL, PIN);
    std::fs::write(token.dir().join("app.bin"), pseudo_random_bytes(3000, 61)).unwrap();
    token
}

/// `sign` options shared by the tests, for `key` and output `out`.
fn sign_args<'a>(key: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "sign",
        "-k",
        key,
        "-v",
        "1.2.3",
        "-H",
        "0x200",
        "--pad-header",
        "-S",
        "0x10000",
        "app.bin",
        out,
    ]
}

/// Checks `image` with imgtool (against the PEM `fwsign getpub` prints for `key`) and with
/// verifier-core.
fn assert_verifies(token: &SoftHsmToken, key: &str, image: &str) {
    let pem = fwsign_ok(token, &["getpub", "-k", key, "-e", "pem"]).stdout;
    let pem_path = token.dir().join(format!("{image}.pub.pem"));
    std::fs::write(&pem_path, pem).unwrap();
    let output = imgtool(token.dir(), &["verify", "-k", pem_path.to_str().unwrap(), image]);
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("Image was correctly validated"),
        "{}",
        text(&output)
    );
    let der = fwsign_ok(token, &["getpub", "-k", key, "-e", "raw"]).stdout;
    let public = PublicKey::from_spki_der(&der).unwrap();
    let bytes = std::fs::read(token.dir().join(image)).unwrap();
    verify_image(&mut SliceReader::new(&bytes), &[TrustedKey::new(public)], &Policy::default())
        .unwrap_or_else(|e| panic!("verifier-core refused {image}: {e}"));
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn keys_generated_by_fwsign_sign_images_that_imgtool_and_the_verifier_accept() {
    let token = token_with_input();
    for (object, kind) in [("ed-fw", "ed25519"), ("p256-fw", "ecdsa-p256")] {
        let uri = format!("pkcs11:token={LABEL};object={object}");
        let made = fwsign_ok(&token, &["keygen", "-k", &uri, "-t", kind]);
        let printed = String::from_utf8(made.stdout).unwrap();
        assert!(
            printed.starts_with(&format!("{uri};id=%"))
                && printed.trim_end().ends_with(";type=private"),
            "{printed}"
        );
        let image = format!("{object}.bin");
        fwsign_ok(&token, &sign_args(&uri, &image));
        assert_verifies(&token, &uri, &image);
        // The URI keygen printed names the same key.
        let printed = printed.trim_end();
        let again = format!("{object}-again.bin");
        fwsign_ok(&token, &sign_args(printed, &again));
        assert_verifies(&token, &uri, &again);
    }
    // Ed25519 over the whole image (SIG_PURE), single-part in the token.
    let uri = format!("pkcs11:token={LABEL};object=ed-fw");
    let mut args = sign_args(&uri, "pure.bin");
    args.insert(1, "--pure");
    fwsign_ok(&token, &args);
    assert_verifies(&token, &uri, "pure.bin");
    fwsign_ok(&token, &["verify", "-k", &uri, "pure.bin"]);

    // The private keys are sensitive and were never extractable.
    let listing =
        String::from_utf8(token.pkcs11_tool(&["--list-objects", "--type", "privkey"])).unwrap();
    assert_eq!(listing.matches("never extractable").count(), 2, "{listing}");
    // A second key with the same label is refused.
    let again =
        fwsign_env(&token, &[("FWSIGN_PKCS11_PIN", PIN)], &["keygen", "-k", &uri, "-t", "ed25519"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again).contains("already holds an object"), "{}", text(&again));
}

#[test]
fn keys_made_by_pkcs11_tool_sign_by_id_and_by_label() {
    let token = token_with_input();
    let module = token.module.display().to_string();
    token.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:prime256v1",
        "--label",
        "p256-tool",
        "--id",
        "01",
    ]);
    token.pkcs11_tool(&[
        "--keypairgen",
        "--key-type",
        "EC:edwards25519",
        "--label",
        "ed-tool",
        "--id",
        "02",
    ]);
    let cases = [
        format!("pkcs11:token={LABEL};id=%01;type=private"),
        format!("pkcs11:token={LABEL};object=ed-tool"),
        // The module named in the URI itself.
        format!("pkcs11:token={LABEL};id=%02?module-path={module}"),
    ];
    for (index, uri) in cases.iter().enumerate() {
        let image = format!("tool{index}.bin");
        fwsign_ok(&token, &sign_args(uri, &image));
        assert_verifies(&token, uri, &image);
    }
    // getpub agrees with the public key pkcs11-tool exports (DER SubjectPublicKeyInfo).
    let exported = token.dir().join("p256.der");
    let exported_path = exported.to_str().unwrap();
    token.pkcs11_tool(&["--read-object", "--type", "pubkey", "--id", "01", "-o", exported_path]);
    let exported = std::fs::read(exported).unwrap();
    let ours = fwsign_ok(&token, &["getpub", "-k", &cases[0], "-e", "raw"]).stdout;
    assert_eq!(ours, exported);
}

#[test]
fn the_pin_comes_from_pin_source_or_the_environment() {
    let token = token_with_input();
    let uri = format!("pkcs11:token={LABEL};object=key");
    fwsign_ok(&token, &["keygen", "-k", &uri, "-t", "ed25519"]);
    let pin_file = token.dir().join("pin.txt");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let pin_path = pin_file.display().to_string();
    for (index, source) in
        [format!("file:{pin_path}"), format!("file://{pin_path}"), pin_path].iter().enumerate()
    {
        let with_source = format!("{uri}?pin-source={source}");
        let image = format!("pin{index}.bin");
        let output = fwsign_env(&token, &[], &sign_args(&with_source, &image));
        assert!(output.status.success(), "{source}: {}", text(&output));
        assert_verifies(&token, &uri, &image);
    }
    // No PIN at all: the private key is hidden, and the message says how to give one.
    let output = fwsign_env(&token, &[], &sign_args(&uri, "nopin.bin"));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("FWSIGN_PKCS11_PIN"), "{}", text(&output));
    // A PIN on the command line is refused outright.
    let output = fwsign_env(&token, &[], &sign_args(&format!("{uri}?pin-value={PIN}"), "v.bin"));
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("pin-value"), "{}", text(&output));
    // A pin-source that cannot be read is named.
    let output = fwsign_env(
        &token,
        &[],
        &sign_args(&format!("{uri}?pin-source=file:/nonexistent/pin"), "m.bin"),
    );
    assert!(text(&output).contains("/nonexistent/pin"), "{}", text(&output));
    for image in ["nopin.bin", "v.bin", "m.bin"] {
        assert!(!token.dir().join(image).exists(), "{image} was written");
    }
}

#[test]
fn wrong_pin_missing_token_or_object_fail_with_no_output() {
    let token = token_with_input();
    let uri = format!("pkcs11:token={LABEL};object=key");
    fwsign_ok(&token, &["keygen", "-k", &uri, "-t", "ecdsa-p256"]);
    let before = files_in(token.dir());
    let cases: [(&str, String, Option<&str>, &str); 5] = [
        ("wrong PIN", uri.clone(), Some("0000"), "wrong PIN"),
        (
            "missing token",
            "pkcs11:token=absent;object=key".into(),
            Some(PIN),
            "no token matches (tokens present: 'fwsign')",
        ),
        (
            "missing object",
            format!("pkcs11:token={LABEL};object=absent"),
            Some(PIN),
            "no private key matches",
        ),
        (
            "public key named",
            format!("pkcs11:token={LABEL};object=key;type=public"),
            Some(PIN),
            "type=public cannot sign",
        ),
        (
            "misspelt attribute",
            format!("pkcs11:tokn={LABEL};object=key"),
            Some(PIN),
            "'tokn' is not supported",
        ),
    ];
    for (case, key, pin, expected) in cases {
        let envs: Vec<(&str, &str)> = pin.map(|p| ("FWSIGN_PKCS11_PIN", p)).into_iter().collect();
        let output = fwsign_env(&token, &envs, &sign_args(&key, "out.bin"));
        assert_eq!(output.status.code(), Some(2), "{case}: {}", text(&output));
        assert!(text(&output).contains(expected), "{case}: {}", text(&output));
        assert_eq!(files_in(token.dir()), before, "{case}: files changed");
    }
    // No module anywhere.
    let mut command = token.command(env!("CARGO_BIN_EXE_fwsign"));
    let output = command
        .current_dir(token.dir())
        .env_remove("FWSIGN_PKCS11_MODULE")
        .args(sign_args(&uri, "out.bin"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("FWSIGN_PKCS11_MODULE"), "{}", text(&output));
    assert_eq!(files_in(token.dir()), before);
}

/// `--sign-cmd` with openssl as the external signer.
#[test]
fn an_external_command_signs_with_the_documented_protocol() {
    let token = token_with_input();
    let openssl = fwsign_tests::openssl().display().to_string();
    let dir = token.dir();
    for (name, kind) in [("ed", "ed25519"), ("ec", "ecdsa-p256")] {
        fwsign_ok(&token, &["keygen", "-k", &format!("{name}.pem"), "-t", kind]);
        let public = fwsign_ok(&token, &["getpub", "-k", &format!("{name}.pem"), "-e", "pem"]);
        std::fs::write(dir.join(format!("{name}-pub.pem")), public.stdout).unwrap();
    }
    let cases = [
        // Ed25519 over the digest as the message: raw 64-byte signature.
        // (-rawin needs a file it can size, not a pipe.)
        (
            "ed-pub.pem",
            format!(
                "f=$(mktemp) && cat > $f && {openssl} pkeyutl -sign -inkey ed.pem -rawin -in $f; s=$?; rm -f $f; exit $s"
            ),
        ),
        // ECDSA over the digest as a prehash: DER, then the same as base64.
        ("ec-pub.pem", format!("{openssl} pkeyutl -sign -inkey ec.pem")),
        (
            "ec-pub.pem",
            format!(
                "test \"$FWSIGN_SIGN_ALGORITHM\" = ecdsa-p256 && {openssl} pkeyutl -sign -inkey ec.pem | base64"
            ),
        ),
    ];
    for (index, (key, command)) in cases.iter().enumerate() {
        let image = format!("cmd{index}.bin");
        let mut args = sign_args(key, &image);
        args.extend(["--sign-cmd", command]);
        fwsign_ok(&token, &args);
        let output = imgtool(dir, &["verify", "-k", key, &image]);
        assert!(text(&output).contains("correctly validated"), "{}", text(&output));
    }
    // Failures: the program fails, or prints something that is not a valid signature.
    let before = files_in(dir);
    for (command, expected) in [
        ("echo 'KMS said no' >&2; exit 4", "KMS said no"),
        ("head -c 64 /dev/zero", "that verifies with the public key"),
    ] {
        let mut args = sign_args("ed-pub.pem", "bad.bin");
        args.extend(["--sign-cmd", command]);
        let output = fwsign_env(&token, &[], &args);
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(expected), "{}", text(&output));
        assert_eq!(files_in(dir), before);
    }
}

/// A module restart under a live signer (C_Finalize invalidates every session): the next
/// signature re-initialises the module, finds the key again and succeeds. Runs in a child
/// process, which has the token's SOFTHSM2_CONF in its environment.
#[test]
fn a_restarted_module_is_reconnected_and_the_signature_retried() {
    let token = SoftHsmToken::new(LABEL, PIN);
    run_child(&token, "ecdsa-p256", "module_restart_child");
}

/// Generates a `key_type` key named `key` on `token`, then runs the ignored test `child` in a
/// child process with the token's environment, the module, the PIN, the key's URI
/// (`FWSIGN_TEST_KEY_URI`) and the token's storage directory (`FWSIGN_TEST_TOKEN_DIR`); fails
/// unless the child passes.
fn run_child(token: &SoftHsmToken, key_type: &str, child: &str) {
    let uri = format!("pkcs11:token={LABEL};object=key");
    fwsign_ok(token, &["keygen", "-k", &uri, "-t", key_type]);
    let output = token
        .command(std::env::current_exe().unwrap())
        .args(["--exact", child, "--ignored", "--nocapture"])
        .env("FWSIGN_PKCS11_MODULE", &token.module)
        .env("FWSIGN_PKCS11_PIN", PIN)
        .env("FWSIGN_TEST_KEY_URI", &uri)
        .env("FWSIGN_TEST_TOKEN_DIR", token.dir().join("tokens"))
        .output()
        .unwrap();
    assert!(output.status.success() && text(&output).contains("1 passed"), "{}", text(&output));
}

#[test]
#[ignore = "run in a child process by a_restarted_module_is_reconnected_and_the_signature_retried"]
fn module_restart_child() {
    use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
    let module = std::env::var("FWSIGN_PKCS11_MODULE").unwrap();
    let uri: Pkcs11Uri = std::env::var("FWSIGN_TEST_KEY_URI").unwrap().parse().unwrap();
    let signer = Pkcs11Signer::open(&uri).unwrap();
    let digest = [7u8; 32];
    signer.sign_digest(&digest).unwrap();

    // A session of our own shows that the restart really invalidates sessions.
    let probe = Pkcs11::new(&module).unwrap();
    let _ = probe.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK));
    let slot = probe.get_slots_with_initialized_token().unwrap()[0];
    let session = probe.open_ro_session(slot).unwrap();
    probe.clone().finalize().unwrap();
    assert!(session.get_session_info().is_err(), "the session survived C_Finalize");

    let signature = signer.sign_digest(&digest).expect("re-initialised and retried");
    assert!(signature_verifies(&signer.public_key(), &digest, &signature));
}

/// The token's storage gone under a live signer (SoftHSM2's token directory moved away, as a
/// network HSM drops out): signing fails meanwhile; moved back, the next signature finds the
/// key again (the old key handle stays invalid) and succeeds. Runs in a child process, which
/// has the token's SOFTHSM2_CONF in its environment.
#[test]
fn a_token_gone_and_back_is_found_again() {
    let token = SoftHsmToken::new(LABEL, PIN);
    run_child(&token, "ed25519", "token_gone_child");
}

#[test]
#[ignore = "run in a child process by a_token_gone_and_back_is_found_again"]
fn token_gone_child() {
    let uri: Pkcs11Uri = std::env::var("FWSIGN_TEST_KEY_URI").unwrap().parse().unwrap();
    let tokens = std::path::PathBuf::from(std::env::var("FWSIGN_TEST_TOKEN_DIR").unwrap());
    let away = tokens.with_extension("away");
    let signer = Pkcs11Signer::open(&uri).unwrap();
    let digest = [7u8; 32];
    signer.sign_digest(&digest).unwrap();

    std::fs::rename(&tokens, &away).unwrap();
    assert!(signer.sign_digest(&digest).is_err(), "signed with the token gone");
    std::fs::rename(&away, &tokens).unwrap();

    let signature = signer.sign_digest(&digest).expect("the key found again");
    assert!(signature_verifies(&signer.public_key(), &digest, &signature));
}

/// Signers sharing one module on several threads, each closed while the others still sign
/// (as in a service's signer pool): closing one must never pull the module from under a call
/// in flight. When each signer finalised the module as it closed, the child crashed in about
/// half the runs. Runs in a child process, which has the token's
/// SOFTHSM2_CONF in its environment.
#[test]
fn signers_on_several_threads_survive_each_other_closing() {
    let token = SoftHsmToken::new(LABEL, PIN);
    run_child(&token, "ed25519", "several_threads_child");
}

#[test]
#[ignore = "run in a child process by signers_on_several_threads_survive_each_other_closing"]
fn several_threads_child() {
    let uri: Pkcs11Uri = std::env::var("FWSIGN_TEST_KEY_URI").unwrap().parse().unwrap();
    let digest = [9u8; 32];
    for _round in 0..10 {
        let signers: Vec<Pkcs11Signer> =
            (0..3).map(|_| Pkcs11Signer::open(&uri).unwrap()).collect();
        std::thread::scope(|scope| {
            for (n, signer) in signers.into_iter().enumerate() {
                scope.spawn(move || {
                    // Each thread signs a different number of times, so the drops overlap
                    // other threads' signatures.
                    for _ in 0..(5 + 20 * n) {
                        let signature = signer.sign_digest(&digest).unwrap();
                        assert!(signature_verifies(&signer.public_key(), &digest, &signature));
                    }
                });
            }
        });
    }
}
