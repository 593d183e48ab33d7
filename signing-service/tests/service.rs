//! The service end to end over loopback HTTP: a real server, real SQLite, real Cedar, real keys.
//!
//! Every refusal is tested from the attacker's side: the status and reason, an audit record
//! for it, and no signature anywhere in the reply or the trail.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::{audit, body_of, call, post, region, region_with, sign_body};
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::audit::verify_chain;
use fwsign_service::config::ServiceConfig;
use fwsign_service::http::sign::SignResponse;
use fwsign_service::key_state::KeyState;
use fwsign_service::server::{
    RunningService, ServerError, create_token, revoke_token, set_key_state,
};
use fwsign_service::storage::StorageError;
use fwsign_service::tokens::Role;
use verifier_core::format::tlv;
use verifier_core::{HashAlgorithm, PublicKey, RevokedKey};

const POLICY: &str = r#"
@id("factory-signs-dev")
permit (principal in Group::"factory", action == Action::"sign", resource == Key::"dev");

@id("no-rollback")
forbid (principal, action, resource)
when { context.security_counter < context.highest_security_counter };

@id("station-7-signs-nothing")
forbid (principal == Client::"station-7", action, resource);

@id("release-managers-sign-release")
permit (principal in Group::"release-managers", action == Action::"sign", resource == Key::"release");
"#;

struct Setup {
    dir: tempfile::TempDir,
    config: PathBuf,
    dev_key: PublicKey,
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write test file");
}

fn setup_with(policy: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = PrivateKey::generate(Algorithm::Ed25519).expect("key");
    write(&dir.path().join("dev.pem"), &key.to_pkcs8_pem(None).expect("pem"));
    let release = PrivateKey::generate(Algorithm::EcdsaP256).expect("key");
    write(&dir.path().join("release.pem"), &release.to_pkcs8_pem(None).expect("pem"));
    write(&dir.path().join("policy.cedar"), policy);
    let config = dir.path().join("service.toml");
    write(
        &config,
        &format!(
            r#"listen = "127.0.0.1:0"
database = "{}"
policy = "policy.cedar"
body_limit = 65536

[keys.dev]
key = "dev.pem"

[keys.release]
key = "release.pem"
approvals = 2
approvers = "release-managers"

[groups.factory]
members = ["station-1", "station-7"]

[groups.release-managers]
members = ["alice", "bob"]
"#,
            common::database()
        ),
    );
    Setup { dir, config, dev_key: key.public_key() }
}

impl Setup {
    /// The reply to signing `image`, checked: its digest is the image's SHA-256 and its
    /// signature verifies under the `dev` key. Returns the reply and the signature.
    fn signed(&self, image: &[u8], reply: &str) -> (SignResponse, Vec<u8>) {
        let reply: SignResponse = serde_json::from_str(reply).expect("reply");
        let digest = HashAlgorithm::Sha256.digest(image);
        assert_eq!(reply.signatures[0].digest, fwsign_keys::hex(&digest));
        let signature = base64::engine::general_purpose::STANDARD
            .decode(&reply.signatures[0].signature)
            .expect("base64");
        assert!(fwsign_keys::signer::signature_verifies(&self.dev_key, &digest, &signature));
        (reply, signature)
    }

    fn start(&self) -> RunningService {
        RunningService::start(ServiceConfig::load(&self.config).expect("config")).expect("start")
    }

    fn token(&self, name: &str, role: Role) -> String {
        create_token(&self.config, name, role, None).expect("token")
    }
}

