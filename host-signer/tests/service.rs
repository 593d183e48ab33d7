//! The signing service with its keys in SoftHSM2: `fwsign serve` runs as a process, images are
//! built here exactly as `fwsign sign` builds them, signed through the service, and must pass
//! `imgtool verify` and verifier-core.
//!
//! Needs softhsm2, opensc (pkcs11-tool), imgtool; a missing tool fails with what to install.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};

use base64::Engine as _;
use common::{Served, fwsign as fwsign_in, imgtool, pseudo_random_bytes, text};
use fwsign_keys::keys::Algorithm;
use fwsign_tests::SoftHsmToken;
use fwsign_tests::tsa::LocalTsa;
use host_signer::image::{
    HashChoice, ImageOptions, LoadAddress, PublicKeyFormat, SecurityCounter, prepare,
};
use host_signer::trailer::TrailerLayout;
use verifier_core::{ImageVersion, Policy, PublicKey, SliceReader, TrustedKey, verify_image};

const LABEL: &str = "fwsign";
const PIN: &str = "1234";

fn fwsign(token: &SoftHsmToken, args: &[&str]) -> std::process::Output {
    let output = token
        .command(env!("CARGO_BIN_EXE_fwsign"))
        .current_dir(token.dir())
        .env("FWSIGN_PKCS11_MODULE", &token.module)
        .env("FWSIGN_PKCS11_PIN", PIN)
        .args(args)
        .output()
        .unwrap();
    assert!(output.status.success(), "fwsign {args:?}: {}", text(&output));
    output
}

/// `POST /v1/sign` of one to-be-signed `region` with `key`; the signature (the reply must be 200).
fn post_sign(
    agent: &ureq::Agent,
    served: &Served,
    api_token: &str,
    key: &str,
    region: &[u8],
) -> Vec<u8> {
    let request = serde_json::json!({
        "key": key,
        "images": [base64::engine::general_purpose::STANDARD.encode(region)],
    });
    let mut response = agent
        .post(format!("{}/v1/sign", served.url))
        .header("authorization", &format!("Bearer {api_token}"))
        .send(request.to_string())
        .unwrap();
    let reply = response.body_mut().read_to_string().unwrap();
    assert_eq!(response.status().as_u16(), 200, "{key}: {reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).unwrap();
    base64::engine::general_purpose::STANDARD
        .decode(reply["signatures"][0]["signature"].as_str().unwrap())
        .unwrap()
}

/// A submitter token for `builder`, from the service configured in `token`'s directory.
fn builder_token(token: &SoftHsmToken) -> String {
    let create =
        ["token", "create", "--config", "service.toml", "--name", "builder", "--role", "submitter"];
    String::from_utf8(fwsign(token, &create).stdout).unwrap().trim().to_owned()
}

fn serve(token: &SoftHsmToken) -> Served {
    let mut command = token.command(env!("CARGO_BIN_EXE_fwsign"));
    command
        .current_dir(token.dir())
        .env("FWSIGN_PKCS11_MODULE", &token.module)
        .env("FWSIGN_PKCS11_PIN", PIN);
    serve_with(command)
}

/// Starts `fwsign serve --config service.toml` on a free loopback port.
fn serve_with(command: Command) -> Served {
    common::serve(command, "service.toml")
}

/// A service in `dir` whose P-256 key `release` (`release.pem`) needs `approvals` approvals
/// from the group `managers` (`managers` its members); `builder`, of the group `ci`, may ask.
fn release_service(dir: &std::path::Path, approvals: u32, managers: &[&str]) -> Served {
    fwsign_in(dir, &["keygen", "-k", "release.pem", "-t", "ecdsa-p256"]);
    std::fs::write(
        dir.join("policy.cedar"),
        "permit (principal in Group::\"ci\", action == Action::\"sign\", resource);\n",
    )
    .unwrap();
    let managers: Vec<String> = managers.iter().map(|m| format!("\"{m}\"")).collect();
    let config = format!(
        "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n\
         [keys.release]\nkey = \"release.pem\"\napprovals = {approvals}\napprovers = \"managers\"\n\
         [groups.ci]\nmembers = [\"builder\"]\n[groups.managers]\nmembers = [{}]\n",
        managers.join(", ")
    );
    std::fs::write(dir.join("service.toml"), config).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir);
    serve_with(command)
}

