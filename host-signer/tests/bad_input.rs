//! Every bad input gets one clear line naming what is wrong, exit status 2 (1 for an
//! invalid image), and leaves no output file, finished or temporary, behind.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::Path;

use common::{fwsign, fwsign_status, hex_file, keys, par_each, pseudo_random_bytes, text};

#[derive(Debug)]
struct Case {
    name: &'static str,
    args: Vec<String>,
    /// Words the error message must contain.
    expect: &'static [&'static str],
}

fn setup(dir: &Path) {
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(2000, 21)).unwrap();
    let mut reserved = vec![0u8; 0x200];
    reserved[0x40] = 1;
    reserved.extend(pseudo_random_bytes(100, 22));
    std::fs::write(dir.join("dirty-header.bin"), reserved).unwrap();
    let block = pseudo_random_bytes(32, 23);
    let overlapping = hex_file(&[(0x0800_0000, &block), (0x0800_0010, &block)]);
    std::fs::write(dir.join("overlap.hex"), overlapping).unwrap();
    std::fs::write(dir.join("bad-checksum.hex"), ":0400000001020304F0\n:00000001FF\n").unwrap();
    let no_load = common::elf_file(&[(4, 0, b"note", 0), (1, 0x2000_0000, &[], 0x100)]);
    std::fs::write(dir.join("noload.elf"), no_load).unwrap();
    std::fs::write(dir.join("garbage.pem"), "not a key\n").unwrap();
    std::fs::write(dir.join("password.txt"), "right\n").unwrap();
    std::fs::write(dir.join("wrong-password.txt"), "wrong\n").unwrap();
    fwsign(dir, &["keygen", "-k", "enc.pem", "-t", "ed25519", "--password-file", "password.txt"]);
}

