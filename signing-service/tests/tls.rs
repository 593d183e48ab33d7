//! The service over HTTPS: a CA and a server certificate made by OpenSSL for each test, the
//! service's rustls on one side, the client's rustls on the other.
//!
//! Tested from the attacker's side too: a client that does not trust the CA refuses the
//! server, plain HTTP to the TLS port gets no HTTP answer, and the service keeps serving.

mod common;

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::region;
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::client::{ClientError, ServiceClient, SignOutcome};
use fwsign_service::config::ServiceConfig;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;
use verifier_core::{HashAlgorithm, PublicKey};

const POLICY: &str = r#"permit (principal, action == Action::"sign", resource == Key::"dev");"#;

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    ca: PathBuf,
    dev_key: PublicKey,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new(fwsign_tests::openssl())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A P-256 CA, and a certificate it issues for 127.0.0.1 and localhost.
fn make_certificates(dir: &Path) {
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &ec[..],
            &["-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=fwsign test CA"],
        ]
        .concat(),
    );
    openssl(
        dir,
        &[
            &["req"],
            &ec[..],
            &["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ]
        .concat(),
    );
    write(&dir.join("server.ext"), "subjectAltName = IP:127.0.0.1, DNS:localhost\n");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
    );
}

fn setup(listen: &str, tls: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    make_certificates(dir.path());
    let key = PrivateKey::generate(Algorithm::Ed25519).expect("key");
    write(&dir.path().join("dev.pem"), &key.to_pkcs8_pem(None).expect("pem"));
    write(&dir.path().join("policy.cedar"), POLICY);
    let config = dir.path().join("service.toml");
    write(
        &config,
        &format!(
            "listen = \"{listen}\"\ndatabase = \"sqlite:service.db\"\npolicy = \"policy.cedar\"\n\n[keys.dev]\nkey = \"dev.pem\"\n\n{tls}"
        ),
    );
    Setup { ca: dir.path().join("ca.pem"), dir, config, dev_key: key.public_key() }
}

const TLS: &str = "[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\n";

fn start(setup: &Setup) -> RunningService {
    RunningService::start(ServiceConfig::load(&setup.config).expect("config")).expect("start")
}

fn sign(client: &ServiceClient) -> Result<Vec<u8>, ClientError> {
    let image = region(500, 1);
    match client.sign("dev", &[&image], "sha256", false)? {
        SignOutcome::Signed(signatures) => Ok(signatures[0].signature.clone()),
        SignOutcome::Pending(view) => panic!("unexpected approval wait: {view:?}"),
    }
}

/// Sends plain HTTP to the TLS port and reads what comes back before the server hangs up.
fn plain_http(address: std::net::SocketAddr) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").expect("send");
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).expect("the server closes the connection");
    reply
}

#[test]
fn a_client_trusting_the_ca_signs_over_https_and_others_are_refused() {
    let setup = setup("127.0.0.1:0", TLS);
    let token = create_token(&setup.config, "station-1", Role::Submitter, None).expect("token");
    let service = start(&setup);
    assert!(service.url().starts_with("https://127.0.0.1:"), "{}", service.url());

    let trusting = ServiceClient::with_ca_cert(&service.url(), token.clone(), Some(&setup.ca))
        .expect("client");
    let signature = sign(&trusting).expect("signed over https");
    let digest = HashAlgorithm::Sha256.digest(&region(500, 1));
    assert!(fwsign_keys::signer::signature_verifies(&setup.dev_key, &digest, &signature));

    let untrusting =
        ServiceClient::with_ca_cert(&service.url(), token.clone(), None).expect("client");
    match sign(&untrusting) {
        Err(ClientError::Transport { reason, .. }) => {
            assert!(reason.to_lowercase().contains("certificate"), "{reason}");
        }
        other => panic!("a client without the CA must refuse the server: {other:?}"),
    }

    let reply = plain_http(service.address);
    assert!(!reply.starts_with(b"HTTP/"), "plain HTTP got an HTTP answer: {reply:?}");

    let plain_url = service.url().replace("https://", "http://");
    let plain = ServiceClient::new(&plain_url, token);
    assert!(matches!(sign(&plain), Err(ClientError::Transport { .. })));

    sign(&trusting).expect("the service keeps serving");
}

#[test]
fn with_tls_any_address_may_be_served() {
    let setup = setup("0.0.0.0:0", TLS);
    let service = start(&setup);
    assert!(service.address.ip().is_unspecified());
}

fn start_error(setup: &Setup, tls: &str) -> String {
    let text = std::fs::read_to_string(&setup.config).expect("config");
    let base = text.split("[tls]").next().expect("base");
    write(&setup.config, &format!("{base}{tls}"));
    match ServiceConfig::load(&setup.config) {
        Ok(config) => {
            RunningService::start(config).map(|_| ()).expect_err("must not start").to_string()
        }
        Err(error) => error.to_string(),
    }
}

#[test]
fn bad_tls_files_stop_the_start_naming_file_and_field() {
    let setup = setup("127.0.0.1:0", TLS);
    write(&setup.dir.path().join("garbage.pem"), "not PEM at all\n");
    let cases = [
        (
            "[tls]\ncert = \"missing.pem\"\nkey = \"server.key\"\n",
            "tls.cert",
            "missing.pem: no such file",
        ),
        (
            "[tls]\ncert = \"server.pem\"\nkey = \"missing.key\"\n",
            "tls.key",
            "missing.key: no such file",
        ),
        (
            "[tls]\ncert = \"garbage.pem\"\nkey = \"server.key\"\n",
            "tls.cert",
            "garbage.pem: no CERTIFICATE",
        ),
        (
            "[tls]\ncert = \"server.pem\"\nkey = \"garbage.pem\"\n",
            "tls.key",
            "garbage.pem: expected a PEM private key",
        ),
        ("[tls]\ncert = \"server.pem\"\nkey = \"ca.key\"\n", "tls.key", "ca.key: cannot serve"),
        ("[tls]\ncert = \"server.pem\"\n", "(syntax)", "missing field `key`"),
    ];
    for (tls, field, message) in cases {
        let error = start_error(&setup, tls);
        assert!(
            error.contains("service.toml") && error.contains(field) && error.contains(message),
            "{field} {message}: {error}"
        );
    }
}

#[test]
fn without_tls_a_network_address_is_refused() {
    let setup = setup("0.0.0.0:0", "");
    let error = match RunningService::start(ServiceConfig::load(&setup.config).expect("config")) {
        Ok(_) => panic!("plain HTTP on 0.0.0.0 must be refused"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("0.0.0.0:0") && error.contains("[tls]"), "{error}");
}