/// A new API token for `name` with `role`, from the service configured in `dir`.
fn create_token(dir: &std::path::Path, name: &str, role: &str) -> String {
    let create = ["token", "create", "--config", "service.toml", "--name", name, "--role", role];
    String::from_utf8(fwsign_in(dir, &create).stdout).unwrap().trim().to_owned()
}

/// `fwsign` in `dir` talking to `served` (`FWSIGN_SERVER`) with `token` in `FWSIGN_TOKEN`.
fn client_command(dir: &std::path::Path, served: &Served, token: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir).env("FWSIGN_SERVER", &served.url).env("FWSIGN_TOKEN", token);
    command
}

fn options(counter: u32) -> ImageOptions {
    ImageOptions {
        version: ImageVersion { major: 1, minor: 2, revision: 3, build_num: 4 },
        header_size: 0x200,
        slot_size: 0x10000,
        trailer: TrailerLayout::for_align(1),
        security_counter: Some(SecurityCounter::Value(counter)),
        dependencies: Vec::new(),
        revoked_keys: Vec::new(),
        custom_tlvs: Vec::new(),
        load: LoadAddress::InPlace,
        non_bootable: false,
        hash: HashChoice::Auto,
        pure: false,
        public_key_format: PublicKeyFormat::Hash,
    }
}

#[test]
fn images_signed_through_the_service_with_softhsm_keys_pass_imgtool_verify() {
    let token = SoftHsmToken::new(LABEL, PIN);
    let mut keys = String::new();
    for (name, kind) in [("ed", "ed25519"), ("p256", "ecdsa-p256")] {
        let uri = format!("pkcs11:token={LABEL};object={name}-svc");
        fwsign(&token, &["keygen", "-k", &uri, "-t", kind]);
        keys.push_str(&format!("[keys.{name}]\nkey = \"{uri};type=private\"\n"));
    }
    std::fs::write(
        token.dir().join("policy.cedar"),
        "@id(\"ci-signs\")\npermit (principal in Group::\"ci\", action == Action::\"sign\", resource);\n\
         @id(\"no-rollback\")\nforbid (principal, action, resource)\n\
         when { context.security_counter < context.highest_security_counter };\n",
    )
    .unwrap();
    std::fs::write(
        token.dir().join("service.toml"),
        format!(
            "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:service.db\"\npolicy = \"policy.cedar\"\n{keys}[groups.ci]\nmembers = [\"builder\"]\n"
        ),
    )
    .unwrap();
    let api_token = builder_token(&token);
    let served = serve(&token);
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).build().into();

    for (name, algorithm) in [("ed", Algorithm::Ed25519), ("p256", Algorithm::EcdsaP256)] {
        let mut body = vec![0u8; 0x200];
        body.extend(pseudo_random_bytes(3000, 71));
        let unsigned = prepare(&options(9), body, false, Some(algorithm)).unwrap();
        let signature = post_sign(&agent, &served, &api_token, name, unsigned.hashed_region());
        let uri = format!("pkcs11:token={LABEL};object={name}-svc");
        let der = fwsign(&token, &["getpub", "-k", &uri, "-e", "raw"]).stdout;
        let public = PublicKey::from_spki_der(&der).unwrap();
        let signed = unsigned.attach_signature(public, signature).unwrap();
        let image = format!("{name}.bin");
        std::fs::write(token.dir().join(&image), &signed.bytes).unwrap();

        let pem = fwsign(&token, &["getpub", "-k", &uri, "-e", "pem"]).stdout;
        std::fs::write(token.dir().join(format!("{name}.pem")), pem).unwrap();
        let output = imgtool(token.dir(), &["verify", "-k", &format!("{name}.pem"), &image]);
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Image was correctly validated"),
            "{}",
            text(&output)
        );
        verify_image(
            &mut SliceReader::new(&signed.bytes),
            &[TrustedKey::new(public)],
            &Policy {
                min_security_counter: Some(9),
                require_security_counter: true,
                ..Policy::PERMISSIVE
            },
        )
        .unwrap_or_else(|e| panic!("verifier-core refused {image}: {e}"));
    }
    sign_through_the_cli(&token, &served, &api_token);
    read_the_trail(&token, &served);
}

