//! CI workload identity end to end: a loopback OIDC issuer (discovery + JWKS, RSA and P-256
//! keys) mints GitHub- and GitLab-shaped tokens; the service accepts the right ones and refuses
//! each kind of wrong one, each with its own reason, an audit record and no signature.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::issuer::{IssuerKey, b64url, ec_key, mint};
use common::{audit, call, region, sign_body};
use fwsign_keys::keys::{Algorithm as KeyAlgorithm, PrivateKey};
use fwsign_service::client::{DEFAULT_AUDIENCE, GITHUB_ACTIONS_ISSUER, ServiceClient};
use fwsign_service::config::ServiceConfig;
use fwsign_service::server::{RunningService, create_token};
use fwsign_service::tokens::Role;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const AUDIENCE: &str = "fwsign-test";

const POLICY: &str = r#"
@id("release-tags-only")
permit (principal is Workload, action == Action::"sign", resource == Key::"dev")
when {
  principal.issuer_name == "github" &&
  principal has repository && principal.repository == "acme/fw" &&
  principal has repository_id && principal.repository_id == "123456" &&
  principal has ref && principal.ref like "refs/tags/v*" &&
  principal has workflow_ref && principal.workflow_ref like "acme/fw/.github/workflows/release.yml@*" &&
  principal has environment && principal.environment == "production"
};

@id("gitlab-protected-main")
permit (principal is Workload, action == Action::"sign", resource == Key::"dev")
when {
  principal.issuer_name == "gitlab" &&
  principal has project_path && principal.project_path == "acme/fw" &&
  principal has ref_protected && principal.ref_protected == "true"
};
"#;

fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let mut command = std::process::Command::new(fwsign_tests::openssl());
    command.current_dir(dir).args(args);
    fwsign_tests::run_checked(&mut command)
}

/// Bytes of hex text.
fn from_hex(hex: &str) -> Vec<u8> {
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect()
}

fn rsa_key(dir: &Path, kid: &'static str) -> IssuerKey {
    let pem_path = format!("{kid}.pem");
    openssl(
        dir,
        &["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", &pem_path],
    );
    let private = std::fs::read(dir.join(&pem_path)).expect("rsa key");
    let public_pem = openssl(dir, &["pkey", "-in", &pem_path, "-pubout"]);
    let modulus = String::from_utf8(openssl(dir, &["rsa", "-in", &pem_path, "-noout", "-modulus"]))
        .expect("modulus text");
    let modulus = from_hex(modulus.trim().strip_prefix("Modulus=").expect("Modulus="));
    let jwk = json!({ "kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
        "n": b64url(&modulus), "e": "AQAB" });
    IssuerKey {
        kid,
        algorithm: Algorithm::RS256,
        encoding: EncodingKey::from_rsa_pem(&private).expect("rsa pem"),
        public_pem,
        jwk,
    }
}

/// The loopback OIDC issuer: `/{name}/.well-known/openid-configuration` and `/{name}/jwks`.
struct TestIssuer {
    base: String,
    jwks_fetches: Arc<AtomicUsize>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

fn start_issuer(jwks: Value) -> TestIssuer {
    let (tell, bound) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let jwks_fetches = Arc::new(AtomicUsize::new(0));
    let fetches = jwks_fetches.clone();
    std::thread::spawn(move || {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let base = format!("http://{}", listener.local_addr().expect("addr"));
            let _ = tell.send(base.clone());
            let discovery = |issuer: String, jwks_uri: String| {
                axum::routing::get(move || async move {
                    axum::Json(json!({ "issuer": issuer, "jwks_uri": jwks_uri }))
                })
            };
            let app = axum::Router::new()
                .route(
                    "/github/.well-known/openid-configuration",
                    discovery(format!("{base}/github"), format!("{base}/github/jwks")),
                )
                .route(
                    "/liar/.well-known/openid-configuration",
                    discovery(
                        "https://token.actions.githubusercontent.com".into(),
                        format!("{base}/github/jwks"),
                    ),
                )
                .route(
                    "/github/jwks",
                    axum::routing::get(move || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        let jwks = jwks.clone();
                        async move { axum::Json(jwks) }
                    }),
                );
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("issuer serves");
        });
    });
    TestIssuer { base: bound.recv().expect("issuer bound"), jwks_fetches, _stop: stop }
}

fn now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn github_claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300,
        "jti": "j1", "sub": "repo:acme/fw:environment:production",
        "repository": "acme/fw", "repository_id": "123456", "repository_owner": "acme",
        "ref": "refs/tags/v1.2.3", "ref_type": "tag", "sha": "0123abcd",
        "workflow_ref": "acme/fw/.github/workflows/release.yml@refs/tags/v1.2.3",
        "job_workflow_ref": "acme/fw/.github/workflows/release.yml@refs/tags/v1.2.3",
        "environment": "production", "runner_environment": "github-hosted",
        "run_id": "42", "run_attempt": "1", "actor": "octocat",
        "check_run_id": "99"
    })
}

