//! `fwsign sign` against imgtool 2.5.0.
//!
//! Ed25519 signatures are deterministic, so for the same key, input and options the two
//! tools must write identical files; every case below runs both and compares the bytes.
//! ECDSA signatures are randomised in imgtool, so those images are cross-verified instead.

#![allow(clippy::unwrap_used, clippy::cast_possible_truncation)]

mod common;

use std::path::Path;

use common::{fwsign, hex_file, imgtool, keys, par_each, pseudo_random_bytes, text};

/// One option set, signed by both tools from the same input.
#[derive(Debug)]
struct Case {
    name: &'static str,
    input: Input,
    output: &'static str,
    args: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
enum Input {
    /// Random payload; the header is added by --pad-header.
    Bin(usize),
    /// 0x200 zero bytes (the build reserved the header), then a random payload.
    ZeroHeaderBin(usize),
    /// Intel HEX: two blocks with a gap, at this address.
    Hex(u32),
}

const BASE: &[&str] = &["-v", "1.2.3+4", "-H", "0x200", "-S", "0x20000"];

fn cases() -> Vec<Case> {
    use Input::*;
    let case = |name, input, output, args| Case { name, input, output, args };
    vec![
        case("plain", Bin(1000), "bin", &["--pad-header"]),
        case("reserved header", ZeroHeaderBin(3000), "bin", &[]),
        case("erased 0", Bin(777), "bin", &["--pad-header", "-R", "0"]),
        case("erased 0 reserved header", ZeroHeaderBin(100), "bin", &["-R", "0", "--confirm"]),
        case("pad", Bin(1000), "bin", &["--pad-header", "--pad"]),
        case("confirm", Bin(1000), "bin", &["--pad-header", "--confirm"]),
        case("test", Bin(1000), "bin", &["--pad-header", "--test"]),
        case("align 1", Bin(1000), "bin", &["--pad-header", "--confirm", "--align", "1"]),
        case("align 2", Bin(1000), "bin", &["--pad-header", "--confirm", "--align", "2"]),
        case("align 4", Bin(1000), "bin", &["--pad-header", "--confirm", "--align", "4"]),
        case("align 8", Bin(1000), "bin", &["--pad-header", "--confirm", "--align", "8"]),
        case("align 16", Bin(1000), "bin", &["--pad-header", "--confirm", "--align", "16"]),
        case("align 32", Bin(1000), "bin", &["--pad-header", "--confirm", "--align", "32"]),
        case(
            "max-align 16",
            Bin(1000),
            "bin",
            &["--pad-header", "--confirm", "--align", "4", "--max-align", "16"],
        ),
        case(
            "max-align 32 test",
            Bin(1000),
            "bin",
            &["--pad-header", "--test", "--max-align", "32"],
        ),
        case(
            "max-sectors",
            Bin(1000),
            "bin",
            &["--pad-header", "--confirm", "-M", "64", "--align", "8"],
        ),
        case(
            "erased 0 confirm align 8",
            Bin(999),
            "bin",
            &["--pad-header", "--confirm", "-R", "0", "--align", "8"],
        ),
        case("security counter", Bin(1000), "bin", &["--pad-header", "-s", "7"]),
        case("security counter hex", Bin(1000), "bin", &["--pad-header", "-s", "0x10000"]),
        case("security counter auto", Bin(1000), "bin", &["--pad-header", "-s", "auto"]),
        case("dependency", Bin(1000), "bin", &["--pad-header", "-d", "(1,2.0.0+0)"]),
        case("dependencies", Bin(1000), "bin", &["--pad-header", "-d", "(0,1.2), (2, 3.4.5+6)"]),
        case(
            "custom tlvs",
            Bin(1000),
            "bin",
            &[
                "--pad-header",
                "--custom-tlv",
                "0xa0",
                "0x0102",
                "--custom-tlv",
                "0x1a5",
                "some text",
            ],
        ),
        case(
            "all protected",
            Bin(1000),
            "bin",
            &[
                "--pad-header",
                "-s",
                "3",
                "-d",
                "(1,2.0.0)",
                "--custom-tlv",
                "0xa0",
                "0x0102",
                "--confirm",
            ],
        ),
        case("pure", Bin(1000), "bin", &["--pad-header", "--pure"]),
        case(
            "pure padded",
            Bin(1000),
            "bin",
            &["--pad-header", "--pure", "--confirm", "-s", "auto"],
        ),
        case("sha 512", Bin(1000), "bin", &["--pad-header", "--sha", "512"]),
        case("sha 256", Bin(1000), "bin", &["--pad-header", "--sha", "256"]),
        case("full public key", Bin(1000), "bin", &["--pad-header", "--public-key-format", "full"]),
        case("load address", Bin(1000), "bin", &["--pad-header", "-L", "0x20000000"]),
        case("rom fixed", Bin(1000), "bin", &["--pad-header", "-F", "0x8020000"]),
        case(
            "overwrite-only confirm",
            Bin(1000),
            "bin",
            &["--pad-header", "--overwrite-only", "--confirm"],
        ),
        case(
            "overwrite-only pad",
            Bin(1000),
            "bin",
            &["--pad-header", "--overwrite-only", "--pad", "--align", "32"],
        ),
        case("non-bootable", Bin(1000), "bin", &["--pad-header", "--non-bootable"]),
        case("empty payload", Bin(0), "bin", &["--pad-header"]),
        case("bin to hex", Bin(100_000), "hex", &["--pad-header", "-x", "0x08000000"]),
        case(
            "bin to hex confirm",
            Bin(5000),
            "hex",
            &["--pad-header", "-x", "0x08010000", "--confirm", "--align", "8"],
        ),
        case(
            "bin to hex test",
            Bin(5000),
            "hex",
            &["--pad-header", "-x", "0x0800fff0", "--test", "--max-align", "16"],
        ),
        case("hex to hex", Hex(0x0802_0000), "hex", &["--pad-header"]),
        case(
            "hex to hex confirm",
            Hex(0x0802_0000),
            "hex",
            &["--pad-header", "--confirm", "-R", "0"],
        ),
        case(
            "hex to hex -x",
            Hex(0x0802_0000),
            "hex",
            &["--pad-header", "-x", "0x10000000", "--pad"],
        ),
        case("hex at 0 to hex", Hex(0), "hex", &["--pad-header", "--confirm"]),
        case("hex to bin", Hex(0x0802_0000), "bin", &["--pad-header", "-s", "auto"]),
        case("hex to bin confirm", Hex(0x0001_0000), "bin", &["--pad-header", "--confirm"]),
    ]
}

/// Writes the case's input and returns its file name.
fn write_input(dir: &Path, input: Input, seed: u64) -> &'static str {
    match input {
        Input::Bin(len) => {
            std::fs::write(dir.join("in.bin"), pseudo_random_bytes(len, seed)).unwrap();
            "in.bin"
        }
        Input::ZeroHeaderBin(len) => {
            let mut bytes = vec![0u8; 0x200];
            bytes.extend(pseudo_random_bytes(len, seed));
            std::fs::write(dir.join("in.bin"), bytes).unwrap();
            "in.bin"
        }
        Input::Hex(addr) => {
            let first = pseudo_random_bytes(700, seed);
            let second = pseudo_random_bytes(300, seed + 1);
            std::fs::write(
                dir.join("in.hex"),
                hex_file(&[(addr, &first), (addr + 0x400, &second)]),
            )
            .unwrap();
            "in.hex"
        }
    }
}