/// `fwsign sign --server` writes exactly the image `fwsign sign -k <token key>` writes
/// (Ed25519 is deterministic), and a refusal leaves no output.
fn sign_through_the_cli(token: &SoftHsmToken, served: &Served, api_token: &str) {
    std::fs::write(token.dir().join("app.bin"), pseudo_random_bytes(5000, 83)).unwrap();
    let image_args = ["-v", "1.2.3", "-H", "0x200", "--pad-header", "-S", "0x10000", "-s", "9"];
    let run = |args: &[&str]| {
        token
            .command(env!("CARGO_BIN_EXE_fwsign"))
            .current_dir(token.dir())
            .env("FWSIGN_PKCS11_MODULE", &token.module)
            .env("FWSIGN_PKCS11_PIN", PIN)
            .env("FWSIGN_API_TOKEN", api_token)
            .env("FWSIGN_SERVER", &served.url)
            .args(args)
            .output()
            .unwrap()
    };
    let mut remote = vec!["sign", "-k", "ed", "--api-token-env", "FWSIGN_API_TOKEN"];
    remote.extend(image_args);
    remote.extend(["app.bin", "remote.bin"]);
    let output = run(&remote);
    assert!(output.status.success(), "{}", text(&output));
    let uri = format!("pkcs11:token={LABEL};object=ed-svc");
    let mut local = vec!["sign", "-k", &uri];
    local.extend(image_args);
    local.extend(["app.bin", "local.bin"]);
    let output = fwsign(token, &local);
    assert!(output.status.success());
    let remote = std::fs::read(token.dir().join("remote.bin")).unwrap();
    assert_eq!(remote, std::fs::read(token.dir().join("local.bin")).unwrap());
    imgtool(token.dir(), &["verify", "-k", "ed.pem", "remote.bin"]);

    let mut rollback = vec!["sign", "-k", "p256", "--api-token-env", "FWSIGN_API_TOKEN"];
    rollback.extend(["-v", "1.2.3", "-H", "0x200", "--pad-header", "-S", "0x10000", "-s", "3"]);
    rollback.extend(["app.bin", "rollback.bin"]);
    let output = run(&rollback);
    assert!(!output.status.success());
    assert!(text(&output).contains("policy denied: images[0]: no-rollback"), "{}", text(&output));
    assert!(!token.dir().join("rollback.bin").exists());

    let output = run(&[
        "sign",
        "-k",
        "ed",
        "-v",
        "1",
        "-H",
        "0x200",
        "--pad-header",
        "-S",
        "0x10000",
        "app.bin",
        "x.bin",
    ]);
    assert!(text(&output).contains("no identity"), "{}", text(&output));
}

/// `fwsign audit` reads the whole trail, checks its chain and shows each decision.
fn read_the_trail(token: &SoftHsmToken, served: &Served) {
    let created = fwsign(
        token,
        &["token", "create", "--config", "service.toml", "--name", "carol", "--role", "auditor"],
    );
    let auditor = String::from_utf8(created.stdout).unwrap().trim().to_owned();
    let audit = |extra: &[&str]| {
        let mut args = vec!["audit", "--server", &served.url, "--api-token-env", "AUDITOR"];
        args.extend(extra);
        token
            .command(env!("CARGO_BIN_EXE_fwsign"))
            .env("AUDITOR", &auditor)
            .args(&args)
            .output()
            .unwrap()
    };
    let output = audit(&[]);
    assert!(output.status.success(), "{}", text(&output));
    let lines: Vec<String> =
        String::from_utf8_lossy(&output.stdout).lines().map(String::from).collect();
    let decisions: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(2).unwrap_or("")).collect();
    assert_eq!(decisions, ["signed", "signed", "signed", "denied"], "{lines:?}");
    assert!(
        lines[3].contains("p256 builder policy denied: images[0]: no-rollback"),
        "{}",
        lines[3]
    );
    let output = audit(&["--json", "--after", "3"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["seq"], 4);
    assert_eq!(json["record"]["images"][0]["security_counter"], 3);
}

