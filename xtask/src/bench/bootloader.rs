//! The bootloader's own figures: flash and RAM of each algorithm set in a speed- and a
//! size-oriented build, the instructions from reset to the application's first instruction for
//! a 256 KiB image, and where the size-oriented Ed25519 bootloader's bytes go.
//!
//! Every build is `fwsign-bootloader-firmware` on `mps2-an386-bench` (the AN386 with 264 KiB
//! slots after a 1 MiB bootloader region, so the speed builds with ed25519-compact's tables
//! link too). Flash figures come from builds without instrumentation. Boot counts and stack
//! peaks come from the same builds with the `bench` feature, run under QEMU `-icount` until
//! the application's first instruction, where the GDB stub stops the CPU and the host reads
//! SysTick, its wrap count and the painted stack.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use boards::Board;
use object::{Object, ObjectSymbol};

use super::gdb::Gdb;
use super::{Footprint, Keys, Results, Settings, build_firmware, run_quiet, write_payload};

/// The board every bootloader figure is taken on.
const BOARD: Board = boards::mps2::AN386_BENCH;

/// A bootloader build: `(key, label, features besides the board, compile settings)`. Speed
/// builds keep ed25519-compact's precomputed tables, the unrolled Thumb-2 SHA-256 and defmt
/// logging, with the `firmware` profile. Size builds use salty's Ed25519 and the rolled
/// SHA-256, log nothing, and are compiled with [`Settings::Minimal`]. The last four take the
/// size choices one at a time, from the size build as it was before them (ed25519-compact
/// `opt_size`, unrolled SHA-256, opt-level `s`) to `ed25519_size`.
const BUILDS: [(&str, &str, &str, Settings); 10] = [
    ("ed25519_speed", "Ed25519, speed", "ed25519,thumb2-sha256,defmt", Settings::Firmware),
    ("ed25519_size", "Ed25519, size", "ed25519,salty,rolled-sha256", Settings::Minimal),
    ("p256_speed", "P-256, speed", "p256,thumb2-sha256,defmt", Settings::Firmware),
    ("p256_size", "P-256, size", "p256,rolled-sha256", Settings::Minimal),
    ("both_speed", "both, speed", "ed25519,p256,thumb2-sha256,defmt", Settings::Firmware),
    ("both_size", "both, size", "ed25519,salty,p256,rolled-sha256", Settings::Minimal),
    ("ed25519_size_opt_s", "Ed25519, size: opt-level s", UNROLLED, Settings::Firmware),
    ("ed25519_size_opt_z", "Ed25519, size: + opt-level z", UNROLLED, Settings::OptZ),
    ("ed25519_size_abort", "Ed25519, size: + immediate-abort core", UNROLLED, Settings::Minimal),
    ("ed25519_size_compact", "Ed25519, size: + rolled SHA-256", COMPACT, Settings::Minimal),
];

/// The first size steps: ed25519-compact `opt_size` and the unrolled SHA-256.
const UNROLLED: &str = "ed25519,opt-size,thumb2-sha256";
/// The last but one: ed25519-compact `opt_size` and the rolled SHA-256.
const COMPACT: &str = "ed25519,opt-size,rolled-sha256";

/// Builds the size-oriented Ed25519 bootloader (`ed25519_size`) for `board`, trusting the
/// public key of the PEM file `key`; the ELF's path.
pub(crate) fn build_ed25519_size(board: &Board, key: &Path) -> Result<PathBuf> {
    let (_, _, features, settings) = BUILDS[1];
    let key = key.display().to_string();
    let features = format!("{},{features}", board.name);
    build_firmware(BOOTLOADER, board.target, &features, &[("FWSIGN_TRUSTED_KEYS", &key)], settings)
}

/// The size-oriented Ed25519 builds also built for the nRF52840-DK, by index in [`BUILDS`].
const FOR_NRF52840DK: [usize; 2] = [1, 9];

/// The benchmark contract's bootloader keys: the size-oriented builds.
const CONTRACT: [(&str, &str); 5] = [
    ("bootloader_both_flash_bytes", "bootloader_both_size_flash_bytes"),
    ("bootloader_both_ram_bytes", "bootloader_both_size_ram_bytes"),
    ("bootloader_ed25519_flash_bytes", "bootloader_ed25519_size_flash_bytes"),
    ("bootloader_ed25519_ram_bytes", "bootloader_ed25519_size_ram_bytes"),
    ("bootloader_p256_flash_bytes", "bootloader_p256_size_flash_bytes"),
];