fn gitlab_claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "aud": AUDIENCE, "iat": now, "nbf": now, "exp": now + 300,
        "sub": "project_path:acme/fw:ref_type:branch:ref:main",
        "project_path": "acme/fw", "project_id": "77", "namespace_path": "acme",
        "ref": "main", "ref_type": "branch", "ref_protected": "true", "pipeline_id": "5",
        "ci_config_ref_uri": "gitlab.example/acme/fw//.gitlab-ci.yml@refs/heads/main"
    })
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    claims[name] = value;
    claims
}

fn sign(service: &RunningService, bearer: &str) -> (u16, Value) {
    let url = format!("{}/v1/sign", service.url());
    let (status, text) =
        call("POST", &url, Some(bearer), Some(&sign_body("dev", &[region(64, 1)])));
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn ci_identity_tokens_are_checked_exactly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rsa = rsa_key(dir.path(), "rsa-1");
    let rogue = rsa_key(dir.path(), "rsa-1-rogue");
    let ec = ec_key("ec-1");
    let issuer = start_issuer(json!({ "keys": [rsa.jwk, ec.jwk] }));
    let github = format!("{}/github", issuer.base);
    let gitlab = "https://gitlab.example.com".to_owned();
    std::fs::write(dir.path().join("gitlab-jwks.json"), json!({ "keys": [ec.jwk] }).to_string())
        .expect("jwks file");
    let dev = PrivateKey::generate(KeyAlgorithm::Ed25519).expect("key");
    std::fs::write(dir.path().join("dev.pem"), dev.to_pkcs8_pem(None).expect("pem"))
        .expect("write");
    std::fs::write(dir.path().join("policy.cedar"), POLICY).expect("policy");
    let config = dir.path().join("service.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndatabase = \"{}\"\npolicy = \"policy.cedar\"\n\
             [keys.dev]\nkey = \"dev.pem\"\n\
             [issuers.github]\nissuer = \"{github}\"\naudience = \"{AUDIENCE}\"\n\
             [issuers.gitlab]\nissuer = \"{gitlab}\"\naudience = \"{AUDIENCE}\"\njwks = \"gitlab-jwks.json\"\n\
             [issuers.liar]\nissuer = \"{}/liar\"\naudience = \"{AUDIENCE}\"\n",
            common::database(),
            issuer.base
        ),
    )
    .expect("config");
    let auditor = create_token(&config, "carol", Role::Auditor, None).expect("token");
    let service =
        RunningService::start(ServiceConfig::load(&config).expect("config")).expect("start");

    // Accepted: GitHub (RS256, discovery) and GitLab (ES256, JWKS file).
    let (status, reply) = sign(&service, &mint(&rsa, &github_claims(&github)));
    assert_eq!(status, 200, "{reply}");
    let (status, reply) = sign(&service, &mint(&ec, &gitlab_claims(&gitlab)));
    assert_eq!(status, 200, "{reply}");

    let good = github_claims(&github);
    let header_none = b64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64url(good.to_string().as_bytes());
    let hs256 = jsonwebtoken::encode(
        &Header { kid: Some("rsa-1".into()), ..Header::new(Algorithm::HS256) },
        &good,
        &EncodingKey::from_secret(&rsa.public_pem).expect("secret"),
    )
    .expect("hs256");
    let mut unknown_kid = Header::new(Algorithm::RS256);
    unknown_kid.kid = Some("rsa-404".into());
    let unknown_kid = jsonwebtoken::encode(&unknown_kid, &good, &rsa.encoding).expect("mint");
    let mut rogue_signed = Header::new(Algorithm::RS256);
    rogue_signed.kid = Some("rsa-1".into());
    let rogue_signed = jsonwebtoken::encode(&rogue_signed, &good, &rogue.encoding).expect("mint");
    let mut es_header_rsa_key = Header::new(Algorithm::ES256);
    es_header_rsa_key.kid = Some("rsa-1".into());
    let es_header_rsa_key =
        jsonwebtoken::encode(&es_header_rsa_key, &good, &ec.encoding).expect("mint");
    let now = now();
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "wrong aud",
            mint(&rsa, &with(good.clone(), "aud", json!("someone-else"))),
            401,
            "audience is not \"fwsign-test\"",
        ),
        (
            "wrong iss",
            mint(&rsa, &with(good.clone(), "iss", json!("https://evil.example"))),
            401,
            "issuer \"https://evil.example\" is not configured",
        ),
        (
            "expired",
            mint(&rsa, &with(with(good.clone(), "exp", json!(now - 600)), "iat", json!(now - 900))),
            401,
            "expired",
        ),
        (
            "nbf in the future",
            mint(&rsa, &with(good.clone(), "nbf", json!(now + 600))),
            401,
            "not valid yet (nbf",
        ),
        (
            "iat in the future",
            mint(&rsa, &with(with(good.clone(), "iat", json!(now + 600)), "exp", json!(now + 900))),
            401,
            "not valid yet (iat",
        ),
        ("alg none", format!("{header_none}.{payload}."), 401, "algorithm none is not accepted"),
        ("HS256 with the public key as secret", hs256, 401, "algorithm HS256 is not accepted"),
        ("unknown kid", unknown_kid, 401, "key id Some(\"rsa-404\") is not in the JWKS"),
        ("key not in the JWKS", rogue_signed, 401, "signature does not verify"),
        (
            "header alg differs from the key",
            es_header_rsa_key,
            401,
            "says ES256 but key rsa-1 is a RS256 key",
        ),
        (
            "discovery issuer mismatch",
            mint(&rsa, &with(good.clone(), "iss", json!(format!("{}/liar", issuer.base)))),
            401,
            "discovery document's issuer",
        ),
        (
            "a branch, not a tag",
            mint(&rsa, &with(good.clone(), "ref", json!("refs/heads/feature-x"))),
            403,
            "no policy permits",
        ),
        (
            "repository id differs from the name",
            mint(&rsa, &with(good.clone(), "repository_id", json!("999"))),
            403,
            "no policy permits",
        ),
        (
            "unprotected GitLab ref",
            mint(&ec, &with(gitlab_claims(&gitlab), "ref_protected", json!("false"))),
            403,
            "no policy permits",
        ),
    ];
    for (what, token, status, reason) in &cases {
        let (got, reply) = sign(&service, token);
        assert_eq!(got, *status, "{what}: {reply}");
        let error = reply["error"].as_str().unwrap_or("");
        assert!(error.contains(reason), "{what}: {error}");
        assert!(reply.get("signatures").is_none(), "{what}");
    }
    // An unknown kid triggered one refetch; the next one within the interval does not refetch.
    let fetches = issuer.jwks_fetches.load(Ordering::SeqCst);
    let mut again = Header::new(Algorithm::RS256);
    again.kid = Some("rsa-405".into());
    let (status, _) =
        sign(&service, &jsonwebtoken::encode(&again, &good, &rsa.encoding).expect("mint"));
    assert_eq!(status, 401);
    assert_eq!(issuer.jwks_fetches.load(Ordering::SeqCst), fetches, "refetch is rate-limited");

    let records = audit(&service, &auditor);
    fwsign_service::audit::verify_chain(&records).expect("chain");
    assert_eq!(records.len(), 2 + cases.len() + 1);
    let first: Value = serde_json::from_str(&records[0].body).expect("json");
    assert_eq!(first["decision"], "signed");
    assert_eq!(first["reason"], "release-tags-only");
    assert_eq!(first["identity"]["issuer_name"], "github");
    assert_eq!(
        first["identity"]["claims"]["check_run_id"], "99",
        "claims outside the schema are kept"
    );
    for (record, (what, _, status, _)) in records[2..].iter().zip(&cases) {
        let body: Value = serde_json::from_str(&record.body).expect("json");
        let expected = if *status == 403 { "denied" } else { "refused" };
        assert_eq!(body["decision"], expected, "{what}: {body}");
    }
}