#[test]
fn a_service_with_a_tsa_returns_a_token_the_image_carries() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let tsa = LocalTsa::start();
    fwsign_in(dir, &["keygen", "-k", "dev.pem", "-t", "ed25519"]);
    std::fs::write(
        dir.join("policy.cedar"),
        "permit (principal in Group::\"ci\", action == Action::\"sign\", resource);\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("service.toml"),
        format!(
            "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n\
             timestamp_url = \"{}\"\n[keys.dev]\nkey = \"dev.pem\"\n[groups.ci]\nmembers = [\"builder\"]\n",
            tsa.url
        ),
    )
    .unwrap();
    let create =
        ["token", "create", "--config", "service.toml", "--name", "builder", "--role", "admin"];
    let api_token = String::from_utf8(fwsign_in(dir, &create).stdout).unwrap().trim().to_owned();
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir);
    let served = serve_with(command);
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(1500, 3)).unwrap();
    let output = client_command(dir, &served, &api_token)
        .args(["sign", "--api-token-env", "FWSIGN_TOKEN", "-k", "dev"])
        .args([
            "-v",
            "2.0.0",
            "-H",
            "0x200",
            "--pad-header",
            "-S",
            "0x10000",
            "app.bin",
            "app-signed.bin",
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(tsa.requests(), 1);
    let ca = tsa.ca_cert().display().to_string();
    fwsign_in(dir, &["verify", "-k", "dev.pem", "--tsa-ca", &ca, "app-signed.bin"]);
    imgtool(dir, &["verify", "-k", "dev.pem", "app-signed.bin"]);
    let output = client_command(dir, &served, &api_token)
        .args(["audit", "--api-token-env", "FWSIGN_TOKEN", "--json"])
        .output()
        .unwrap();
    let record: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(record["record"]["images"][0]["timestamp"].is_string(), "{record}");
}

#[test]
fn a_release_key_signs_after_two_approvals_given_with_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let served = release_service(dir, 2, &["alice", "bob"]);
    let token = |name: &str, role: &str| create_token(dir, name, role);
    let (builder, alice, bob) =
        (token("builder", "submitter"), token("alice", "approver"), token("bob", "approver"));
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(2500, 9)).unwrap();
    let fwsign_as =
        |who: &str, args: &[&str]| client_command(dir, &served, who).args(args).output().unwrap();
    let sign: Vec<&str> = vec![
        "sign",
        "--api-token-env",
        "FWSIGN_TOKEN",
        "-k",
        "release",
        "-v",
        "3.0.0",
        "-s",
        "3",
        "-H",
        "0x200",
        "--pad-header",
        "-S",
        "0x10000",
        "app.bin",
        "app-signed.bin",
    ];
    let output = fwsign_as(&builder, &[&sign[..], &["--no-wait"]].concat());
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("key `release` needs 2 approvals: request"),
        "{}",
        text(&output)
    );
    let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    assert!(!dir.join("app-signed.bin").exists());

    // The requester waits (polling) while two approvers approve with the CLI.
    let mut waiting = client_command(dir, &served, &builder)
        .args([&sign[..], &["--wait", "60"]].concat())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let approve = ["approve", "--api-token-env", "FWSIGN_TOKEN", &id];
    let output = fwsign_as(&builder, &approve);
    assert!(
        !output.status.success() && text(&output).contains("approver role"),
        "{}",
        text(&output)
    );
    let output = fwsign_as(&alice, &approve);
    assert!(output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("pending: 1 of 2 approvals from managers (client:alice)"));
    let output = fwsign_as(&bob, &approve);
    assert!(text(&output).contains("signed: 2 of 2"), "{}", text(&output));
    let status = waiting.wait().unwrap();
    assert!(status.success());
    imgtool(dir, &["verify", "-k", "release.pem", "app-signed.bin"]);
    let output = fwsign_as(&alice, &["request", "show", "--api-token-env", "FWSIGN_TOKEN", &id]);
    assert!(
        text(&output).contains(&format!("request {id} key release signed")),
        "{}",
        text(&output)
    );

    // A deny ends the wait of a requester attached to the request.
    let other: Vec<&str> = sign.iter().map(|a| if *a == "3" { "4" } else { a }).collect();
    let output = fwsign_as(&builder, &[&other[..], &["--no-wait"]].concat());
    let other_id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let waiting = client_command(dir, &served, &builder)
        .args([&other[..], &["--wait", "60"]].concat())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    let output = fwsign_as(&bob, &["deny", "--api-token-env", "FWSIGN_TOKEN", &other_id]);
    assert!(
        text(&output).contains(&format!("request {other_id} key release denied")),
        "{}",
        text(&output)
    );
    let output = waiting.wait_with_output().unwrap();
    assert!(!output.status.success());
    assert!(text(&output).contains(&format!("request {other_id} was denied")), "{}", text(&output));
}

