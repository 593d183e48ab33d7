//! `fwsign dumpinfo`: show what an image holds: header, TLVs, trailer.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use base64::Engine as _;
use fwsign_keys::hex;
use fwsign_keys::timestamp::verify::signer_subject;
use fwsign_keys::timestamp::{Token, find_in_image};
use host_signer::input::{self, InputFormat};
use serde_json::{Value, json};
use verifier_core::format::{flags, tlv, trailer};
use verifier_core::tlog::{
    Checkpoint, ENTRY_FIELDS, LogEntry, LogError, LogProof, MAX_ENTRY_LEN, MAX_PROOF_LEN,
    SignedNote, read_log_proof,
};
use verifier_core::tlv::{TlvArea, TlvLayout};
use verifier_core::{
    ImageHeader, ImageVersion, PublicKey, Revocations, RevokedKey, SliceReader, VerifyError,
    read_header,
};

use super::EXIT_INVALID;

/// Print the header, TLV areas and trailer of an image.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value = "human")]
    format: Format,
    /// The image (binary or Intel HEX).
    image: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Reads an image file, converting Intel HEX (recognised by content) to bytes.
pub(crate) fn read_image(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    if input::detect(&bytes) == InputFormat::Hex {
        return Ok(input::load(path, Some(InputFormat::Hex), 0, 0xff)?.bytes);
    }
    Ok(bytes)
}

pub(crate) fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let bytes = read_image(&args.image)?;
    let (info, error) = describe(&bytes);
    match args.format {
        Format::Json => {
            let mut info = info;
            if let Some(error) = &error {
                info["error"] = json!(error.to_string());
            }
            println!("{}", serde_json::to_string_pretty(&info)?);
        }
        Format::Human => print_human(&info),
    }
    match error {
        Some(error) => {
            eprintln!("{}: {error}", args.image.display());
            Ok(ExitCode::from(EXIT_INVALID))
        }
        None => Ok(super::EXIT_OK),
    }
}

/// Everything readable about the image, and the first structural error met.
fn describe(bytes: &[u8]) -> (Value, Option<VerifyError>) {
    let mut reader = SliceReader::new(bytes);
    let header = match read_header(&mut reader) {
        Ok(header) => header,
        Err(error) => return (json!({}), Some(error)),
    };
    let mut info = json!({ "header": header_json(&header) });
    let layout = match TlvLayout::locate(&mut reader, &header) {
        Ok(layout) => layout,
        Err(error) => return (info, Some(error)),
    };
    let mut tlvs = Vec::new();
    let mut failure = None;
    for entry in layout.entries(&mut reader) {
        let entry = match entry {
            Ok(entry) => entry,
            Err(error) => {
                failure = Some(error);
                break;
            }
        };
        let start = entry.value_offset as usize;
        let value = bytes.get(start..start + usize::from(entry.len)).unwrap_or(&[]);
        tlvs.push(json!({
            "area": match entry.area { TlvArea::Protected => "protected", TlvArea::Unprotected => "unprotected" },
            "tag": format!("0x{:04x}", entry.tag),
            "name": tlv_name(entry.tag),
            "len": entry.len,
            "value": decode_tlv(entry.tag, value),
        }));
    }
    info["tlvs"] = json!(tlvs);
    if let Some(timestamp) = timestamp_json(bytes) {
        info["timestamp"] = timestamp;
    }
    if let Some(log_proof) = log_proof_json(bytes) {
        info["log_proof"] = log_proof;
    }
    info["image_len"] = json!(layout.end);
    info["file_len"] = json!(bytes.len());
    if let Some(trailer) = trailer_json(bytes, layout.end as usize) {
        info["trailer"] = trailer;
    }
    (info, failure)
}

/// The timestamp token, decoded but not verified (that takes `verify --tsa-ca`).
fn timestamp_json(bytes: &[u8]) -> Option<Value> {
    let der = find_in_image(bytes).ok()??.token;
    let token_der_base64 = base64::engine::general_purpose::STANDARD.encode(&der);
    Some(match Token::decode(&der) {
        Ok(token) => json!({
            "gen_time": token.gen_time_text(),
            "tsa": token.tsa_name().or_else(|| signer_subject(&token)),
            "serial": token.serial_hex(),
            "policy": token.info.policy.to_string(),
            "imprint_hash": token.imprint_hash_name(),
            "token_der_base64": token_der_base64,
        }),
        Err(error) => json!({ "error": error, "token_der_base64": token_der_base64 }),
    })
}