#[test]
fn a_permitted_request_is_signed_recorded_and_verifiable() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let service = setup.start();
    let (status, health) = call("GET", &format!("{}/healthz", service.url()), None, None);
    assert_eq!((status, health.as_str()), (200, "ok\n"));

    let image = region(1000, 3);
    let url = format!("{}/v1/sign", service.url());
    let (status, body) =
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", std::slice::from_ref(&image))));
    assert_eq!(status, 200, "{body}");
    let (reply, signature) = setup.signed(&image, &body);
    assert_eq!(reply.key_id, fwsign_keys::hex(&setup.dev_key.key_hash(HashAlgorithm::Sha256)));

    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    let last = body_of(records.last().expect("a record"));
    assert_eq!(last["decision"], "signed");
    assert_eq!(last["reason"], "factory-signs-dev");
    assert_eq!(last["identity"]["name"], "station-1");
    assert_eq!(last["images"][0]["security_counter"], 3);
    assert_eq!(last["images"][0]["signature"], fwsign_keys::hex(&signature));
    assert_eq!(reply.audit_seq, records.last().map(|r| r.seq).unwrap_or(0));
    let (_, metrics) = call("GET", &format!("{}/metrics", service.url()), None, None);
    assert!(metrics.contains("fwsign_requests_total{decision=\"signed\"} 1"), "{metrics}");
}

#[test]
fn every_refusal_is_a_4xx_with_a_reason_an_audit_record_and_no_signature() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let station7 = setup.token("station-7", Role::Submitter);
    let alice = setup.token("alice", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let revoked = setup.token("mallory", Role::Submitter);
    assert!(revoke_token(&setup.config, "mallory").expect("revoke"));
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let good = sign_body("dev", &[region(100, 5)]);
    let mut lying = region(100, 5);
    lying[12] = 0xff; // img_size claims more payload than was sent
    let mut overrun = region(100, 5);
    overrun[32 + 100 + 6] = 40; // the security counter TLV runs past its area
    let oversized = sign_body("dev", &[vec![0u8; 70_000]]);
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        ("no credential", None, good.clone(), 401, "no Authorization"),
        ("unknown token", Some("fwst_forged"), good.clone(), 401, "unknown or revoked"),
        ("revoked token", Some(&revoked), good.clone(), 401, "unknown or revoked"),
        ("an unsigned JWT", Some("eyJhbGciOiJub25lIn0.e30."), good.clone(), 401, "algorithm none"),
        ("wrong role", Some(&auditor), good.clone(), 403, "submitter role"),
        ("not JSON", Some(&submitter), "{\"key\":".into(), 400, "request body"),
        ("missing field", Some(&submitter), "{\"images\":[]}".into(), 400, "missing field `key`"),
        (
            "unknown field",
            Some(&submitter),
            "{\"key\":\"dev\",\"images\":[],\"digest\":\"00\"}".into(),
            400,
            "unknown field `digest`",
        ),
        ("no images", Some(&submitter), sign_body("dev", &[]), 400, "at least one image"),
        (
            "not base64",
            Some(&submitter),
            "{\"key\":\"dev\",\"images\":[\"!!\"]}".into(),
            400,
            "images[0]: not base64",
        ),
        ("random bytes", Some(&submitter), sign_body("dev", &[vec![0x13; 300]]), 400, "images[0]"),
        (
            "truncated",
            Some(&submitter),
            sign_body("dev", &[region(100, 5)[..90].to_vec()]),
            400,
            "images[0]",
        ),
        ("header lies", Some(&submitter), sign_body("dev", &[lying]), 400, "images[0]"),
        ("TLV past the end", Some(&submitter), sign_body("dev", &[overrun]), 400, "images[0]"),
        ("oversized", Some(&submitter), oversized, 413, "exceeds the limit of 65536 bytes"),
        (
            "unknown key",
            Some(&submitter),
            sign_body("nope", &[region(100, 5)]),
            404,
            "no key named \"nope\"",
        ),
        (
            "forbidden station",
            Some(&station7),
            good.clone(),
            403,
            "policy denied: images[0]: station-7-signs-nothing",
        ),
        ("no permit", Some(&alice), good.clone(), 403, "no policy permits"),
    ];
    for (what, token, body, status, reason) in &cases {
        let (got, reply) = call("POST", &url, *token, Some(body));
        assert_eq!(got, *status, "{what}: {reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON error reply");
        assert!(reply["error"].as_str().is_some_and(|e| e.contains(reason)), "{what}: {reply}");
        assert!(reply.get("signatures").is_none(), "{what}: {reply}");
    }
    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    assert_eq!(records.len(), cases.len(), "one record per request");
    for (record, (what, _, _, status, reason)) in records.iter().zip(&cases) {
        let body = body_of(record);
        let expected = if *status == 403 && reason.starts_with("policy") || what == &"no permit" {
            "denied"
        } else {
            "refused"
        };
        assert_eq!(body["decision"], expected, "{what}: {body}");
        assert!(body["reason"].as_str().is_some_and(|r| r.contains(reason)), "{what}: {body}");
        assert!(
            body["images"]
                .as_array()
                .is_none_or(|images| images.iter().all(|i| i["signature"].is_null()))
        );
    }
}