/// `request fetch` finishes an approved request later: the same bytes a re-run `sign --server`
/// writes (signature, trailer and all), an image imgtool and `fwsign verify` accept; a pending
/// request is refused at once with --no-wait, a denied one fails naming it.
#[test]
fn request_fetch_writes_the_image_sign_writes_once_approved() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let served = release_service(dir, 1, &["alice"]);
    let (builder, alice) =
        (create_token(dir, "builder", "submitter"), create_token(dir, "alice", "approver"));
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(3000, 12)).unwrap();
    let fwsign_as =
        |who: &str, args: &[&str]| client_command(dir, &served, who).args(args).output().unwrap();
    let identity = ["--api-token-env", "FWSIGN_TOKEN"];
    let sign = |counter: &'static str| -> Vec<&'static str> {
        vec![
            "sign",
            "-k",
            "release",
            "-v",
            "3.0.0",
            "-s",
            counter,
            "-H",
            "0x200",
            "--pad-header",
            "-S",
            "0x10000",
            "--align",
            "4",
            "--confirm",
            "--no-wait",
            "app.bin",
            "app-signed.bin",
        ]
    };
    let output = fwsign_as(&builder, &[&sign("3")[..], &identity].concat());
    assert!(output.status.success(), "{}", text(&output));
    let id = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let fetch = |id: &str, extra: &[&str]| {
        let args = ["request", "fetch", id, "fetched.bin", "-S", "0x10000", "--align", "4"];
        fwsign_as(&builder, &[&args[..], &identity, &["--confirm"], extra].concat())
    };

    let output = fetch(&id, &["--no-wait"]);
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains(&format!("request {id} still waits for approval")));
    assert!(!dir.join("fetched.bin").exists());

    let output = fwsign_as(&alice, &[&["approve"][..], &identity, &[&id]].concat());
    assert!(text(&output).contains("signed: 1 of 1"), "{}", text(&output));
    let output = fetch(&id, &[]);
    assert!(output.status.success(), "{}", text(&output));
    let output = fwsign_as(&builder, &[&sign("3")[..], &identity].concat());
    assert!(output.status.success(), "{}", text(&output));
    let fetched = std::fs::read(dir.join("fetched.bin")).unwrap();
    assert_eq!(fetched.len(), 0x10000, "--confirm pads to the slot");
    assert_eq!(fetched, std::fs::read(dir.join("app-signed.bin")).unwrap());
    imgtool(dir, &["verify", "-k", "release.pem", "fetched.bin"]);
    fwsign_in(dir, &["verify", "-k", "release.pem", "fetched.bin"]);

    let output = fwsign_as(&builder, &[&sign("4")[..], &identity].concat());
    let denied = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    fwsign_as(&alice, &[&["deny"][..], &identity, &[&denied]].concat());
    std::fs::remove_file(dir.join("fetched.bin")).unwrap();
    let output = fetch(&denied, &[]);
    assert!(!output.status.success());
    assert!(text(&output).contains(&format!("request {denied} was denied")), "{}", text(&output));
    assert!(!dir.join("fetched.bin").exists());
}