/// Bytes below the initial stack pointer the `bench` build paints, and the paint (as in
/// `bootloader/firmware/src/bench.rs`).
const PAINTED: u32 = 0x1_0000;
const PAINT: u32 = 0x5A5A_A5A5;

/// SysTick registers, and the tick and instruction periods under `-icount shift=7`.
const SYST_CSR: u32 = 0xE000_E010;
const SYST_CVR: u32 = 0xE000_E018;
const COUNTFLAG: u32 = 1 << 16;
const SYSTICK_PERIOD: f64 = (1u32 << 24) as f64;
const NS_PER_TICK: f64 = 40.0;
const NS_PER_INSTRUCTION: f64 = 128.0;
/// Instructions before SysTick starts that a bootloader without instrumentation also runs:
/// the reset handler's call into `__pre_init`.
const UNCOUNTED_RESET_INSTRUCTIONS: f64 = 1.0;

/// A slow emulator still reaches the application within this.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);

/// Builds, sizes and boots every bootloader build; fills `results`.
pub(super) fn measure(
    keys: &Keys,
    work: &Path,
    fwsign: &Path,
    results: &mut Results,
) -> Result<()> {
    let images = BootImages::sign(fwsign, keys, work)?;
    for (key, label, features, settings) in BUILDS {
        println!("  bootloader {label}");
        let trusted = trusted_keys(keys, features);
        let env = [("FWSIGN_TRUSTED_KEYS", trusted.as_str())];
        let (plain, instrumented) = build_pair(key, features, &env, settings, work)?;
        let size = record_size(key, &plain, results)?;
        if key == "ed25519_size" {
            super::parts::breakdown(&plain, key, results)?;
        }
        let mut stack = 0u32;
        for (algorithm, image) in images.for_features(features) {
            let boot = boot(&instrumented, image, &work.join(format!("boot-{key}")))?;
            results.insert(format!("boot_256k_{algorithm}_{key}_instr"), boot.instructions);
            stack = stack.max(boot.stack_peak);
        }
        record_ram(key, &size, stack, results);
    }
    measure_logged(keys, work, fwsign, &images, results)?;
    for index in FOR_NRF52840DK {
        measure_nrf52840dk(BUILDS[index], keys, work, results)?;
    }
    for (contract, source) in CONTRACT {
        if let Some(value) = results.get(source).copied() {
            results.insert(contract.into(), value);
        }
    }
    if let Some(value) = results.get("boot_256k_ed25519_ed25519_speed_instr").copied() {
        results.insert("boot_256k_ed25519_instr".into(), value);
    }
    Ok(())
}

const BOOTLOADER: &str = "fwsign-bootloader-firmware";

/// The size-oriented Ed25519 build that requires a transparency-log proof: its key, features
/// and compile settings (those of `ed25519_size` plus `tlog`).
const LOGGED: (&str, &str, Settings) =
    ("ed25519_size_tlog", "ed25519,salty,rolled-sha256,tlog", Settings::Minimal);

/// Builds the [`LOGGED`] bootloader from the benchmark board's profile plus the benchmark log's
/// key, sizes it, and boots the 256 KiB Ed25519 image with its proof (appended to the
/// benchmark log): what requiring the log costs in flash and instructions.
fn measure_logged(
    keys: &Keys,
    work: &Path,
    fwsign: &Path,
    images: &BootImages,
    results: &mut Results,
) -> Result<()> {
    println!("  bootloader Ed25519, size, requiring a log proof");
    let (key, features, settings) = LOGGED;
    let trusted = keys.ed25519.display().to_string();
    let shipped = crate::cmd::device::load(&BOARD, None)?;
    let text = crate::kit::logged_profile(
        &shipped,
        std::slice::from_ref(&trusted),
        &work.join("log.vkey"),
    )?;
    let profile = work.join("logged-device.toml");
    crate::write_atomically(&profile, text.as_bytes())?;
    let logged = work.join("boot-256k-ed25519-logged.img");
    let mut append = Command::new(fwsign);
    append.args(["log", "append", "--dir"]).arg(work.join("bench-log"));
    append.arg("-k").arg(work.join("log.pem")).arg("--signing-key").arg(&keys.ed25519);
    run_quiet(append.arg(&images.ed25519).arg(&logged))?;
    let profile = profile.display().to_string();
    let env = [("FWSIGN_TRUSTED_KEYS", trusted.as_str()), ("FWSIGN_DEVICE_PROFILE", &profile)];
    let (plain, instrumented) = build_pair(key, features, &env, settings, work)?;
    let size = record_size(key, &plain, results)?;
    if let Some(without) = results.get("bootloader_ed25519_size_flash_bytes").copied() {
        results.insert("bootloader_tlog_added_flash_bytes".into(), size.flash as f64 - without);
    }
    let image = BootImage { path: &logged, entry: images.entry };
    let boot = boot(&instrumented, image, &work.join(format!("boot-{key}")))?;
    results.insert(format!("boot_256k_ed25519_{key}_instr"), boot.instructions);
    record_ram(key, &size, boot.stack_peak, results);
    Ok(())
}

