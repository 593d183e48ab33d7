use super::*;

const GOOD: &str = r#"
board = "test"

[slot]
size = 0x20000
sector_size = 0x1000
address = 0x20000
header_size = 0x200
align = 4
max_align = 8
erased_value = 0xff

[rules]
security_counter = "required"
allowed_flags = ["ROM_FIXED"]

[keys]
trusted = ["keys/a.pem", "pkcs11:token=t;object=k", "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"]
revoked = ["old.pem"]
"#;

fn parse(text: &str) -> Result<Profile, ProfileError> {
    Profile::parse(text, Path::new("/p/dev.toml"))
}

fn field_error(text: &str) -> (usize, &'static str, String) {
    match parse(text) {
        Err(ProfileError::Field { line, field, problem, .. }) => (line, field, problem),
        other => panic!("expected a field error, got {other:?}"),
    }
}

#[test]
fn reads_every_field() {
    let profile = parse(GOOD).unwrap();
    assert_eq!(profile.slot.size, 0x20000);
    assert_eq!(profile.max_image_len(), 0x1f000);
    assert_eq!(profile.slot.header_size, 0x200);
    assert!(profile.require_security_counter);
    assert_eq!(profile.allowed_flags, flags::ROM_FIXED);
    assert_eq!(profile.trusted_keys[0], KeySpec::Pem(PathBuf::from("/p/keys/a.pem")));
    assert_eq!(profile.trusted_keys[1], KeySpec::Pkcs11("pkcs11:token=t;object=k".into()));
    assert!(matches!(profile.trusted_keys[2], KeySpec::SpkiSha256([0x00, 0x11, ..])));
    assert_eq!(profile.revoked_keys, [KeySpec::Pem(PathBuf::from("/p/old.pem"))]);
    let policy = profile.policy(3);
    assert_eq!(policy.min_security_counter, Some(3));
    assert_eq!(policy.max_image_len, Some(0x1f000));
    assert_eq!(policy.run_address, Some(0x20000));
}

#[test]
fn errors_name_line_and_field() {
    let text = GOOD.replace("sector_size = 0x1000", "sector_size = 0x3000");
    let (line, field, problem) = field_error(&text);
    assert_eq!((line, field), (5, "slot.size"), "{problem}");
    assert!(problem.contains("0x20000"), "{problem}");

    let (line, field, problem) = field_error(&GOOD.replace("align = 4", "align = 3"));
    assert_eq!((line, field), (9, "slot.align"), "{problem}");

    let (line, field, problem) = field_error(&GOOD.replace("\"required\"", "\"always\""));
    assert_eq!((line, field), (14, "rules.security_counter"), "{problem}");

    let (_, field, problem) = field_error(&GOOD.replace("[\"ROM_FIXED\"]", "[\"NON_BOOTABLE\"]"));
    assert_eq!(field, "rules.allowed_flags");
    assert!(problem.contains("never boots"), "{problem}");

    let (_, field, _) = field_error(&GOOD.replace("sha256:00", "sha256:zz"));
    assert_eq!(field, "keys.trusted");

    let (line, field, _) = field_error(&GOOD.replace("header_size = 0x200", "header_size = 16"));
    assert_eq!((line, field), (8, "slot.header_size"));
}

const LOG_KEY: &str = "example.com/log+a06c8792+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
const OTHER_LOG_KEY: &str =
    "other.example/log+f86201f0+AQECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g";

fn with_log_keys(entries: &str) -> String {
    GOOD.replace("revoked = [\"old.pem\"]", &format!("transparency_log = [{entries}]"))
}

#[test]
fn log_keys_are_given_inline_or_in_a_file() {
    assert!(parse(GOOD).unwrap().log_keys.is_empty());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("logs.txt"), format!("# the logs\n{OTHER_LOG_KEY}\n\n"))
        .unwrap();
    let text = with_log_keys(&format!("\"{LOG_KEY}\", \"logs.txt\""));
    let profile = Profile::parse(&text, &dir.path().join("dev.toml")).unwrap();
    let names: Vec<_> = profile.log_verifier_keys().iter().map(|k| k.name()).collect();
    assert_eq!(names, ["example.com/log", "other.example/log"]);
    assert_eq!(profile.log_keys[0].file(), None);
    assert_eq!(profile.log_keys[1].file(), Some(dir.path().join("logs.txt").as_path()));
    assert_eq!(profile.log_keys[1].text(), OTHER_LOG_KEY);
}