fn joined<'a>(first: &[&'a str], second: &[&'a str]) -> Vec<&'a str> {
    first.iter().chain(second).copied().collect()
}

fn sign_both(
    dir: &Path,
    key: &str,
    input: &str,
    output_ext: &str,
    args: &[&str],
) -> (Vec<u8>, Vec<u8>) {
    let by_imgtool = format!("imgtool.{output_ext}");
    let by_fwsign = format!("fwsign.{output_ext}");
    let mut common: Vec<&str> = vec!["sign", "-k", key];
    common.extend_from_slice(BASE);
    common.extend_from_slice(args);
    imgtool(dir, &joined(&common, &[input, &by_imgtool]));
    fwsign(dir, &joined(&common, &[input, &by_fwsign]));
    (std::fs::read(dir.join(by_imgtool)).unwrap(), std::fs::read(dir.join(by_fwsign)).unwrap())
}

#[test]
fn ed25519_images_are_byte_identical_to_imgtool() {
    let key = keys().path("ed.pem");
    let cases = cases();
    par_each(&cases, |case| {
        let dir = tempfile::tempdir().unwrap();
        let input = write_input(dir.path(), case.input, case.name.len() as u64);
        let (expected, actual) = sign_both(dir.path(), &key, input, case.output, case.args);
        assert!(expected.len() > 32, "{}: imgtool wrote no image", case.name);
        if expected != actual {
            let at = expected
                .iter()
                .zip(&actual)
                .position(|(a, b)| a != b)
                .unwrap_or(expected.len().min(actual.len()));
            panic!(
                "case '{}' ({:?}): fwsign differs from imgtool at byte {at} (lengths {} vs {})",
                case.name,
                case.args,
                expected.len(),
                actual.len()
            );
        }
    });
}

#[test]
fn unsigned_images_are_byte_identical_to_imgtool() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.bin"), pseudo_random_bytes(4096, 9)).unwrap();
    let args =
        ["sign", "-v", "0.1", "-H", "0x100", "--pad-header", "-S", "0x4000", "--confirm", "in.bin"];
    let run = |tool: fn(&Path, &[&str]) -> std::process::Output, out: &str| {
        let mut all = args.to_vec();
        all.push(out);
        tool(dir.path(), &all);
        std::fs::read(dir.path().join(out)).unwrap()
    };
    assert_eq!(run(imgtool, "i.bin"), run(fwsign, "f.bin"));
}