#[test]
fn a_binary_request_is_signed_and_refused_like_a_json_one() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let binary = "application/octet-stream";

    let image = region(1000, 3);
    let (status, body) = post(&format!("{url}?key=dev"), Some(&submitter), binary, &image);
    assert_eq!(status, 200, "{body}");
    setup.signed(&image, &body);

    let good = region(100, 5);
    let json = sign_body("dev", std::slice::from_ref(&good)).into_bytes();
    // What, query string, media type, body; the status and reason expected.
    let cases = [
        ("no query", "", binary, &good[..], 400, "missing field `key`"),
        ("unknown field", "?key=dev&digest=00", binary, &good, 400, "unknown field `digest`"),
        ("bad hash", "?key=dev&hash=md5", binary, &good, 400, "field hash"),
        ("bad mode", "?key=dev&pure=maybe", binary, &good, 400, "query string"),
        ("random bytes", "?key=dev", binary, &[0x13; 300], 400, "images[0]"),
        ("truncated", "?key=dev", binary, &good[..90], 400, "images[0]"),
        ("oversized", "?key=dev", binary, &[0; 70_000], 413, "exceeds the limit"),
        ("unknown key", "?key=..%2Fdev", binary, &good, 404, "no key named \"../dev\""),
        ("other media type", "?key=dev", "text/plain", &good, 415, "text/plain is not accepted"),
        ("JSON with a query", "?key=dev", "application/json", &json, 400, "query string"),
    ];
    for (what, query, media_type, body, status, reason) in cases {
        let (got, reply) = post(&format!("{url}{query}"), Some(&submitter), media_type, body);
        assert_eq!(got, status, "{what}: {reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON error reply");
        assert!(reply["error"].as_str().is_some_and(|e| e.contains(reason)), "{what}: {reply}");
    }
    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    assert_eq!(records.len(), 1 + cases.len(), "one record per request");
    assert_eq!(body_of(&records[0])["decision"], "signed");
    for (record, (what, _, _, _, _, reason)) in records[1..].iter().zip(&cases) {
        let body = body_of(record);
        assert_eq!(body["decision"], "refused", "{what}: {body}");
        assert!(body["reason"].as_str().is_some_and(|r| r.contains(reason)), "{what}: {body}");
    }
}