/// The log proof: entry, index and checkpoint, parsed but not verified (that takes
/// `verify --log-key`).
fn log_proof_json(bytes: &[u8]) -> Option<Value> {
    let mut buffer = [0u8; MAX_PROOF_LEN];
    let proof = match read_log_proof(&mut SliceReader::new(bytes), &mut buffer) {
        Ok(proof) => proof?,
        Err(error) => return Some(json!({ "error": error.to_string() })),
    };
    let parsed = match LogProof::parse(proof) {
        Ok(parsed) => parsed,
        Err(error) => return Some(json!({ "error": error.to_string() })),
    };
    let mut entry_buffer = [0u8; MAX_ENTRY_LEN];
    let entry = parsed.entry(&mut entry_buffer).and_then(LogEntry::parse).map(|entry| {
        let fields = ENTRY_FIELDS.iter().zip(entry.values());
        fields
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect::<serde_json::Map<_, _>>()
    });
    let checkpoint = SignedNote::parse(parsed.checkpoint())
        .and_then(|note| Checkpoint::parse(note.text()))
        .map(|c| json!({ "origin": c.origin, "tree_size": c.size }));
    let text = |result: Result<Value, LogError>| {
        result.unwrap_or_else(|e| json!({ "error": e.to_string() }))
    };
    Some(json!({
        "index": parsed.index,
        "proof_hashes": parsed.hash_count(),
        "checkpoint": text(checkpoint),
        "entry": text(entry.map(Value::Object)),
    }))
}

fn header_json(header: &ImageHeader) -> Value {
    json!({
        "load_addr": format!("0x{:08x}", header.load_addr),
        "hdr_size": format!("0x{:x}", header.hdr_size),
        "protect_tlv_size": format!("0x{:x}", header.protect_tlv_size),
        "img_size": format!("0x{:x}", header.img_size),
        "flags": format!("0x{:08x}", header.flags),
        "flag_names": flag_names(header.flags),
        "version": header.version.to_string(),
    })
}

fn flag_names(bits: u32) -> Vec<&'static str> {
    [
        (flags::PIC, "PIC"),
        (flags::ENCRYPTED_AES128, "ENCRYPTED_AES128"),
        (flags::ENCRYPTED_AES256, "ENCRYPTED_AES256"),
        (flags::NON_BOOTABLE, "NON_BOOTABLE"),
        (flags::RAM_LOAD, "RAM_LOAD"),
        (flags::ROM_FIXED, "ROM_FIXED"),
        (flags::COMPRESSED_LZMA1, "COMPRESSED_LZMA1"),
        (flags::COMPRESSED_LZMA2, "COMPRESSED_LZMA2"),
        (flags::COMPRESSED_ARM_THUMB, "COMPRESSED_ARM_THUMB"),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, name)| name)
    .collect()
}

fn tlv_name(tag: u16) -> &'static str {
    match tag {
        tlv::KEYHASH => "KEYHASH",
        tlv::PUBKEY => "PUBKEY",
        tlv::SHA256 => "SHA256",
        tlv::SHA384 => "SHA384",
        tlv::SHA512 => "SHA512",
        tlv::RSA2048_PSS => "RSA2048_PSS",
        tlv::ECDSA224 => "ECDSA224",
        tlv::ECDSA_SIG => "ECDSA_SIG",
        tlv::RSA3072_PSS => "RSA3072_PSS",
        tlv::ED25519 => "ED25519",
        tlv::SIG_PURE => "SIG_PURE",
        tlv::ENC_RSA2048 => "ENC_RSA2048",
        tlv::ENC_KW => "ENC_KW",
        tlv::ENC_EC256 => "ENC_EC256",
        tlv::ENC_X25519 => "ENC_X25519",
        tlv::ENC_X25519_SHA512 => "ENC_X25519_SHA512",
        tlv::DEPENDENCY => "DEPENDENCY",
        tlv::SEC_CNT => "SEC_CNT",
        tlv::BOOT_RECORD => "BOOT_RECORD",
        tlv::DECOMP_SIZE => "DECOMP_SIZE",
        tlv::DECOMP_SHA => "DECOMP_SHA",
        tlv::DECOMP_SIGNATURE => "DECOMP_SIGNATURE",
        tlv::COMP_DEC_SIZE => "COMP_DEC_SIZE",
        tlv::UUID_VID => "UUID_VID",
        tlv::UUID_CID => "UUID_CID",
        tlv::TIMESTAMP_TOKEN => "TIMESTAMP_TOKEN",
        tlv::LOG_PROOF => "LOG_PROOF",
        tlv::REVOKE_KEYS => "REVOKE_KEYS",
        tag if tlv::is_vendor(tag) => "vendor",
        _ => "unknown",
    }
}