/// One bootloader build without and with the `bench` instrumentation: `(plain, instrumented)`.
fn build_pair(
    key: &str,
    features: &str,
    env: &[(&str, &str)],
    settings: Settings,
    work: &Path,
) -> Result<(PathBuf, PathBuf)> {
    let plain = copy_elf(
        &build_firmware(BOOTLOADER, BOARD.target, &with_board(features), env, settings)?,
        &work.join(format!("bootloader-{key}.elf")),
    )?;
    let features = with_board(&format!("{features},bench"));
    let instrumented = copy_elf(
        &build_firmware(BOOTLOADER, BOARD.target, &features, env, settings)?,
        &work.join(format!("bootloader-{key}-bench.elf")),
    )?;
    Ok((plain, instrumented))
}

/// Records the flash and static RAM of the build `key` (its uninstrumented ELF `plain`).
fn record_size(key: &str, plain: &Path, results: &mut Results) -> Result<Footprint> {
    let size = Footprint::of(plain)?;
    results.insert(format!("bootloader_{key}_flash_bytes"), size.flash as f64);
    results.insert(format!("bootloader_{key}_static_ram_bytes"), size.ram as f64);
    Ok(size)
}

/// Records the stack peak of the build `key` and its RAM: static RAM plus that peak.
fn record_ram(key: &str, size: &Footprint, stack: u32, results: &mut Results) {
    results.insert(format!("bootloader_{key}_stack_bytes"), f64::from(stack));
    results.insert(format!("bootloader_{key}_ram_bytes"), size.ram as f64 + f64::from(stack));
}

/// The size-oriented Ed25519 build for a real part: no semihosted flash file, the NVMC driver.
const NRF52840DK: &str = "ed25519_size_nrf52840dk";

/// Flash of a size-oriented Ed25519 build for the nRF52840-DK
/// (`bootloader_{key}_nrf52840dk_flash_bytes`), and by part for `ed25519_size`.
fn measure_nrf52840dk(
    (key, label, features, settings): (&str, &str, &str, Settings),
    keys: &Keys,
    work: &Path,
    results: &mut Results,
) -> Result<()> {
    println!("  bootloader {label}, for the nRF52840-DK");
    let board = boards::nrf52840dk::BOARD;
    let env = [("FWSIGN_TRUSTED_KEYS", keys.ed25519.to_str().unwrap_or_default())];
    let features = format!("{},{features}", board.name);
    let elf = copy_elf(
        &build_firmware(BOOTLOADER, board.target, &features, &env, settings)?,
        &work.join(format!("bootloader-{key}_nrf52840dk.elf")),
    )?;
    let size = Footprint::of(&elf)?;
    results.insert(format!("bootloader_{key}_nrf52840dk_flash_bytes"), size.flash as f64);
    if key == "ed25519_size" {
        super::parts::breakdown(&elf, NRF52840DK, results)?;
    }
    Ok(())
}

fn with_board(features: &str) -> String {
    format!("{},{features}", BOARD.name)
}

/// The trusted keys of a build: one per enabled algorithm.
fn trusted_keys(keys: &Keys, features: &str) -> String {
    let mut list = Vec::new();
    if features.split(',').any(|f| f == "ed25519") {
        list.push(keys.ed25519.display().to_string());
    }
    if features.split(',').any(|f| f == "p256") {
        list.push(keys.p256.display().to_string());
    }
    list.join(",")
}

/// Keeps a copy of a freshly built ELF: the next build overwrites cargo's.
fn copy_elf(from: &Path, to: &Path) -> Result<PathBuf> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(to.to_owned())
}