#[test]
fn the_service_names_the_audience_a_github_job_asks_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dev = PrivateKey::generate(KeyAlgorithm::Ed25519).expect("key");
    std::fs::write(dir.path().join("dev.pem"), dev.to_pkcs8_pem(None).expect("pem"))
        .expect("write");
    std::fs::write(dir.path().join("policy.cedar"), POLICY).expect("policy");
    std::fs::write(dir.path().join("jwks.json"), json!({ "keys": [] }).to_string()).expect("jwks");
    let base = "listen = \"127.0.0.1:0\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n\
                [keys.dev]\nkey = \"dev.pem\"\n\
                [issuers.gitlab]\nissuer = \"https://gitlab.example.com\"\naudience = \"gl\"\njwks = \"jwks.json\"\n";
    let config = dir.path().join("service.toml");
    let start = |text: String| {
        std::fs::write(&config, text).expect("config");
        RunningService::start(ServiceConfig::load(&config).expect("config")).expect("start")
    };

    let service = start(format!(
        "{base}[issuers.github]\nissuer = \"{GITHUB_ACTIONS_ISSUER}\"\naudience = \"acme-signing\"\n"
    ));
    let (status, text) = call("GET", &format!("{}/v1/info", service.url()), None, None);
    assert_eq!(status, 200, "{text}");
    let info: Value = serde_json::from_str(&text).expect("info JSON");
    assert_eq!(info["issuers"][0]["name"], "github");
    assert_eq!(info["issuers"][0]["issuer"], GITHUB_ACTIONS_ISSUER);
    assert_eq!(info["issuers"][0]["audience"], "acme-signing");
    assert_eq!(info["issuers"][1]["audience"], "gl");
    let client = ServiceClient::new(&service.url(), String::new());
    assert_eq!(client.github_actions_audience().expect("audience"), "acme-signing");
    drop(service);

    let service = start(base.to_owned());
    let client = ServiceClient::new(&service.url(), String::new());
    assert_eq!(client.github_actions_audience().expect("audience"), DEFAULT_AUDIENCE);

    // A server without /v1/info (an older service) leaves the default.
    let older = start_issuer(json!({ "keys": [] }));
    let client = ServiceClient::new(&older.base, String::new());
    assert_eq!(client.github_actions_audience().expect("audience"), DEFAULT_AUDIENCE);
}
