//! Hostile clients: each attack fails with nothing signed and an audit record of the attempt.
//!
//! Where each attack is tested:
//!
//! | attack | file |
//! |---|---|
//! | no, unknown, revoked or wrong-role API token; malformed body; oversized body | `service.rs` |
//! | a token for another audience, expired, not yet valid, `alg: none`, HS256 with the public key, unknown `kid`, a key outside the JWKS, a lying issuer | `oidc.rs` |
//! | a valid token for a repository, ref or project the policy does not allow | `oidc.rs` |
//! | approval by the requester, by a non-approver, twice by one approver; the approved digest is the signed one | `approvals.rs` |
//! | rollback, and a rollback slipped in while a newer image is signing | `service.rs` |
//! | SQL-looking and oversized claim values, stored literally | here |
//! | path-like key names (`../x`, `/etc/passwd`, `%2e%2e`) | here |
//! | slowloris, a client leaving mid-body, kill -9 under load, a full disk | `cargo xtask service-faults` |

mod common;

use common::issuer::{ec_key, mint};
use common::{audit, body_of, call, region, sign_body};
use fwsign_keys::keys::{Algorithm, PrivateKey};
use fwsign_service::audit::verify_chain;
use fwsign_service::config::ServiceConfig;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;
use serde_json::{Value, json};

const AUDIENCE: &str = "fwsign-hostile";
const ISSUER: &str = "https://gitlab.example.com";

const POLICY: &str = r#"
permit (principal is Workload, action == Action::"sign", resource == Key::"dev")
when { principal has project_path && principal.project_path == "acme/fw" };

permit (principal in Group::"ci", action == Action::"sign", resource == Key::"dev");
"#;

/// A service with key `dev`, a GitLab-shaped issuer (JWKS file) and a submitter in group `ci`:
/// the service, an issuer key, the submitter's and an auditor's tokens, and the directory.
fn start() -> (RunningService, common::issuer::IssuerKey, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = ec_key("ec-1");
    std::fs::write(dir.path().join("jwks.json"), json!({ "keys": [issuer.jwk] }).to_string())
        .expect("jwks");
    let dev = PrivateKey::generate(Algorithm::Ed25519).expect("key");
    std::fs::write(dir.path().join("dev.pem"), dev.to_pkcs8_pem(None).expect("pem")).expect("key");
    std::fs::write(dir.path().join("policy.cedar"), POLICY).expect("policy");
    let config = dir.path().join("service.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n\
             [keys.dev]\nkey = \"dev.pem\"\n[groups.ci]\nmembers = [\"builder\"]\n\
             [issuers.gitlab]\nissuer = \"{ISSUER}\"\naudience = \"{AUDIENCE}\"\njwks = \"jwks.json\"\n"
        ),
    )
    .expect("config");
    let submitter = create_token(&config, "builder", Role::Submitter, None).expect("token");
    let auditor = create_token(&config, "carol", Role::Auditor, None).expect("token");
    let service =
        RunningService::start(ServiceConfig::load(&config).expect("config")).expect("start");
    (service, issuer, submitter, auditor, dir)
}

fn claims(project_path: &str, pipeline_id: &str) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    json!({
        "iss": ISSUER, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300,
        "sub": "project_path:acme/fw", "project_path": project_path, "pipeline_id": pipeline_id,
    })
}

#[test]
fn sql_looking_and_oversized_claims_are_refused_and_stored_literally() {
    let (service, issuer, _, auditor, _dir) = start();
    let url = format!("{}/v1/sign", service.url());
    let injection = "acme/fw' OR '1'='1";
    let drop_table = "5'); DROP TABLE audit; --";
    let oversized = "acme/fw".repeat(10_000);
    for (project, pipeline) in [(injection, drop_table), (oversized.as_str(), "6")] {
        let token = mint(&issuer, &claims(project, pipeline));
        let (status, reply) =
            call("POST", &url, Some(&token), Some(&sign_body("dev", &[region(64, 1)])));
        assert_eq!(status, 403, "{reply}");
        assert!(reply.contains("no policy permits"), "{reply}");
        assert!(!reply.contains("signatures"), "{reply}");
    }
    let records = audit(&service, &auditor);
    verify_chain(&records).expect("the trail is intact");
    assert_eq!(records.len(), 2);
    let stored: Vec<Value> = records.iter().map(body_of).collect();
    for body in &stored {
        assert_eq!(body["decision"], "denied", "{body}");
        assert!(body["images"][0]["signature"].is_null(), "{body}");
    }
    assert_eq!(stored[0]["identity"]["claims"]["project_path"], injection);
    assert_eq!(stored[0]["identity"]["claims"]["pipeline_id"], drop_table);
    assert_eq!(stored[1]["identity"]["claims"]["project_path"], oversized.as_str());
}

#[test]
fn path_like_key_names_name_no_key_and_reach_no_file() {
    let (service, _, submitter, auditor, _dir) = start();
    let names = ["../x", "../dev", "/etc/passwd", "%2e%2e/dev", "dev/../dev", "dev\0", ""];
    for name in names {
        let body = sign_body(name, &[region(64, 1)]);
        let (status, reply) =
            call("POST", &format!("{}/v1/sign", service.url()), Some(&submitter), Some(&body));
        assert!(status == 404 || status == 400, "{name:?}: {status} {reply}");
        assert!(!reply.contains("signatures"), "{name:?}: {reply}");
    }
    for path in ["..%2F..%2Fetc%2Fpasswd", "%2e%2e", "dev%2F..%2Fdev", "dev%00"] {
        let (status, reply) = call("GET", &format!("{}/v1/keys/{path}", service.url()), None, None);
        assert_eq!(status, 404, "{path}: {reply}");
        assert!(!reply.contains("root:"), "{path}: {reply}");
    }
    let records = audit(&service, &auditor);
    verify_chain(&records).expect("the trail is intact");
    assert_eq!(records.len(), names.len(), "one record per attempt");
    for (record, name) in records.iter().zip(names) {
        let body = body_of(record);
        assert_eq!(body["decision"], "refused", "{name:?}: {body}");
        assert!(
            body["images"]
                .as_array()
                .is_none_or(|images| { images.iter().all(|image| image["signature"].is_null()) })
        );
    }
}