fn decode_tlv(tag: u16, value: &[u8]) -> Value {
    match (tag, value) {
        (tlv::SEC_CNT, [a, b, c, d]) => json!(u32::from_le_bytes([*a, *b, *c, *d])),
        (tlv::DEPENDENCY, [id, _, _, _, version @ ..]) => match <&[u8; 8]>::try_from(version) {
            Ok(version) => {
                json!({ "image_id": id, "min_version": ImageVersion::from_bytes(version).to_string() })
            }
            Err(_) => json!(hex(value)),
        },
        (tlv::SIG_PURE, [flag]) => json!(*flag == 1),
        (tlv::REVOKE_KEYS, _) => match Revocations::parse(value) {
            Ok(revoked) => json!(revoked.keys().iter().map(revoked_key_json).collect::<Vec<_>>()),
            Err(_) => json!(hex(value)),
        },
        (tlv::LOG_PROOF, _) => json!(format!("tlog-proof, {} bytes (see log_proof)", value.len())),
        (tlv::PUBKEY, der) => match PublicKey::from_spki_der(der) {
            Some(PublicKey::Ed25519(_)) => json!({ "algorithm": "ed25519", "der": hex(der) }),
            Some(PublicKey::P256(_)) => json!({ "algorithm": "ecdsa-p256", "der": hex(der) }),
            None => json!(hex(der)),
        },
        _ => json!(hex(value)),
    }
}

fn revoked_key_json(key: &RevokedKey) -> Value {
    match key {
        RevokedKey::Slot(slot) => json!({ "slot": slot }),
        RevokedKey::SpkiSha256(hash) => json!({ "key_hash": hex(hash) }),
    }
}

/// The trailer, if the file extends past the image and ends in a boot magic.
fn trailer_json(bytes: &[u8], image_end: usize) -> Option<Value> {
    let end = bytes.len();
    let magic = bytes.get(end.checked_sub(16)?..)?;
    if end < image_end + 16 {
        return None;
    }
    let max_align = trailer_max_align(magic)?;
    let from_end = |distance: u32| end.checked_sub(usize::try_from(distance).ok()?);
    let align = u32::try_from(max_align).ok()?;
    let image_ok = from_end(trailer::image_ok_from_end(align))?;
    let copy_done = from_end(trailer::copy_done_from_end(align))?;
    let swap_info = from_end(trailer::swap_info_from_end(align))?;
    let swap_size = swap_info.checked_sub(max_align)?;
    let flag = |offset: usize| {
        let byte = bytes.get(offset).copied().unwrap_or(0);
        let meaning = match byte {
            0x01 => "set",
            0xff | 0x00 => "unset",
            _ => "bad",
        };
        json!({ "value": format!("0x{byte:02x}"), "state": meaning })
    };
    let swap_size = bytes.get(swap_size..swap_size + 4).map(hex);
    Some(json!({
        "max_align": max_align,
        "magic": hex(magic),
        "image_ok": flag(image_ok),
        "copy_done": flag(copy_done),
        "swap_info": format!("0x{:02x}", bytes.get(swap_info).copied().unwrap_or(0)),
        "swap_size": swap_size,
    }))
}

fn trailer_max_align(magic: &[u8]) -> Option<usize> {
    [8u16, 16, 32].into_iter().find(|align| magic == trailer::magic(*align)).map(usize::from)
}

fn print_human(info: &Value) {
    if let Some(header) = info.get("header").and_then(Value::as_object) {
        println!("header:");
        for (name, value) in header {
            println!("  {name:<17} {}", plain(value));
        }
    }
    if let Some(tlvs) = info.get("tlvs").and_then(Value::as_array) {
        println!("tlvs:");
        for entry in tlvs {
            println!(
                "  {:<11} {} {:<12} len {:>3}  {}",
                plain(&entry["area"]),
                plain(&entry["tag"]),
                plain(&entry["name"]),
                plain(&entry["len"]),
                plain(&entry["value"])
            );
        }
    }
    if let Some(timestamp) = info.get("timestamp").and_then(Value::as_object) {
        println!("timestamp:");
        for (name, value) in timestamp {
            if name != "token_der_base64" {
                println!("  {name:<13} {}", plain(value));
            }
        }
    }
    if let Some(log_proof) = info.get("log_proof") {
        println!("log_proof:");
        print_nested(log_proof, 2);
    }
    for key in ["image_len", "file_len"] {
        if let Some(value) = info.get(key) {
            println!("{key}: {}", plain(value));
        }
    }
    if let Some(trailer) = info.get("trailer").and_then(Value::as_object) {
        println!("trailer:");
        for (name, value) in trailer {
            println!("  {name:<10} {}", plain(value));
        }
    }
}

/// Prints an object as indented `name value` lines.
fn print_nested(value: &Value, indent: usize) {
    let Some(object) = value.as_object() else { return };
    for (name, value) in object {
        if value.is_object() {
            println!("{:indent$}{name}:", "");
            print_nested(value, indent + 2);
        } else {
            println!("{:indent$}{name:<17} {}", "", plain(value));
        }
    }
}

/// A JSON value without quotes around strings.
fn plain(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}