/// 256 KiB applications signed for the benchmark board, one per algorithm.
struct BootImages {
    ed25519: PathBuf,
    p256: PathBuf,
    /// Where the application's first instruction is.
    entry: u32,
}

impl BootImages {
    /// The application: a vector table whose reset handler, right after it, is `b .`, then
    /// pseudo-random bytes up to 256 KiB. Signed with a security counter, which the
    /// bootloader requires.
    fn sign(fwsign: &Path, keys: &Keys, work: &Path) -> Result<Self> {
        const LEN: usize = 256 * 1024;
        const RESET_OFFSET: u32 = 8;
        const BRANCH_TO_SELF: [u8; 2] = [0xfe, 0xe7];
        let entry = BOARD.primary_address() + BOARD.header_size + RESET_OFFSET;
        let payload = work.join("boot-256k.bin");
        write_payload(&payload, LEN)?;
        let mut bytes = std::fs::read(&payload)?;
        let initial_sp = BOARD.ram_base + 0x1_0000;
        bytes[0..4].copy_from_slice(&initial_sp.to_le_bytes());
        bytes[4..8].copy_from_slice(&(entry | 1).to_le_bytes());
        bytes[8..10].copy_from_slice(&BRANCH_TO_SELF);
        crate::write_atomically(&payload, &bytes)?;
        let slot_size = format!("{:#x}", BOARD.slot_size());
        let image = |name: &str, key: &Path| -> Result<PathBuf> {
            let image = work.join(format!("boot-256k-{name}.img"));
            run_quiet(
                Command::new(fwsign)
                    .arg("sign")
                    .arg("-k")
                    .arg(key)
                    .args(["-v", "1.2.3", "-s", "1", "-H"])
                    .arg(format!("{:#x}", BOARD.header_size))
                    .args(["--pad-header", "-S", &slot_size])
                    .arg(&payload)
                    .arg(&image),
            )?;
            Ok(image)
        };
        Ok(Self {
            ed25519: image("ed25519", &keys.ed25519)?,
            p256: image("p256", &keys.p256)?,
            entry,
        })
    }

    /// The images a build with `features` can boot, with their algorithm.
    fn for_features(&self, features: &str) -> Vec<(&'static str, BootImage<'_>)> {
        let mut images = Vec::new();
        for (algorithm, path) in [("ed25519", &self.ed25519), ("p256", &self.p256)] {
            if features.split(',').any(|f| f == algorithm) {
                images.push((algorithm, BootImage { path, entry: self.entry }));
            }
        }
        images
    }
}

struct BootImage<'a> {
    path: &'a Path,
    entry: u32,
}

/// One boot from reset to the application.
struct Boot {
    instructions: f64,
    stack_peak: u32,
}

/// Boots `image` from the primary slot through the instrumented bootloader `elf`; stops at
/// the application's first instruction.
fn boot(elf: &Path, image: BootImage<'_>, dir: &Path) -> Result<Boot> {
    std::fs::create_dir_all(dir)?;
    let mut flash = vec![0xffu8; BOARD.flash_size as usize];
    let signed = std::fs::read(image.path)?;
    flash
        .get_mut(..signed.len())
        .context("the boot image is larger than the flash")?
        .copy_from_slice(&signed);
    std::fs::write(dir.join(boards::mps2::FLASH_FILE), &flash)?;
    let symbols = Symbols::of(elf)?;
    let socket = dir.join("gdb.sock");
    let _ = std::fs::remove_file(&socket);
    let (machine, cpu) = BOARD.qemu.context("the benchmark board runs on QEMU")?;
    let child = Command::new("qemu-system-arm")
        .args(["-machine", machine, "-cpu", cpu])
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-icount", "shift=7"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-chardev")
        .arg(format!("socket,id=gdb,path={},server=on,wait=off", socket.display()))
        .args(["-gdb", "chardev:gdb", "-S"])
        .arg("-kernel")
        .arg(elf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run qemu-system-arm")?;
    let mut qemu = Emulator(child);
    let result = read_boot(&socket, image.entry, &symbols);
    qemu.stop();
    result.with_context(|| format!("booting {} through {}", image.path.display(), elf.display()))
}