#[test]
fn rollback_and_deep_signing_are_all_or_nothing() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let (status, body) =
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 5)])));
    assert_eq!(status, 200, "{body}");
    // Below the highest counter signed so far: refused, whoever asks.
    let (status, body) =
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 4)])));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no-rollback"), "{body}");
    // Two images, the second refused: neither is signed.
    let both = sign_body("dev", &[region(80, 6), region(80, 2)]);
    let (status, body) = call("POST", &url, Some(&submitter), Some(&both));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("images[1]: no-rollback"), "{body}");
    // Both allowed: both signed, in order.
    let both = sign_body("dev", &[region(80, 6), region(96, 7)]);
    let (status, body) = call("POST", &url, Some(&submitter), Some(&both));
    assert_eq!(status, 200, "{body}");
    let reply: SignResponse = serde_json::from_str(&body).expect("reply");
    assert_eq!(reply.signatures.len(), 2);
    assert_eq!(
        reply.signatures[1].digest,
        fwsign_keys::hex(&HashAlgorithm::Sha256.digest(&region(96, 7)))
    );
    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    let decisions: Vec<String> =
        records.iter().map(|r| body_of(r)["decision"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(decisions, ["signed", "denied", "denied", "signed"]);
    let refused = body_of(&records[2]);
    assert!(refused["images"].as_array().expect("images").iter().all(|i| i["signature"].is_null()));
}

#[test]
fn the_trail_survives_a_restart_and_stays_chained() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    for counter in [1, 2] {
        let service = setup.start();
        let url = format!("{}/v1/sign", service.url());
        let (status, body) =
            call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, counter)])));
        assert_eq!(status, 200, "{body}");
    }
    let service = setup.start();
    let records = audit(&service, &auditor);
    assert_eq!(records.len(), 2);
    verify_chain(&records).expect("chain across restarts");
}

fn config_error(setup: &Setup, config: &str) -> String {
    write(&setup.config, config);
    match ServiceConfig::load(&setup.config) {
        Ok(config) => {
            RunningService::start(config).map(|_| ()).expect_err("must not start").to_string()
        }
        Err(error) => error.to_string(),
    }
}

#[test]
fn a_bad_configuration_refuses_to_start_naming_file_line_and_field() {
    let setup = setup_with(POLICY);
    let base = "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n";
    let keys = "[keys.dev]\nkey = \"dev.pem\"\n[keys.release]\nkey = \"release.pem\"\n[groups.factory]\nmembers = []\n[groups.release-managers]\nmembers = []\n";
    let cases = [
        (format!("{base}{keys}colour = \"blue\"\n"), ":12", "unknown field `colour`"),
        (format!("{base}[keys.dev]\nkey = \"missing.pem\"\n"), ":5: keys.dev.key", "no such file"),
        (
            format!("{base}[keys.dev]\nkey = \"dev.pem\"\nsessions = 0\n"),
            ":6: keys.dev.sessions",
            "0: expected 1 to 64",
        ),
        (
            format!(
                "listen = \"127.0.0.1:0\"\ndatabase = \"mysql://db/fw\"\npolicy = \"policy.cedar\"\n{keys}"
            ),
            ":2: database",
            "\"mysql://db/fw\": expected sqlite:PATH or postgres://USER@HOST:PORT/DATABASE",
        ),
        (
            format!("{base}[keys.dev]\nkey = \"pkcs11:token=t;object=o\"\npassword_env = \"PW\"\n"),
            ":6: keys.dev.password_env",
            "applies to key files",
        ),
        (
            format!(
                "{base}{keys}[keys.x]\nkey = \"dev.pem\"\napprovals = 1\napprovers = \"nobody\"\n"
            ),
            ":15: keys.x.approvers",
            "no group \"nobody\"",
        ),
        (
            format!(
                "{base}{keys}[issuers.gh]\nissuer = \"http://issuer.example\"\naudience = \"fwsign\"\n"
            ),
            ":13: issuers.gh.issuer",
            "must be https://",
        ),
        (
            format!(
                "{base}{keys}[issuers.gh]\nissuer = \"https://i\"\naudience = \"a\"\njwks = \"no.json\"\n"
            ),
            ":15: issuers.gh.jwks",
            "no such file",
        ),
        (
            format!(
                "listen = \"0.0.0.0:0\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n{keys}"
            ),
            "0.0.0.0:0",
            "only on loopback",
        ),
        (
            format!("{base}[keys.dev]\nkey = \"dev.pem\"\n"),
            "policy.cedar:",
            "Key::\"release\", which is not a key",
        ),
    ];
    for (config, place, message) in &cases {
        let error = config_error(&setup, config);
        assert!(error.contains(place) && error.contains(message), "{place} {message}: {error}");
        assert!(
            error.contains("service.toml")
                || error.contains("policy.cedar")
                || error.contains("0.0.0.0"),
            "{error}"
        );
    }
    let config = format!("{base}{keys}");
    write(
        &setup.dir.path().join("policy.cedar"),
        "permit (principal, action, resource)\nwhen { principal.repositroy == \"acme/fw\" };\n",
    );
    let error = config_error(&setup, &config);
    assert!(error.contains("policy.cedar:2") && error.contains("repositroy"), "{error}");
    write(&setup.dir.path().join("policy.cedar"), "permit (principal, action, resource\n");
    let error = config_error(&setup, &config);
    assert!(error.contains("policy.cedar:"), "{error}");
}

