//! `fwsign policy check`: the service's policy decision, offline, for a claim set and an image.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::{fwsign, fwsign_status, pseudo_random_bytes, text};

/// The signing service's example policy, as its README shows it.
const POLICY: &str = include_str!("../../signing-service/examples/policy.cedar");

fn claims(reference: &str) -> String {
    serde_json::json!({
        "iss": "https://token.actions.githubusercontent.com", "aud": "fwsign",
        "sub": "repo:acme/fw:environment:production", "repository": "acme/fw",
        "repository_id": "123456", "ref": reference, "ref_type": "tag",
        "workflow_ref": "acme/fw/.github/workflows/release.yml@refs/tags/v1.2.3",
        "environment": "production", "exp": 1, "iat": 0
    })
    .to_string()
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("policy.cedar"), POLICY).unwrap();
    fwsign(dir, &["keygen", "-k", "release.pem", "-t", "ed25519"]);
    std::fs::write(
        dir.join("service.toml"),
        "listen = \"127.0.0.1:8443\"\ndatabase = \"sqlite:s.db\"\npolicy = \"policy.cedar\"\n\
         [keys.release]\nkey = \"release.pem\"\n[keys.dev]\nkey = \"release.pem\"\n\
         [groups.factory]\nmembers = [\"station-1\"]\n\
         [issuers.github]\nissuer = \"https://token.actions.githubusercontent.com\"\naudience = \"fwsign\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(2000, 5)).unwrap();
    let sign = ["sign", "-v", "1.2.3", "-s", "5", "-H", "0x200", "--pad-header", "-S", "0x10000"];
    fwsign(dir, &[&sign[..], &["app.bin", "app-unsigned.bin"]].concat());
    std::fs::write(dir.join("tag.json"), claims("refs/tags/v1.2.3")).unwrap();
    std::fs::write(dir.join("branch.json"), claims("refs/heads/feature-x")).unwrap();
}

#[test]
fn policy_check_answers_allow_or_deny_with_the_deciding_policy() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let check = |claims: &str, key: &str, extra: &[&str]| {
        let mut args = vec!["policy", "check", "--config", "service.toml", "--claims", claims];
        args.extend(["--image", "app-unsigned.bin", "--key", key]);
        args.extend(extra);
        fwsign_status(dir.path(), &args)
    };
    let output = check("tag.json", "release", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "allow: release-tags-only\n");

    let output = check("branch.json", "release", &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "deny: no policy permits this request\n");

    let output = check("branch.json", "dev", &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "allow: dev-any-branch\n");

    let output = check("tag.json", "release", &["--highest-security-counter", "6"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout), "deny: no-rollback\n");

    std::fs::write(dir.path().join("gitlab.json"), "{\"iss\": \"https://gitlab.com\"}").unwrap();
    let output = check("gitlab.json", "release", &[]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output)
            .contains("gitlab.json: iss \"https://gitlab.com\" is not a configured issuer")
    );

    let output = fwsign_status(
        dir.path(),
        &[
            "policy",
            "check",
            "--config",
            "service.toml",
            "--claims",
            "tag.json",
            "--image",
            "app.bin",
            "--key",
            "release",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("app.bin"), "{}", text(&output));
}