fn cases() -> Vec<Case> {
    let ed = keys().path("ed.pem");
    let ec = keys().path("ec.pem");
    let ed_pub = keys().path("ed-pub.pem");
    let sign = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = ["sign", "-v", "1.0.0", "-H", "0x200", "-S", "0x10000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let case = |name, args, expect| Case { name, args, expect };
    vec![
        case(
            "image larger than the slot",
            sign(&["-k", &ed, "--pad-header", "-S", "0x800", "app.bin", "out.bin"]),
            &["exceeds", "0x800"],
        ),
        case(
            "image plus trailer larger than the slot",
            sign(&["-k", &ed, "--pad-header", "-S", "0xa00", "app.bin", "out.bin"]),
            &["trailer", "-S"],
        ),
        case(
            "header not zero",
            sign(&["-k", &ed, "dirty-header.bin", "out.bin"]),
            &["--pad-header", "not zero"],
        ),
        case(
            "input shorter than header",
            sign(&["-k", &ed, "-H", "0x1000", "app.bin", "out.bin"]),
            &["shorter", "--pad-header"],
        ),
        case(
            "version out of range",
            sign(&["-k", &ed, "--pad-header", "-v", "256.0.0", "app.bin", "out.bin"]),
            &["--version", "major 256"],
        ),
        case(
            "malformed version",
            sign(&["-k", &ed, "--pad-header", "-v", "1.2+3", "app.bin", "out.bin"]),
            &["--version", "major[.minor"],
        ),
        case(
            "header size too small",
            sign(&["-k", &ed, "--pad-header", "-H", "16", "app.bin", "out.bin"]),
            &["--header-size", "32"],
        ),
        case(
            "pure with an ECDSA key",
            sign(&["-k", &ec, "--pad-header", "--pure", "app.bin", "out.bin"]),
            &["--pure", "Ed25519"],
        ),
        case(
            "sha 512 with an ECDSA key",
            sign(&["-k", &ec, "--pad-header", "--sha", "512", "app.bin", "out.bin"]),
            &["--sha 512", "ecdsa-p256"],
        ),
        case(
            "pure with --sha",
            sign(&["-k", &ed, "--pad-header", "--pure", "--sha", "512", "app.bin", "out.bin"]),
            &["--pure", "--sha"],
        ),
        case(
            "signing with a public key",
            sign(&["-k", &ed_pub, "--pad-header", "app.bin", "out.bin"]),
            &["public key", "private"],
        ),
        case(
            "overlapping HEX records",
            sign(&["-k", &ed, "--pad-header", "overlap.hex", "out.hex"]),
            &["overlap.hex", "overlaps", "0x08000010"],
        ),
        case(
            "bad HEX checksum",
            sign(&["-k", &ed, "--pad-header", "bad-checksum.hex", "out.hex"]),
            &["bad-checksum.hex", "line 1", "checksum"],
        ),
        case(
            "ELF without loadable segments",
            sign(&["-k", &ed, "--pad-header", "noload.elf", "out.bin"]),
            &["noload.elf", "PT_LOAD"],
        ),
        case(
            "missing key file",
            sign(&["-k", "missing.pem", "--pad-header", "app.bin", "out.bin"]),
            &["missing.pem"],
        ),
        case(
            "unreadable key",
            sign(&["-k", "garbage.pem", "--pad-header", "app.bin", "out.bin"]),
            &["garbage.pem", "PEM"],
        ),
        case(
            "encrypted key without a password",
            sign(&["-k", "enc.pem", "--pad-header", "app.bin", "out.bin"]),
            &["enc.pem", "encrypted", "--password"],
        ),
        case(
            "wrong password",
            sign(&[
                "-k",
                "enc.pem",
                "--password-file",
                "wrong-password.txt",
                "--pad-header",
                "app.bin",
                "out.bin",
            ]),
            &["enc.pem", "wrong password"],
        ),
        case(
            "missing input",
            sign(&["-k", &ed, "--pad-header", "missing.bin", "out.bin"]),
            &["missing.bin"],
        ),
        case(
            "HEX output without an address",
            sign(&["-k", &ed, "--pad-header", "app.bin", "out.hex"]),
            &["out.hex", "-x"],
        ),
        case(
            "custom TLV with a predefined tag",
            sign(&[
                "-k",
                &ed,
                "--pad-header",
                "--custom-tlv",
                "0x50",
                "0x01",
                "app.bin",
                "out.bin",
            ]),
            &["--custom-tlv", "0x0050"],
        ),
        case(
            "custom TLV with an odd hex value",
            sign(&[
                "-k",
                &ed,
                "--pad-header",
                "--custom-tlv",
                "0xa0",
                "0x123",
                "app.bin",
                "out.bin",
            ]),
            &["--custom-tlv", "odd"],
        ),
        case(
            "bad dependency",
            sign(&["-k", &ed, "--pad-header", "-d", "(1 2.0)", "app.bin", "out.bin"]),
            &["--dependencies"],
        ),
        case(
            "security counter too large",
            sign(&["-k", &ed, "--pad-header", "-s", "0x100000000", "app.bin", "out.bin"]),
            &["--security-counter", "32 bits"],
        ),
        case(
            "load address with rom-fixed",
            sign(&[
                "-k",
                &ed,
                "--pad-header",
                "-L",
                "0x20000000",
                "-F",
                "0x8000000",
                "app.bin",
                "out.bin",
            ]),
            &["--load-addr", "--rom-fixed"],
        ),
        case(
            "encryption",
            sign(&["-k", &ed, "--pad-header", "-E", "enc.pem", "app.bin", "out.bin"]),
            &["--encrypt", "not supported"],
        ),
        case(
            "bad alignment",
            sign(&["-k", &ed, "--pad-header", "--align", "3", "app.bin", "out.bin"]),
            &["--align"],
        ),
        case(
            "fixed signature without its key",
            sign(&["--fix-sig", "x.sig", "--pad-header", "app.bin", "out.bin"]),
            &["--fix-sig-pubkey"],
        ),
    ]
}

#[test]
fn bad_sign_inputs_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path());
    let before = listing(dir.path());
    par_each(&cases(), |case| {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let output = fwsign_status(dir.path(), &args);
        let message = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{}: exit status, output:\n{}",
            case.name,
            text(&output)
        );
        for word in case.expect {
            assert!(message.contains(word), "{}: message lacks '{word}':\n{message}", case.name);
        }
    });
    assert_eq!(listing(dir.path()), before, "a failed run left files behind");
}