#[test]
fn concurrent_requests_keep_one_unbroken_chain() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..16u32)
            .map(|i| {
                let (url, submitter) = (&url, &submitter);
                scope.spawn(move || {
                    // Every other request carries no credential: refusals interleave with grants.
                    let token = (i % 2 == 0).then_some(submitter.as_str());
                    call("POST", url, token, Some(&sign_body("dev", &[region(64 + i, 1)]))).0
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).collect()
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 8, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 401).count(), 8, "{statuses:?}");
    let records = audit(&service, &auditor);
    assert_eq!(records.len(), 16);
    verify_chain(&records).expect("one chain, no fork, no gap");
}

#[test]
fn the_openapi_document_describes_the_routes_and_the_wire_types() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let service = setup.start();
    let (status, text) = call("GET", &format!("{}/openapi.json", service.url()), None, None);
    assert_eq!(status, 200);
    let document: serde_json::Value = serde_json::from_str(&text).expect("OpenAPI JSON");
    let paths = document["paths"].as_object().expect("paths");
    for path in [
        "/healthz",
        "/metrics",
        "/openapi.json",
        "/v1/sign",
        "/v1/audit",
        "/v1/keys/{name}",
        "/v1/factory/devices",
    ] {
        assert!(paths.contains_key(path), "{path} undocumented");
        let probe = format!("{}{}", service.url(), path.replace("{name}", "dev"));
        let method = if paths[path].get("post").is_some() { "POST" } else { "GET" };
        let (status, reply) = call(method, &probe, Some(&submitter), Some("{}"));
        // A missing route answers 404 with an empty body; a served one names what is missing.
        assert!(status != 404 || reply.contains("no request"), "{path} documented but not served");
    }
    // The documented properties are exactly what the server reads and writes.
    let properties = |schema: &str| -> Vec<String> {
        let mut names: Vec<String> = document["components"]["schemas"][schema]["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        names.sort();
        names
    };
    let (_, reply) = call(
        "POST",
        &format!("{}/v1/sign", service.url()),
        Some(&submitter),
        Some(&sign_body("dev", &[region(64, 1)])),
    );
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("reply");
    let mut keys: Vec<String> = reply.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, properties("SignResponse"));
    // The device record the station sends (and the server accepts, unknown fields refused).
    let mut device: Vec<String> =
        provisioned_device().as_object().expect("object").keys().cloned().collect();
    device.sort();
    assert_eq!(device, properties("ProvisionedDevice"));
    let request = serde_json::to_value(fwsign_service::request::SignRequest {
        key: "dev".into(),
        images: vec![],
        hash: None,
        pure: false,
    })
    .expect("request");
    let mut keys: Vec<String> = request.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, properties("SignRequest"));
    // The query string of a binary request.
    let options =
        fwsign_service::request::SignOptions { key: "dev".into(), hash: None, pure: false };
    let options = serde_json::to_value(options).expect("options");
    let mut keys: Vec<String> = options.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    let parameters =
        document["paths"]["/v1/sign"]["post"]["parameters"].as_array().expect("parameters");
    let mut names: Vec<String> =
        parameters.iter().map(|p| p["name"].as_str().expect("name").to_owned()).collect();
    names.sort();
    assert_eq!(keys, names);
}