/// `sign --batch`: two images in one request, both signed and verifying; when the policy
/// refuses one, the command fails naming it and neither output exists.
#[test]
fn a_batch_is_signed_in_one_request_all_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    fwsign_in(dir, &["keygen", "-k", "dev.pem", "-t", "ed25519"]);
    std::fs::write(
        dir.join("policy.cedar"),
        "permit (principal in Group::\"ci\", action == Action::\"sign\", resource);\n\
         @id(\"counter-below-10\")\nforbid (principal, action, resource)\n\
         when { context.security_counter >= 10 };\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("service.toml"),
        "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n\
         [keys.dev]\nkey = \"dev.pem\"\n[groups.ci]\nmembers = [\"builder\"]\n",
    )
    .unwrap();
    let builder = create_token(dir, "builder", "submitter");
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir);
    let served = serve_with(command);
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(2000, 21)).unwrap();
    std::fs::write(dir.join("net.bin"), pseudo_random_bytes(1500, 22)).unwrap();
    let batch = |second_counter: u32| {
        format!(
            "[[image]]\ninput = \"app.bin\"\noutput = \"app-signed.bin\"\nversion = \"1.0.0\"\n\
             security-counter = 1\nheader-size = \"0x200\"\npad-header = true\nslot-size = 0x10000\n\
             [[image]]\ninput = \"net.bin\"\noutput = \"net-signed.bin\"\nversion = \"2.0.0\"\n\
             security-counter = {second_counter}\nheader-size = 512\npad-header = true\n\
             slot-size = 0x8000\nconfirm = true\nalign = \"4\"\n"
        )
    };
    let sign = ["sign", "--api-token-env", "FWSIGN_TOKEN", "-k", "dev", "--batch", "images.toml"];
    let run = || client_command(dir, &served, &builder).args(sign).output().unwrap();

    std::fs::write(dir.join("images.toml"), batch(2)).unwrap();
    let output = run();
    assert!(output.status.success(), "{}", text(&output));
    for image in ["app-signed.bin", "net-signed.bin"] {
        imgtool(dir, &["verify", "-k", "dev.pem", image]);
        fwsign_in(dir, &["verify", "-k", "dev.pem", image]);
    }
    assert_eq!(std::fs::read(dir.join("net-signed.bin")).unwrap().len(), 0x8000);

    for image in ["app-signed.bin", "net-signed.bin"] {
        std::fs::remove_file(dir.join(image)).unwrap();
    }
    std::fs::write(dir.join("images.toml"), batch(10)).unwrap();
    let output = run();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("images.toml: [[image]] 2 (net.bin) refused"),
        "{}",
        text(&output)
    );
    assert!(text(&output).contains("counter-below-10"), "{}", text(&output));
    assert!(!dir.join("app-signed.bin").exists() && !dir.join("net-signed.bin").exists());

    std::fs::write(dir.join("images.toml"), batch(2).replace("confirm = true", "confrim = true"))
        .unwrap();
    let output = run();
    assert!(!output.status.success());
    assert!(
        text(&output).contains("images.toml: [[image]] 2: unknown field `confrim`"),
        "{}",
        text(&output)
    );
}

/// A key with `sessions = 4` serves 32 requests at once: each takes a free token session or
/// waits for one, and every signature verifies.
#[test]
fn thirty_two_concurrent_requests_share_four_token_sessions() {
    let token = SoftHsmToken::new(LABEL, PIN);
    let uri = format!("pkcs11:token={LABEL};object=pooled");
    fwsign(&token, &["keygen", "-k", &uri, "-t", "ed25519"]);
    std::fs::write(
        token.dir().join("policy.cedar"),
        "permit (principal in Group::\"ci\", action == Action::\"sign\", resource);\n",
    )
    .unwrap();
    std::fs::write(
        token.dir().join("service.toml"),
        format!(
            "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:service.db\"\npolicy = \"policy.cedar\"\n\
             [keys.pooled]\nkey = \"{uri};type=private\"\nsessions = 4\n[groups.ci]\nmembers = [\"builder\"]\n"
        ),
    )
    .unwrap();
    let api_token = builder_token(&token);
    let der = fwsign(&token, &["getpub", "-k", &uri, "-e", "raw"]).stdout;
    let public = PublicKey::from_spki_der(&der).unwrap();
    let served = serve(&token);

    let signed: Vec<bool> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..32u64)
            .map(|i| {
                let (served, api_token) = (&served, &api_token);
                scope.spawn(move || {
                    let mut body = vec![0u8; 0x200];
                    body.extend(pseudo_random_bytes(1000, i));
                    let unsigned =
                        prepare(&options(1), body, false, Some(Algorithm::Ed25519)).unwrap();
                    let region = unsigned.hashed_region();
                    let agent: ureq::Agent =
                        ureq::Agent::config_builder().http_status_as_error(false).build().into();
                    let signature = post_sign(&agent, served, api_token, "pooled", region);
                    let digest = verifier_core::HashAlgorithm::Sha256.digest(region);
                    fwsign_keys::signer::signature_verifies(&public, &digest, &signature)
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join().unwrap()).collect()
    });
    assert_eq!(signed.len(), 32);
    assert!(signed.iter().all(|verifies| *verifies), "{signed:?}");
}

