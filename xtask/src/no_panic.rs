//! `cargo xtask check-no-panic`: proves the verifier's own code links no panic path.
//!
//! A firmware (`verifier-core/no-panic-check`) verifies an image the optimiser cannot see, with
//! every algorithm enabled and the Thumb-2 SHA-256, built like the bootloader (thumbv7em, fat
//! LTO), once with each Ed25519 implementation (ed25519-compact, and salty for the size builds). Every call into a panic entry point left in the linked binary is located and its inline
//! chain read from the debug information. The check fails if the code that would panic is ours:
//! `verifier-core/src` or `sha256-armv7m/src`.
//!
//! The same check then runs on the bootloader itself, built for mps2-an386 as a real board's
//! (fat LTO) from a profile that lists a transparency-log key and provisioned keys, so its
//! `tlog` proof check and its provisioning record parser are linked too; there the
//! bootloader's own code (`bootloader/src`, `provisioning/src`) counts as ours as well.
//!
//! Call sites inside the crypto crates (bounds checks the compiler could not elide in
//! ed25519-compact, salty, crypto-bigint, der) are counted and reported, not hidden: they are outside
//! the verifier's code, and none is reachable from a malformed image that the verifier would not
//! already have refused.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Source directories of our own code: a panic path starting in one fails the check.
const OUR_SOURCES: [&str; 4] =
    ["verifier-core/src/", "sha256-armv7m/src/", "bootloader/src/", "provisioning/src/"];

/// A log verifier key for the bootloader build: any valid key links the same code.
const EXAMPLE_LOG_KEY: &str =
    "example.com/log+a06c8792+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";

/// A trusted key given by its hash, so the build needs no key files.
const EXAMPLE_KEY_HASH: &str =
    "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

/// Builds the mps2-an386 bootloader with a log key and provisioned keys in its profile; its
/// ELF.
pub(crate) fn logged_bootloader() -> Result<PathBuf> {
    let board = boards::mps2::AN386;
    let dir = crate::root().join("target").join("xtask").join("no-panic");
    let vkey = dir.join("log.vkey");
    crate::write_atomically(&vkey, format!("{EXAMPLE_LOG_KEY}\n").as_bytes())?;
    let shipped = crate::cmd::device::load(&board, None)?;
    let text = crate::kit::logged_provisioned_profile(&shipped, &[EXAMPLE_KEY_HASH.into()], &vkey)?;
    let profile = dir.join("logged-device.toml");
    crate::write_atomically(&profile, text.as_bytes())?;
    let elf = crate::firmware::bootloader_for_analysis(&board, &profile)?;
    if !defines_symbol(&elf, |name| name.contains(PROOF_BUFFER_SYMBOL))? {
        bail!("{} has no {PROOF_BUFFER_SYMBOL}: built without its log proof check", elf.display());
    }
    Ok(elf)
}

/// The bootloader's static log proof buffer: its presence shows the `tlog` check is linked.
const PROOF_BUFFER_SYMBOL: &str = "PROOF_BUFFER";

/// Where a panic entry point is called from, with its inline chain (innermost first).
struct PanicCallSite {
    address: u64,
    callee: String,
    frames: Vec<String>,
}

impl PanicCallSite {
    /// Whether this is a call inside the panic machinery itself (core's panic functions calling
    /// each other, or the panic handler), rather than a place where some code decides to panic.
    fn is_panic_machinery(&self) -> bool {
        let in_handler = self.frames.iter().any(|frame| frame.contains("rust_begin_unwind"));
        in_handler || self.frames.iter().all(|frame| is_standard_library(frame))
    }

    /// Whether the code that can panic is the verifier's: the innermost frame outside the
    /// standard library (whose bounds checks are the caller's) is in one of [`OUR_SOURCES`].
    fn in_verifier(&self) -> bool {
        self.frames
            .iter()
            .find(|frame| !is_standard_library(frame))
            .is_some_and(|frame| OUR_SOURCES.iter().any(|dir| frame.contains(dir)))
    }
}

/// Whether a frame is the standard library's: its prebuilt form names `/rustc/<hash>/` paths,
/// which debuggers remap to the `rust-src` component once it is installed.
fn is_standard_library(frame: &str) -> bool {
    frame.contains("/rustc/") || frame.contains("/lib/rustlib/src/rust/library/")
}

/// Finds the panic call sites of `elf` (a Thumb firmware with debug information).
fn panic_call_sites(elf: &Path, objdump: &Path) -> Result<Vec<PanicCallSite>> {
    let output = Command::new(objdump)
        .args(["-d", "--demangle", "--no-show-raw-insn"])
        .arg(elf)
        .output()
        .with_context(|| format!("cannot run {}", objdump.display()))?;
    if !output.status.success() {
        bail!("{} failed: {}", objdump.display(), String::from_utf8_lossy(&output.stderr));
    }
    let loader = addr2line::Loader::new(elf)
        .map_err(|e| anyhow::anyhow!("cannot read debug information of {}: {e}", elf.display()))?;
    let listing = String::from_utf8_lossy(&output.stdout);
    listing
        .lines()
        .filter_map(parse_branch)
        .filter(|(_, callee)| is_panic_entry(callee))
        .map(|(address, callee)| {
            let frames = inline_chain(&loader, address)?;
            Ok(PanicCallSite { address, callee, frames })
        })
        .filter(|site| !matches!(site, Ok(site) if site.is_panic_machinery()))
        .collect()
}