#[test]
fn one_mebibyte_image_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.bin"), pseudo_random_bytes(1 << 20, 77)).unwrap();
    let key = keys().path("ed.pem");
    let args = ["-S", "0x110000", "--pad-header", "--confirm", "-s", "auto"];
    let (expected, actual) = sign_both(dir.path(), &key, "in.bin", "bin", &args);
    assert!(expected == actual, "1 MiB image differs from imgtool's");
}

/// An ELF input signs to the same image as the equivalent HEX file signed by imgtool.
#[test]
fn elf_input_matches_imgtool_on_the_equivalent_hex() {
    let dir = tempfile::tempdir().unwrap();
    let text_segment = pseudo_random_bytes(1500, 1);
    let data_segment = pseudo_random_bytes(200, 2);
    let elf = common::elf_file(&[
        (1, 0x0802_0000, &text_segment, 0),
        (4, 0x0000_0000, b"note", 0),          // PT_NOTE: ignored
        (1, 0x0802_0800, &data_segment, 0x40), // .data: loaded from flash, plus .bss
        (1, 0x2000_0000, &[], 0x400),          // .bss only: no file data, ignored
    ]);
    std::fs::write(dir.path().join("app.elf"), elf).unwrap();
    std::fs::write(
        dir.path().join("app.hex"),
        hex_file(&[(0x0802_0000, &text_segment), (0x0802_0800, &data_segment)]),
    )
    .unwrap();
    let key = keys().path("ed.pem");
    let mut args = vec!["sign", "-k", &key];
    args.extend_from_slice(BASE);
    args.extend_from_slice(&["--pad-header", "--confirm"]);
    imgtool(dir.path(), &joined(&args, &["app.hex", "imgtool.hex"]));
    let run = fwsign(dir.path(), &joined(&args, &["app.elf", "fwsign.hex"]));
    let report = text(&run);
    assert!(report.contains("segment 0 at 0x08020000"), "segments not reported:\n{report}");
    assert!(report.contains("segment 2 at 0x08020800"), "segments not reported:\n{report}");
    assert!(!report.contains("segment 3"), "a segment without file data was taken:\n{report}");
    let expected = std::fs::read(dir.path().join("imgtool.hex")).unwrap();
    let actual = std::fs::read(dir.path().join("fwsign.hex")).unwrap();
    assert!(expected == actual, "ELF-signed HEX differs from imgtool's HEX-signed HEX");
}