/// A time-stamping authority that holds its first request until released, then fails every
/// request: it keeps a signing request "in flight" for as long as a test needs.
struct StalledTsa {
    url: String,
    reached: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

fn stalled_tsa() -> StalledTsa {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (reached_tx, reached) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            if n == 0 {
                let _ = reached_tx.send(());
                let _ = released.recv();
            }
            let _ = stream.write_all(
                b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    StalledTsa { url, reached, release }
}

/// Signing runs outside the per-key decision lock, so a lower security counter must not slip
/// in while a higher one is still being signed: the running request's counter counts as
/// signed until it is recorded, and stops counting when it fails.
#[test]
fn a_rollback_cannot_slip_in_while_a_newer_image_is_being_signed() {
    let setup = setup_with(POLICY);
    let tsa = stalled_tsa();
    let config = std::fs::read_to_string(&setup.config).expect("config");
    let config = config.replacen(
        "body_limit = 65536\n",
        &format!("body_limit = 65536\ntimestamp_url = \"{}\"\n", tsa.url),
        1,
    );
    write(&setup.config, &config);
    let submitter = setup.token("station-1", Role::Submitter);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());

    std::thread::scope(|scope| {
        let newer = scope.spawn(|| {
            call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 5)])))
        });
        tsa.reached.recv_timeout(std::time::Duration::from_secs(30)).expect("signing started");
        let (status, body) =
            call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 3)])));
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("no-rollback"), "{body}");
        tsa.release.send(()).expect("release");
        let (status, body) = newer.join().expect("newer");
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("time-stamping failed"), "{body}");
    });
    // Counter 5 was never signed: 3 passes the policy again (and fails only at the TSA).
    let (status, body) =
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 3)])));
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("time-stamping failed"), "{body}");
}

/// A REVOKE_KEYS TLV entry naming `keys`.
fn revoke_keys_tlv(keys: &[RevokedKey]) -> Vec<u8> {
    let value: Vec<u8> = keys.iter().flat_map(RevokedKey::encode).collect();
    let len = u16::try_from(value.len()).expect("length");
    [&tlv::REVOKE_KEYS.to_le_bytes()[..], &len.to_le_bytes(), &value].concat()
}

#[test]
fn a_retired_or_revoked_key_signs_nothing_more_and_stays_so() {
    let setup = setup_with(POLICY);
    let submitter = setup.token("station-1", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let sign = |counter| {
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, counter)])))
    };
    assert_eq!(sign(1).0, 200);

    // Retired while the service runs: the next request is refused, with the reason.
    set_key_state(&setup.config, "dev", KeyState::Retired).expect("retire");
    let (status, body) = sign(2);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("key \\\"dev\\\" is retired"), "{body}");
    set_key_state(&setup.config, "dev", KeyState::Revoked).expect("revoke");
    let (status, body) = sign(3);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("is revoked"), "{body}");

    // One way only: neither back to active nor down to retired.
    for state in [KeyState::Active, KeyState::Retired] {
        let error = set_key_state(&setup.config, "dev", state).expect_err("backwards");
        assert!(
            matches!(error, ServerError::Storage(StorageError::KeyStateBackwards { .. })),
            "{error}"
        );
    }
    let error = set_key_state(&setup.config, "nope", KeyState::Revoked).expect_err("unknown key");
    assert!(error.to_string().contains("no key named \"nope\""), "{error}");

    // Each refusal is on the trail, signature-free; the chain holds.
    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    let refused: Vec<_> = records[1..].iter().map(body_of).collect();
    assert_eq!(refused.len(), 2);
    for record in &refused {
        assert_eq!(record["decision"], "refused");
        assert!(record["reason"].as_str().unwrap_or("").contains("signs nothing more"));
        assert!(
            record["images"].as_array().expect("images").iter().all(|i| i["signature"].is_null())
        );
    }
    // A restart does not bring the key back.
    drop(service);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let (status, _) =
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 4)])));
    assert_eq!(status, 403);
}