#[test]
fn verify_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ed = keys().path("ed.pem");
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(1000, 24)).unwrap();
    fwsign(
        dir,
        &[
            "sign",
            "-k",
            &ed,
            "-v",
            "1.0",
            "-H",
            "0x200",
            "--pad-header",
            "-S",
            "0x10000",
            "app.bin",
            "img.bin",
        ],
    );
    assert_eq!(fwsign_status(dir, &["verify", "-k", &ed, "img.bin"]).status.code(), Some(0));

    let mut image = std::fs::read(dir.join("img.bin")).unwrap();
    let last = image.len() - 1;
    image[last] ^= 0x80; // inside the Ed25519 signature
    std::fs::write(dir.join("badsig.bin"), &image).unwrap();
    let invalid = fwsign_status(dir, &["verify", "-k", &ed, "--json", "badsig.bin"]);
    assert_eq!(invalid.status.code(), Some(1), "{}", text(&invalid));
    let json: serde_json::Value = serde_json::from_slice(&invalid.stdout).unwrap();
    assert_eq!(json["valid"], false);
    assert!(json["error"].as_str().unwrap_or("").contains("signature"), "{json}");

    std::fs::write(dir.join("notimage.bin"), pseudo_random_bytes(100, 25)).unwrap();
    let not_image = fwsign_status(dir, &["verify", "-k", &ed, "notimage.bin"]);
    assert_eq!(not_image.status.code(), Some(1), "{}", text(&not_image));
    assert!(text(&not_image).contains("magic"), "{}", text(&not_image));

    let missing = fwsign_status(dir, &["verify", "-k", &ed, "missing.bin"]);
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(text(&missing).contains("missing.bin"));
    let usage = fwsign_status(dir, &["verify", "img.bin"]);
    assert_eq!(usage.status.code(), Some(2), "verify without -k: {}", text(&usage));
}

#[test]
fn dumpinfo_decodes_and_flags_non_images() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ed = keys().path("ed.pem");
    std::fs::write(dir.join("app.bin"), pseudo_random_bytes(1000, 26)).unwrap();
    let args = [
        "sign",
        "-k",
        &ed,
        "-v",
        "1.2.3",
        "-H",
        "0x200",
        "--pad-header",
        "-S",
        "0x10000",
        "-s",
        "9",
    ];
    let mut with_io = args.to_vec();
    with_io.extend_from_slice(&["--confirm", "-d", "(1,2.0.0)", "app.bin", "img.bin"]);
    fwsign(dir, &with_io);
    let output = fwsign(dir, &["dumpinfo", "--format", "json", "img.bin"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["header"]["version"], "1.2.3+0");
    let tlvs = json["tlvs"].as_array().unwrap();
    let names: Vec<&str> = tlvs.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["SEC_CNT", "DEPENDENCY", "SHA256", "KEYHASH", "ED25519"]);
    assert_eq!(tlvs[0]["value"], 9);
    assert_eq!(json["trailer"]["image_ok"]["state"], "set");
    let human = fwsign(dir, &["dumpinfo", "img.bin"]);
    assert!(text(&human).contains("DEPENDENCY"), "{}", text(&human));

    std::fs::write(dir.join("junk.bin"), [0u8; 64]).unwrap();
    assert_eq!(fwsign_status(dir, &["dumpinfo", "junk.bin"]).status.code(), Some(1));
}

#[test]
fn help_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    for command in ["keygen", "getpub", "sign", "verify", "dumpinfo", "completions"] {
        let help = fwsign(dir.path(), &[command, "--help"]);
        assert!(text(&help).contains("Usage: fwsign"), "{command} --help:\n{}", text(&help));
    }
    let bash = fwsign(dir.path(), &["completions", "bash"]);
    assert!(text(&bash).contains("_fwsign"), "no bash completion function");
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