fn read_boot(socket: &Path, entry: u32, symbols: &Symbols) -> Result<Boot> {
    let mut gdb = Gdb::connect(socket, BOOT_TIMEOUT)?;
    gdb.run_to(entry)?;
    let csr = gdb.read_u32(SYST_CSR)?;
    let current = gdb.read_u32(SYST_CVR)?;
    let wraps = gdb.read_u32(symbols.wraps)? + u32::from(csr & COUNTFLAG != 0);
    let ticks = f64::from(wraps) * SYSTICK_PERIOD + f64::from(0x00FF_FFFF - current);
    let instructions =
        (ticks * NS_PER_TICK / NS_PER_INSTRUCTION).round() + UNCOUNTED_RESET_INSTRUCTIONS;
    let bottom = symbols.stack_start - PAINTED;
    let painted = gdb.read_memory(bottom, PAINTED as usize)?;
    let untouched = painted
        .chunks_exact(4)
        .take_while(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]) == PAINT)
        .count();
    if untouched == 0 {
        bail!("the stack grew past the {PAINTED:#x} painted bytes");
    }
    Ok(Boot { instructions, stack_peak: PAINTED - u32::try_from(4 * untouched)? })
}

/// Addresses the host reads in an instrumented bootloader.
struct Symbols {
    wraps: u32,
    stack_start: u32,
}

impl Symbols {
    fn of(elf: &Path) -> Result<Self> {
        let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
        let file = object::File::parse(&*data)
            .with_context(|| format!("{} is not an ELF file", elf.display()))?;
        let find = |name: &str| -> Result<u32> {
            file.symbols()
                .find(|symbol| symbol.name() == Ok(name))
                .and_then(|symbol| u32::try_from(symbol.address()).ok())
                .with_context(|| format!("{} has no 32-bit symbol {name}", elf.display()))
        };
        Ok(Self { wraps: find("FWSIGN_BENCH_SYSTICK_WRAPS")?, stack_start: find("_stack_start")? })
    }
}

/// A running QEMU, killed when the measurement is over or has failed.
struct Emulator(Child);

impl Emulator {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bootloader builds side by side, and the size-oriented Ed25519 build by part.
pub(super) fn print_table(results: &Results) {
    let count = |key: &str| results.get(key).copied().map_or("-".to_owned(), super::group);
    println!(
        "Bootloader builds ({}, Cortex-M4, bytes)      flash  static RAM  stack peak   RAM total   reset to app, 256 KiB (instructions)",
        BOARD.name
    );
    for (key, label, _, _) in BUILDS {
        let boots: Vec<String> = ["ed25519", "p256"]
            .iter()
            .filter_map(|algorithm| {
                let value = results.get(&format!("boot_256k_{algorithm}_{key}_instr"))?;
                Some(format!("{algorithm}: {}", super::group(*value)))
            })
            .collect();
        println!(
            "{label:<44} {:>10} {:>11} {:>11} {:>11}   {}",
            count(&format!("bootloader_{key}_flash_bytes")),
            count(&format!("bootloader_{key}_static_ram_bytes")),
            count(&format!("bootloader_{key}_stack_bytes")),
            count(&format!("bootloader_{key}_ram_bytes")),
            boots.join(", ")
        );
    }
    let (key, _, _) = LOGGED;
    println!(
        "{:<44} {:>10} {:>11} {:>11} {:>11}   ed25519 with its log proof: {}",
        "Ed25519, size, requiring a log proof",
        count(&format!("bootloader_{key}_flash_bytes")),
        count(&format!("bootloader_{key}_static_ram_bytes")),
        count(&format!("bootloader_{key}_stack_bytes")),
        count(&format!("bootloader_{key}_ram_bytes")),
        count(&format!("boot_256k_ed25519_{key}_instr")),
    );
    for index in FOR_NRF52840DK {
        let (key, label, _, _) = BUILDS[index];
        let flash = count(&format!("bootloader_{key}_nrf52840dk_flash_bytes"));
        println!("{:<44} {flash:>10}", format!("{label}, nRF52840-DK"));
    }
    println!();
    println!("Size-oriented Ed25519 bootloader, flash by part (bytes)   mps2-an386  nRF52840-DK");
    for (part, label) in super::parts::LABELS {
        let qemu = format!("bootloader_ed25519_size_part_{part}_bytes");
        let nrf = format!("bootloader_{NRF52840DK}_part_{part}_bytes");
        if results.contains_key(&qemu) || results.contains_key(&nrf) {
            println!("  {label:<50} {:>10} {:>12}", count(&qemu), count(&nrf));
        }
    }
}
