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

#[test]
fn unknown_and_missing_fields_are_refused() {
    let text = GOOD.replace("revoked = [\"old.pem\"]", "transparency_log = \"k.pem\"");
    let error = parse(&text).unwrap_err().to_string();
    assert!(error.contains("/p/dev.toml") && error.contains("transparency_log"), "{error}");
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