#[test]
fn a_request_pending_approval_is_not_signed_once_its_key_is_revoked() {
    let setup = setup_with(POLICY);
    let alice = setup.token("alice", Role::Submitter);
    let bob = setup.token("bob", Role::Approver);
    let erin = create_token(&setup.config, "erin", Role::Approver, Some("release-managers"))
        .expect("token");
    let service = setup.start();
    let url = |path: &str| format!("{}{path}", service.url());
    let body = sign_body("release", &[region(64, 1)]);
    let (status, reply) = call("POST", &url("/v1/sign"), Some(&alice), Some(&body));
    assert_eq!(status, 202, "{reply}");
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    let id = reply["request"].as_str().expect("id").to_owned();
    set_key_state(&setup.config, "release", KeyState::Revoked).expect("revoke");
    let approve = url(&format!("/v1/requests/{id}/approve"));
    let (status, reply) = call("POST", &approve, Some(&bob), Some(""));
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = call("POST", &approve, Some(&erin), Some(""));
    assert_eq!(status, 403, "{reply}");
    assert!(reply.contains("is revoked"), "{reply}");
    assert!(!reply.contains("signature"), "{reply}");
}

#[test]
fn the_policy_sees_rotation_images_and_can_demand_approvals() {
    let policy = format!(
        "{POLICY}\n@id(\"rotation-needs-two-approvals\")\nforbid (principal, action, resource)\n\
         when {{ context.revokes_keys && context.approvals < 2 }};\n"
    );
    let setup = setup_with(&policy);
    let submitter = setup.token("station-1", Role::Submitter);
    let service = setup.start();
    let url = format!("{}/v1/sign", service.url());
    let rotation = region_with(64, 2, &revoke_keys_tlv(&[RevokedKey::Slot(0)]));
    let (status, body) = call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[rotation])));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("rotation-needs-two-approvals"), "{body}");
    // The same image without the TLV is an ordinary update.
    let (status, body) =
        call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[region(64, 2)])));
    assert_eq!(status, 200, "{body}");
    // A malformed or repeated REVOKE_KEYS is refused before the policy is asked.
    let slot_with_hash = [&tlv::REVOKE_KEYS.to_le_bytes()[..], &[33, 0, 1], &[7; 32]].concat();
    let twice =
        [revoke_keys_tlv(&[RevokedKey::Slot(0)]), revoke_keys_tlv(&[RevokedKey::Slot(1)])].concat();
    for extra in [slot_with_hash, twice] {
        let image = region_with(64, 3, &extra);
        let (status, body) =
            call("POST", &url, Some(&submitter), Some(&sign_body("dev", &[image])));
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("0x00a3") || body.contains("REVOKE_KEYS"), "{body}");
    }
}

#[test]
fn a_database_with_a_newer_schema_is_refused_at_start() {
    let setup = setup_with(POLICY);
    drop(setup.start());
    let config = ServiceConfig::load(&setup.config).expect("config");
    common::execute(&config.database, "INSERT INTO schema_version (version) VALUES (99)");
    let error = RunningService::start(config.clone()).map(|_| ()).expect_err("must not start");
    let error = error.to_string();
    assert!(
        error.contains(&format!("database {} has schema version 99", config.database)),
        "{error}"
    );
    let known = fwsign_service::storage::migrations::SQLITE.len();
    assert!(
        error.contains(&format!("newer than version {known} that this fwsign knows")),
        "{error}"
    );
    let token = create_token(&setup.config, "late", Role::Submitter, None).expect_err("refused");
    assert!(token.to_string().contains("schema version 99"), "{token}");
}