#[test]
fn a_bad_log_key_names_the_file_and_field() {
    // A key id that does not match the name and key: neither a key nor a file.
    let bad_id = LOG_KEY.replace("a06c8792", "a06c8793");
    let (line, field, problem) = field_error(&with_log_keys(&format!("\"{bad_id}\"")));
    assert_eq!((line, field), (19, "keys.transparency_log"), "{problem}");
    assert!(problem.contains("neither a verifier key") && problem.contains(&bad_id), "{problem}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("logs.txt");
    std::fs::write(&file, format!("{LOG_KEY}\nexample.com/log+zz\n")).unwrap();
    let text = with_log_keys("\"logs.txt\"");
    let error = Profile::parse(&text, &dir.path().join("dev.toml")).unwrap_err().to_string();
    assert!(error.contains("keys.transparency_log"), "{error}");
    assert!(error.contains(&format!("{}:2:", file.display())), "{error}");

    std::fs::write(&file, "# no key yet\n").unwrap();
    let error = Profile::parse(&text, &dir.path().join("dev.toml")).unwrap_err().to_string();
    assert!(error.contains("holds no verifier key"), "{error}");

    let (_, field, _) = field_error(&with_log_keys("\"\""));
    assert_eq!(field, "keys.transparency_log");
}

#[test]
fn keys_are_compiled_in_unless_the_profile_says_provisioned() {
    assert_eq!(parse(GOOD).unwrap().key_source, KeySource::Compiled);
    let with_source =
        |source: &str| GOOD.replace("[keys]\n", &format!("[keys]\nsource = {source}\n"));
    assert_eq!(parse(&with_source("\"compiled\"")).unwrap().key_source, KeySource::Compiled);
    assert_eq!(parse(&with_source("\"provisioned\"")).unwrap().key_source, KeySource::Provisioned);
    let (line, field, problem) = field_error(&with_source("\"otp\""));
    assert_eq!((line, field), (18, "keys.source"), "{problem}");
    assert!(problem.contains("\"otp\"") && problem.contains("\"provisioned\""), "{problem}");
}

#[test]
fn revocation_by_use_needs_provisioned_keys() {
    assert!(!parse(GOOD).unwrap().revoke_by_use);
    let with = |keys: &str| GOOD.replace("[keys]\n", &format!("[keys]\n{keys}\n"));
    let provisioned = parse(&with("source = \"provisioned\"\nrevoke_by_use = true")).unwrap();
    assert!(provisioned.revoke_by_use);
    assert!(!parse(&with("revoke_by_use = false")).unwrap().revoke_by_use);
    let (line, field, problem) = field_error(&with("revoke_by_use = true"));
    assert_eq!((line, field), (18, "keys.revoke_by_use"), "{problem}");
    assert!(problem.contains("provisioned"), "{problem}");
    let error = parse(&with("revoke_by_use = \"yes\"")).unwrap_err().to_string();
    assert!(error.contains("/p/dev.toml") && error.contains("revoke_by_use"), "{error}");
}

#[test]
fn unknown_and_missing_fields_are_refused() {
    let text = GOOD.replace("revoked = [\"old.pem\"]", "transparency_logs = [\"k.pem\"]");
    let error = parse(&text).unwrap_err().to_string();
    assert!(error.contains("/p/dev.toml") && error.contains("transparency_logs"), "{error}");
    let error = parse(&GOOD.replace("max_align = 8\n", "")).unwrap_err().to_string();
    assert!(error.contains("max_align"), "{error}");
    let error = field_error(&GOOD.replace(
        "trusted = [\"keys/a.pem\", \"pkcs11:token=t;object=k\", \"sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"]",
        "trusted = []",
    ));
    assert_eq!(error.1, "keys.trusted");
}

#[test]
fn every_shipped_profile_is_valid() {
    for board in ["mps2-an386", "mps2-an385", "mps2-an505", "nrf52840dk"] {
        let profile = Profile::load(&shipped(board)).unwrap();
        assert_eq!(profile.board, board);
        assert!(profile.require_security_counter, "{board}");
    }
}

#[test]
fn a_profile_must_match_the_memory_map() {
    let profile = parse(GOOD).unwrap();
    let map = MemoryMap {
        slot_size: 0x20000,
        sector_size: 0x1000,
        primary_address: 0x20000,
        header_size: 0x200,
    };
    profile.check_memory_map("test", &map).unwrap();
    let error = profile
        .check_memory_map("test", &MemoryMap { primary_address: 0x10020000, ..map })
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("slot.address is 0x20000 but the test memory map says 0x10020000"),
        "{error}"
    );
}