/// `fwsign sign --server https://…` against `fwsign serve` with `[tls]`: it signs when the
/// client trusts the service's CA (`--ca-cert` or `FWSIGN_CA_CERT`), and without the CA it
/// refuses the server and writes nothing.
#[test]
fn sign_over_https_trusts_the_given_ca_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let openssl = |args: &[&str]| {
        let output =
            Command::new(fwsign_tests::openssl()).args(args).current_dir(dir).output().unwrap();
        assert!(output.status.success(), "openssl {args:?}: {}", text(&output));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        &[&["req", "-x509"], &ec[..], &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=ca"]]
            .concat(),
    );
    openssl(
        &[&["req"], &ec[..], &["-keyout", "tls.key", "-out", "tls.csr", "-subj", "/CN=x"]].concat(),
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-extfile",
        "san.ext",
        "-out",
        "tls.pem",
    ]);
    fwsign_in(dir, &["keygen", "-k", "dev.pem", "-t", "ed25519"]);
    std::fs::write(dir.join("policy.cedar"), "permit (principal, action, resource);\n").unwrap();
    std::fs::write(
        dir.join("service.toml"),
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite:service.db\"\npolicy = \"policy.cedar\"\n\
         [keys.dev]\nkey = \"dev.pem\"\n[tls]\ncert = \"tls.pem\"\nkey = \"tls.key\"\n",
    )
    .unwrap();
    let api_token = create_token(dir, "ci", "submitter");
    let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
    command.current_dir(dir);
    let served = serve_with(command);
    assert!(served.url.starts_with("https://127.0.0.1:"), "{}", served.url);

    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(3000, 5)).unwrap();
    let sign = |ca: Option<(&str, &str)>, out: &str| {
        let mut command = client_command(dir, &served, &api_token);
        command.env_remove("FWSIGN_CA_CERT").args(["sign", "--api-token-env", "FWSIGN_TOKEN"]);
        command.args(["-k", "dev", "-v", "1.0.0", "-s", "1", "-H", "0x200", "--pad-header"]);
        command.args(["-S", "0x10000", "app.bin", out]);
        match ca {
            Some(("option", file)) => command.args(["--ca-cert", file]),
            Some((_, file)) => command.env("FWSIGN_CA_CERT", file),
            None => &mut command,
        };
        command.output().unwrap()
    };
    for (ca, out) in [(("option", "ca.pem"), "by-option.bin"), (("env", "ca.pem"), "by-env.bin")] {
        let output = sign(Some(ca), out);
        assert!(output.status.success(), "{}", text(&output));
        imgtool(dir, &["verify", "-k", "dev.pem", out]);
    }
    let output = sign(None, "untrusted.bin");
    assert!(!output.status.success());
    assert!(text(&output).to_lowercase().contains("certificate"), "{}", text(&output));
    assert!(!dir.join("untrusted.bin").exists());
    let output = sign(Some(("option", "app.bin")), "bad-ca.bin");
    assert!(
        text(&output).contains("--ca-cert: app.bin: expected PEM certificates"),
        "{}",
        text(&output)
    );
    assert!(!dir.join("bad-ca.bin").exists());
}

/// An encrypted service key file opens with the password from the variable `password_env`
/// names; without it, or with a wrong one, the service does not start and says why.
#[test]
fn an_encrypted_key_file_takes_its_password_from_password_env() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let keygen = Command::new(env!("CARGO_BIN_EXE_fwsign"))
        .current_dir(dir)
        .env("NEW_KEY_PASSWORD", "correct horse")
        .args(["keygen", "-k", "dev.pem", "-t", "ed25519", "--password-env", "NEW_KEY_PASSWORD"])
        .output()
        .unwrap();
    assert!(keygen.status.success(), "{}", text(&keygen));
    assert!(std::fs::read_to_string(dir.join("dev.pem")).unwrap().contains("ENCRYPTED"));
    std::fs::write(dir.join("policy.cedar"), "permit (principal, action, resource);\n").unwrap();
    std::fs::write(
        dir.join("service.toml"),
        "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite:service.db\"\npolicy = \"policy.cedar\"\n\
         [keys.dev]\nkey = \"dev.pem\"\npassword_env = \"DEV_KEY_PASSWORD\"\n",
    )
    .unwrap();
    let serve = |password: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_fwsign"));
        command.current_dir(dir).env_remove("DEV_KEY_PASSWORD");
        if let Some(password) = password {
            command.env("DEV_KEY_PASSWORD", password);
        }
        command
    };
    for (password, expected) in [
        (None, "DEV_KEY_PASSWORD (keys.dev.password_env) is not set"),
        (Some("wrong"), "wrong password"),
    ] {
        let output = serve(password).args(["serve", "--config", "service.toml"]).output().unwrap();
        assert!(!output.status.success());
        assert!(text(&output).contains(expected), "{}", text(&output));
    }
    let served = serve_with(serve(Some("correct horse")));
    let key = ureq::get(format!("{}/v1/keys/dev", served.url)).call().unwrap();
    assert_eq!(key.status().as_u16(), 200);
}