#[test]
fn ecdsa_images_pass_imgtool_verify() {
    let key = keys().path("ec.pem");
    let variants: &[&[&str]] = &[
        &["--pad-header"],
        &["--pad-header", "--confirm", "--align", "8"],
        &["--pad-header", "-s", "auto", "-d", "(1,1.0.0)", "--custom-tlv", "0xa0", "0x01"],
        &["--pad-header", "--public-key-format", "full"],
        &["--pad-header", "-x", "0x08000000", "--test"],
    ];
    par_each(variants, |args| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.bin"), pseudo_random_bytes(5000, 3)).unwrap();
        let out = if args.contains(&"-x") { "out.hex" } else { "out.bin" };
        let mut all = vec!["sign", "-k", &key];
        all.extend_from_slice(BASE);
        all.extend_from_slice(args);
        all.extend_from_slice(&["in.bin", out]);
        fwsign(dir.path(), &all);
        let verified = imgtool(dir.path(), &["verify", "-k", &key, out]);
        assert!(
            text(&verified).contains("Image was correctly validated"),
            "{args:?}: {}",
            text(&verified)
        );
    });
}

#[test]
fn imgtool_images_pass_fwsign_verify() {
    let k = keys();
    let variants: Vec<(&str, &[&str], &str)> = vec![
        ("ed.pem", &["--pad-header"], "bin"),
        ("ed.pem", &["--pad-header", "--pure", "--confirm"], "bin"),
        ("ed.pem", &["--pad-header", "--sha", "512", "-s", "auto"], "bin"),
        ("ed.pem", &["--pad-header", "--public-key-format", "full"], "bin"),
        ("ed.pem", &["--pad-header", "-x", "0x08000000", "--confirm"], "hex"),
        ("ec.pem", &["--pad-header"], "bin"),
        ("ec.pem", &["--pad-header", "-d", "(1,2.3.4)", "--test"], "bin"),
        ("ec.pem", &["--pad-header", "-x", "0x08000000"], "hex"),
    ];
    par_each(&variants, |(key, args, ext)| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("in.bin"), pseudo_random_bytes(3000, 4)).unwrap();
        let out = format!("img.{ext}");
        let key = k.path(key);
        let mut all = vec!["sign", "-k", &key];
        all.extend_from_slice(BASE);
        all.extend_from_slice(args);
        all.extend_from_slice(&["in.bin", &out]);
        imgtool(dir.path(), &all);
        // The public half is enough to verify.
        let public = key.replace(".pem", "-pub.pem");
        let report = fwsign(dir.path(), &["verify", "-k", &public, "--json", &out]);
        let json: serde_json::Value = serde_json::from_slice(&report.stdout).unwrap();
        assert_eq!(json["valid"], true, "{args:?}: {}", text(&report));
        assert_eq!(json["version"], "1.2.3+4");
    });
}

#[test]
fn fwsign_verify_rejects_wrong_key_and_tampering() {
    let k = keys();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.bin"), pseudo_random_bytes(2000, 5)).unwrap();
    let key = k.path("ed.pem");
    let mut args = vec!["sign", "-k", &key];
    args.extend_from_slice(BASE);
    args.extend_from_slice(&["--pad-header", "in.bin", "img.bin"]);
    imgtool(dir.path(), &args);

    let wrong =
        common::fwsign_status(dir.path(), &["verify", "-k", &k.path("ec-pub.pem"), "img.bin"]);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));

    let mut image = std::fs::read(dir.path().join("img.bin")).unwrap();
    image[0x300] ^= 1;
    std::fs::write(dir.path().join("bad.bin"), image).unwrap();
    let tampered = common::fwsign_status(dir.path(), &["verify", "-k", &key, "bad.bin"]);
    assert_eq!(tampered.status.code(), Some(1), "{}", text(&tampered));
    assert!(
        text(&tampered).contains("hash"),
        "message does not name the hash check: {}",
        text(&tampered)
    );
}