/// Parses `    2b8a:       bl      0x2bf0 <core::panicking::panic>` into (0x2b8a, callee).
fn parse_branch(line: &str) -> Option<(u64, String)> {
    let (address, rest) = line.trim_start().split_once(':')?;
    let address = u64::from_str_radix(address, 16).ok()?;
    let mut words = rest.split_whitespace();
    let mnemonic = words.next()?;
    if !(mnemonic.starts_with("bl") || mnemonic.starts_with("b.") || mnemonic.starts_with('b')) {
        return None;
    }
    let callee = rest.split_once('<')?.1.rsplit_once('>')?.0;
    let callee = callee.split('+').next().unwrap_or(callee);
    Some((address, callee.to_string()))
}

fn is_panic_entry(symbol: &str) -> bool {
    let panicking = ["core::panicking::", "rust_begin_unwind", "panic_fmt"];
    let failing = ["_fail", "expect_failed", "unwrap_failed", "panic_bounds_check"];
    panicking.iter().chain(&failing).any(|marker| symbol.contains(marker))
}

fn inline_chain(loader: &addr2line::Loader, address: u64) -> Result<Vec<String>> {
    let mut frames = loader
        .find_frames(address)
        .map_err(|e| anyhow::anyhow!("no debug information at {address:#x}: {e}"))?;
    let mut chain = Vec::new();
    while let Ok(Some(frame)) = frames.next() {
        let function = frame
            .function
            .and_then(|f| f.demangle().ok().map(|name| name.into_owned()))
            .unwrap_or_else(|| "?".into());
        let location = frame
            .location
            .map(|l| format!("{}:{}", l.file.unwrap_or("?"), l.line.unwrap_or(0)))
            .unwrap_or_default();
        chain.push(format!("{function} at {location}"));
    }
    Ok(chain)
}

/// The Thumb-2 block function of `sha256-armv7m`: its presence shows the check covers that crate.
const THUMB2_SHA256_SYMBOL: &str = "fwsign_sha256_compress_armv7m";

/// Whether `elf` defines a symbol whose (mangled) name satisfies `wanted`.
fn defines_symbol(elf: &Path, wanted: impl Fn(&str) -> bool) -> Result<bool> {
    use object::{Object, ObjectSymbol};
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{} is not an ELF file", elf.display()))?;
    Ok(file.symbols().any(|symbol| symbol.name().is_ok_and(&wanted)))
}

/// Checks the linked firmware at `elf`; prints a summary and fails on any verifier panic path.
pub(crate) fn check(elf: &Path, objdump: &Path) -> Result<()> {
    if !defines_symbol(elf, |name| name == THUMB2_SHA256_SYMBOL)? {
        bail!(
            "{} does not link the Thumb-2 SHA-256 ({THUMB2_SHA256_SYMBOL}): build it with verifier-core's thumb2-sha256 feature",
            elf.display()
        );
    }
    let sites = panic_call_sites(elf, objdump)?;
    let (verifier, dependencies): (Vec<_>, Vec<_>) = sites.iter().partition(|s| s.in_verifier());
    for site in &verifier {
        eprintln!("panic path from our code at {:#x} -> {}", site.address, site.callee);
        for frame in &site.frames {
            eprintln!("    in {frame}");
        }
    }
    println!(
        "no-panic check of {}: {} panic call sites in the linked firmware, {} from verifier-core, sha256-armv7m or the bootloader, {} inside dependencies",
        elf.file_name().map_or("?".into(), |name| name.to_string_lossy()),
        sites.len(),
        verifier.len(),
        dependencies.len()
    );
    for site in &dependencies {
        let origin = site.frames.iter().find(|f| !is_standard_library(f));
        println!("    dependency: {}", origin.map_or("?", String::as_str));
    }
    if !verifier.is_empty() {
        bail!("our code links {} panic path(s)", verifier.len());
    }
    Ok(())
}

/// `llvm-objdump` from the toolchain's `llvm-tools` component.
pub(crate) fn llvm_objdump() -> Result<PathBuf> {
    let sysroot = Command::new("rustc").args(["--print", "sysroot"]).output()?;
    let sysroot = String::from_utf8(sysroot.stdout)?.trim().to_string();
    let host = Command::new("rustc").args(["--print", "host-tuple"]).output()?;
    let host = String::from_utf8(host.stdout)?.trim().to_string();
    let path = Path::new(&sysroot).join("lib/rustlib").join(host).join("bin/llvm-objdump");
    if !path.is_file() {
        bail!(
            "llvm-objdump not found at {}: run `rustup component add llvm-tools`",
            path.display()
        );
    }
    Ok(path)
}