#[test]
fn a_sqlite_database_from_before_schema_versions_is_adopted_with_its_tokens() {
    let setup = setup_with(POLICY);
    let file = setup.dir.path().join("old.db");
    let url = format!("sqlite:{}?mode=rwc", file.display());
    // The schema as the first release created it, with no schema_version table.
    common::execute(&url, include_str!("../migrations/sqlite/0001_initial.sql"));
    let token = fwsign_service::tokens::generate().expect("token");
    let hash = fwsign_service::tokens::hash(&token);
    let insert = format!(
        "INSERT INTO api_tokens (name, role, grp, hash, created) VALUES ('old', 'auditor', NULL, '{hash}', 0)"
    );
    common::execute(&url, &insert);
    let text = std::fs::read_to_string(&setup.config).expect("config");
    let database = text.lines().find(|l| l.starts_with("database")).expect("database line");
    write(&setup.config, &text.replace(database, "database = \"sqlite:old.db\""));
    let service = setup.start();
    assert!(audit(&service, &token).is_empty(), "the old token still works");
}

/// A device record as a factory station sends it.
fn provisioned_device() -> serde_json::Value {
    serde_json::json!({
        "station": "line-1", "station_row": 1, "identity": "qemu-0011223344556677",
        "probe": "qemu:mps2-an386:0", "status": "good",
        "started_at": 1_790_000_000, "finished_at": 1_790_000_002,
        "bootloader_sha256": "a".repeat(64), "record_sha256": "b".repeat(64),
        "application_sha256": "c".repeat(64), "version": "1.0.0", "security_counter": 1,
        "key_hashes": ["d".repeat(64)], "read_back": "ok", "boot": "version=1.0.0",
        "lock": "not applicable", "error": null,
    })
}

#[test]
fn a_station_records_devices_in_the_audit_trail_and_nobody_else_can() {
    let setup = setup_with(POLICY);
    let station = setup.token("line-1", Role::Station);
    let submitter = setup.token("ci", Role::Submitter);
    let auditor = setup.token("carol", Role::Auditor);
    let service = setup.start();
    let url = format!("{}/v1/factory/devices", service.url());
    let device = provisioned_device();

    let (status, body) = call("POST", &url, Some(&station), Some(&device.to_string()));
    assert_eq!(status, 201, "{body}");
    let seq = serde_json::from_str::<serde_json::Value>(&body).expect("reply")["seq"].clone();

    let (status, body) = call("POST", &url, Some(&submitter), Some(&device.to_string()));
    assert_eq!(status, 403, "a submitter recorded a device: {body}");
    assert!(body.contains("station role"), "{body}");
    let (status, _) = call("POST", &url, None, Some(&device.to_string()));
    assert_eq!(status, 401);
    let mut forged = device.clone();
    forged["record_sha256"] = "not a digest".into();
    let (status, body) = call("POST", &url, Some(&station), Some(&forged.to_string()));
    assert_eq!(status, 400);
    assert!(body.contains("record_sha256"), "{body}");
    let mut extra = device.clone();
    extra["approved_by"] = "nobody".into();
    let (status, body) = call("POST", &url, Some(&station), Some(&extra.to_string()));
    assert_eq!(status, 400, "{body}");

    let records = audit(&service, &auditor);
    verify_chain(&records).expect("chain");
    let recorded = records.iter().find(|r| serde_json::json!(r.seq) == seq).expect("the record");
    let recorded = body_of(recorded);
    assert_eq!(recorded["decision"], "provisioned");
    assert_eq!(recorded["identity"]["name"], "line-1");
    assert_eq!(recorded["device"], device);
    let refused = records.iter().map(body_of).filter(|b| b["decision"] == "refused").count();
    assert_eq!(refused, 4, "every refused attempt is on the trail");
}
