//! Where a bootloader's flash goes, by part (verifier, Ed25519, SHA-256, flash driver, logging,
//! swap logic, ...).
//!
//! After fat LTO most functions are inlined into a few large ones, so symbol sizes alone would
//! charge nearly everything to `main`. Instead every halfword of code is charged to the source
//! file of its innermost inlined frame outside the Rust standard library (whose code is the
//! caller's: a `copy_from_slice` in the verifier is the verifier's), read from the debug
//! information. Read-only data is charged by the symbol that contains it, code from assembly
//! (unmangled symbols, whose line information is unusable) by its symbol name.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind};

use super::Results;

/// Parts, each recognised by a substring of a source path or symbol name; first match wins.
const PARTS: [(&str, &[&str]); 13] = [
    ("verifier", &["verifier-core/src", "verifier_core"]),
    ("ed25519", &["ed25519-compact", "ed25519_compact", "/salty-", "salty::", "fe25519_"]),
    ("sha256", &["sha256-armv7m", "sha256_armv7m", "fwsign_sha256", "/sha2-"]),
    (
        "p256",
        &[
            "/p256-",
            "primeorder",
            "elliptic-curve",
            "crypto-bigint",
            "/ecdsa-",
            "/wnaf-",
            "hybrid-array",
            "/subtle-",
        ],
    ),
    (
        "swap_logic",
        &["bootloader/src/swap.rs", "bootloader/src/journal.rs", "bootloader/src/updater.rs"],
    ),
    ("boot_logic", &["bootloader/src/"]),
    ("flash_driver", &["boards/src/mps2.rs", "boards/src/nrf52840dk.rs", "embedded-storage"]),
    ("defmt", &["defmt", "boards/src/logger.rs"]),
    ("semihosting", &["boards/src/semihosting.rs", "cortex-m-semihosting"]),
    ("board_and_main", &["boards/src/", "bootloader/firmware/src"]),
    (
        "runtime",
        &["cortex-m-rt", "cortex-m-0", "__pre_init", "Reset", "DefaultHandler", "HardFault"],
    ),
    (
        "compiler_builtins",
        &["compiler_builtins", "compiler-builtins", "memcpy", "memset", "memmove", "__aeabi"],
    ),
    ("core", &["/rustc/", "/lib/rustlib/src/rust/library/", "core::"]),
];

const OTHER: &str = "other";

/// Charges the flash of `elf` to its parts; adds `bootloader_{key}_part_{part}_bytes` keys.
pub(super) fn breakdown(elf: &Path, key: &str, results: &mut Results) -> Result<()> {
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{} is not an ELF file", elf.display()))?;
    let loader = addr2line::Loader::new(elf)
        .map_err(|e| anyhow::anyhow!("cannot read debug information of {}: {e}", elf.display()))?;
    let mut symbols: Vec<(u64, u64, String)> = file
        .symbols()
        .filter(|s| !s.name().unwrap_or_default().starts_with('$'))
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?.to_owned())))
        .collect();
    symbols.sort();
    // The sized symbol containing `address`, else the nearest one before it (assembly often
    // declares no sizes).
    let symbol_at = |address: u64| {
        symbols
            .iter()
            .find(|(start, size, _)| (*start..start + size).contains(&address))
            .or_else(|| symbols.iter().rev().find(|(start, _, _)| *start <= address))
            .map(|(_, _, name)| name.as_str())
    };
    // Code from assembly or C (unmangled, sized symbols) has no usable line information:
    // its symbol names its part.
    let assembly_at = |address: u64| {
        symbols
            .iter()
            .find(|(start, size, name)| {
                !name.starts_with("_ZN")
                    && !name.starts_with("_R")
                    && (*start..start + size).contains(&address)
            })
            .map(|(_, _, name)| part_of(name))
            .filter(|part| *part != OTHER)
    };
    let mut parts: BTreeMap<&str, u64> = BTreeMap::new();
    for section in file.sections() {
        let flash = section.address() < 0x2000_0000;
        if section.size() == 0 || !flash {
            continue;
        }
        match section.kind() {
            SectionKind::Text => {
                for address in (section.address()..section.address() + section.size()).step_by(2) {
                    let part = assembly_at(address)
                        .or_else(|| code_part(&loader, address).filter(|part| *part != OTHER))
                        .or_else(|| symbol_at(address).map(part_of))
                        .unwrap_or(OTHER);
                    *parts.entry(part).or_default() += 2;
                }
            }
            SectionKind::ReadOnlyData | SectionKind::ReadOnlyString | SectionKind::Data => {
                let name = section.name().unwrap_or_default();
                if name == ".vector_table" {
                    *parts.entry("vector_table").or_default() += section.size();
                    continue;
                }
                for address in (section.address()..section.address() + section.size()).step_by(4) {
                    let part = symbol_at(address).map_or(OTHER, part_of);
                    *parts.entry(part).or_default() +=
                        4.min(section.address() + section.size() - address);
                }
            }
            _ => {}
        }
    }
    for (part, bytes) in parts {
        results.insert(format!("bootloader_{key}_part_{part}_bytes"), bytes as f64);
    }
    Ok(())
}

/// The part of the code at `address`, from its innermost frame outside the standard library.
fn code_part(loader: &addr2line::Loader, address: u64) -> Option<&'static str> {
    let mut frames = loader.find_frames(address).ok()?;
    let mut innermost_std = None;
    while let Ok(Some(frame)) = frames.next() {
        let file = frame.location.and_then(|l| l.file).unwrap_or_default();
        if file.is_empty() {
            continue;
        }
        if file.contains("/rustc/") || file.contains("/lib/rustlib/src/rust/library/") {
            innermost_std.get_or_insert(file);
            continue;
        }
        return Some(part_of(file));
    }
    innermost_std.map(part_of)
}

fn part_of(name: &str) -> &'static str {
    PARTS
        .iter()
        .find(|(_, markers)| markers.iter().any(|marker| name.contains(marker)))
        .map_or(OTHER, |(part, _)| part)
}

/// The parts in report order, with readable labels.
pub(super) const LABELS: [(&str, &str); 15] = [
    ("verifier", "verifier (verifier-core)"),
    ("ed25519", "Ed25519 (salty, its SHA-512 included)"),
    ("sha256", "SHA-256 (sha256-armv7m)"),
    ("p256", "P-256 (RustCrypto)"),
    ("swap_logic", "swap, journal and updater"),
    ("boot_logic", "boot decision, trailers, counter"),
    ("flash_driver", "flash driver (semihosted file / NVMC)"),
    ("semihosting", "semihosting (QEMU flash file)"),
    ("defmt", "defmt logging"),
    ("board_and_main", "board support and main"),
    ("runtime", "cortex-m-rt start-up"),
    ("compiler_builtins", "compiler builtins (memcpy, ...)"),
    ("core", "core library (panic and formatting paths)"),
    ("vector_table", "vector table"),
    (OTHER, "other (unnamed constants)"),
];
