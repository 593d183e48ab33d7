//! `cargo xtask bench`: device instruction counts, footprint and host signing speed, in one run.
//!
//! Device figures come from the `fwsign-bench` firmware under `qemu-system-arm -icount
//! shift=7`, where every executed instruction advances virtual time by 128 ns and SysTick
//! counts virtual time: the counts are exact and bit-identical between runs. The firmware
//! checks this at start-up and refuses to report otherwise. They are instructions, not
//! cycles: a real part adds wait states and multi-cycle instructions.
//!
//! Footprint figures are section sizes of firmware built with the `firmware` profile (size
//! optimised, fat LTO): the bootloader as shipped, the verifier alone (`fwsign-footprint`) for
//! each algorithm set and both Ed25519 builds (speed and size), and the bootloader for each
//! algorithm set in a speed- and a size-oriented build ([`bootloader`]), which is also booted
//! from reset to a 256 KiB application under exact counting, with its stack painted.
//!
//! Host figures time whole processes (`fwsign` against `imgtool`), several runs, median.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use object::{Object, ObjectSection, SectionKind};

use crate::root;
use crate::tools::{self, AptTool};

pub(crate) mod bootloader;
mod gdb;
mod parts;

/// How a firmware is compiled for the figures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Settings {
    /// The `firmware` profile (opt-level `s`, fat LTO) with the toolchain's `core`: every figure
    /// but the size-oriented bootloaders'.
    Firmware,
    /// The `firmware-size` profile (opt-level `z`) with the toolchain's `core`.
    OptZ,
    /// `firmware-size` with `core` built from source and `panic = "immediate-abort"`: the
    /// size-oriented bootloaders.
    Minimal,
}

impl Settings {
    fn profile(self) -> &'static str {
        match self {
            Self::Firmware => "firmware",
            Self::OptZ | Self::Minimal => "firmware-size",
        }
    }

    /// Adds the standard-library flags of these settings to a `cargo build` for `target`.
    fn configure(self, command: &mut Command, target: &str) -> Result<()> {
        match self {
            Self::Firmware | Self::OptZ => {
                crate::toolchain::TargetBuild::for_target(target)?.configure(command);
                Ok(())
            }
            Self::Minimal => crate::toolchain::configure_minimal_core(command, self.profile()),
        }
    }
}

/// Timed runs per host command; the median is reported.
const HOST_RUNS: usize = 5;

/// A whole firmware run takes well under a second of host time.
const QEMU_TIMEOUT: Duration = Duration::from_secs(60);

/// Slot size given to both signers: room for a 1 MiB payload.
const SLOT_SIZE: &str = "0x200000";

/// A QEMU machine the device figures are taken on.
struct Machine {
    /// Key prefix in the results (`""` for the reference Cortex-M4).
    prefix: &'static str,
    /// Shown while measuring.
    label: &'static str,
    /// Column heading in the table.
    column: &'static str,
    machine: &'static str,
    cpu: &'static str,
    target: &'static str,
}

const MACHINES: [Machine; 3] = [
    Machine {
        prefix: "",
        label: "Cortex-M4 (mps2-an386)",
        column: "Cortex-M4",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        target: "thumbv7em-none-eabihf",
    },
    Machine {
        prefix: "m3_",
        label: "Cortex-M3 (mps2-an385)",
        column: "Cortex-M3",
        machine: "mps2-an385",
        cpu: "cortex-m3",
        target: "thumbv7m-none-eabi",
    },
    Machine {
        prefix: "m33_",
        label: "Cortex-M33 (mps2-an505, Secure)",
        column: "Cortex-M33",
        machine: "mps2-an505",
        cpu: "cortex-m33",
        target: "thumbv8m.main-none-eabihf",
    },
];

/// A verifier build whose footprint is reported: `(key, cargo features, label)`. Speed and size
/// builds differ by ed25519-compact's `opt_size`; both use the Thumb-2 SHA-256, which is the
/// smaller as well as the faster (2.9 KB against 7.1 KB for `sha2`'s block function).
const VERIFIER_BUILDS: [(&str, &str, &str); 5] = [
    ("verifier_ed25519", "ed25519,thumb2-sha256", "verifier, ed25519 (speed)"),
    ("verifier_ed25519_opt_size", "ed25519,opt-size,thumb2-sha256", "verifier, ed25519 (size)"),
    ("verifier_p256", "p256,thumb2-sha256", "verifier, p256"),
    ("verifier_both", "ed25519,p256,thumb2-sha256", "verifier, both (speed)"),
    ("verifier_both_opt_size", "ed25519,p256,opt-size,thumb2-sha256", "verifier, both (size)"),
];

/// Image payload sizes of the device figures, in KiB.
const DEVICE_SIZES_KIB: [usize; 3] = [16, 64, 256];

/// Flat results: `key → value`, printed as a table and written as JSON.
type Results = BTreeMap<String, f64>;

/// Runs the whole benchmark; writes the flat results to `json` when given.
pub(crate) fn run(json: Option<&Path>) -> Result<()> {
    let started = Instant::now();
    tools::ensure_apt(&[AptTool { program: "qemu-system-arm", package: "qemu-system-arm" }])?;
    let imgtool = imgtool()?;
    let work = root().join("target").join("bench");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let fwsign = build_fwsign()?;
    let keys = Keys::ensure(&fwsign, &work)?;
    let mut results = Results::new();

    make_device_inputs(&fwsign, &keys, &work)?;
    for machine in &MACHINES {
        println!("measuring on {}", machine.label);
        let firmware = build_binary(
            "fwsign-bench",
            Some("fwsign-bench"),
            machine.target,
            "",
            &[],
            Settings::Firmware,
        )?;
        let figures = run_qemu(machine, &firmware, &work)?;
        for (key, value) in figures {
            results.insert(format!("{}{key}", machine.prefix), value);
        }
    }
    derive_device_figures(&mut results);

    println!("measuring flash and RAM");
    footprint(&keys, &mut results)?;
    println!("measuring the bootloader builds: flash, RAM, reset to application");
    bootloader::measure(&keys, &work, &fwsign, &mut results)?;

    println!("timing fwsign against imgtool ({HOST_RUNS} runs each, median)");
    host_figures(&fwsign, &imgtool, &keys, &work, &mut results)?;

    print_table(&results);
    if let Some(path) = json {
        crate::write_atomically(path, to_json(&results).as_bytes())?;
        println!("wrote {}", path.display());
    }
    println!("done in {:.0?}", started.elapsed());
    Ok(())
}

/// imgtool: `$FWSIGN_IMGTOOL`, the workspace's `.venv`, or `PATH`.
fn imgtool() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("FWSIGN_IMGTOOL") {
        return Ok(PathBuf::from(path));
    }
    let venv = root().join(".venv/bin/imgtool");
    if venv.is_file() {
        return Ok(venv);
    }
    if tools::on_path("imgtool") {
        return Ok(PathBuf::from("imgtool"));
    }
    bail!(
        "imgtool not found: run .ci/run or `python3 -m venv .venv && .venv/bin/pip install imgtool==2.5.0`, or set FWSIGN_IMGTOOL"
    )
}

/// The release `fwsign`, as users run it.
pub(crate) fn build_fwsign() -> Result<PathBuf> {
    crate::cargo(&["build", "--quiet", "--release", "-p", "host-signer", "--bin", "fwsign"])?;
    Ok(crate::target_dir().join("release/fwsign"))
}

/// Builds `binary` of `package` for `target` with `features` and `settings`; the ELF's path.
fn build_firmware(
    package: &str,
    target: &str,
    features: &str,
    env: &[(&str, &str)],
    settings: Settings,
) -> Result<PathBuf> {
    build_binary(package, None, target, features, env, settings)
}

pub(crate) fn build_binary(
    package: &str,
    binary: Option<&str>,
    target: &str,
    features: &str,
    env: &[(&str, &str)],
    settings: Settings,
) -> Result<PathBuf> {
    let profile = settings.profile();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(&cargo);
    command
        .args(["build", "--quiet", "-p", package, "--target", target])
        .args(["--profile", profile, "--message-format=json"])
        .current_dir(root())
        .stderr(Stdio::inherit());
    if let Some(binary) = binary {
        command.args(["--bin", binary]);
    }
    if !features.is_empty() {
        command.args(["--no-default-features", "--features", features]);
    }
    command.envs(env.iter().copied());
    settings.configure(&mut command, target)?;
    let output = command.output().with_context(|| format!("cannot run {cargo}"))?;
    if !output.status.success() {
        bail!("building {package} for {target} ({features}) failed");
    }
    let executable = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_once("\"executable\":\"").map(|(_, rest)| rest))
        .filter_map(|rest| rest.split_once('"').map(|(path, _)| PathBuf::from(path)))
        .next_back()
        .with_context(|| format!("cargo built no executable for {package}"))?;
    if !executable.is_file() {
        bail!(
            "{} is missing after the build: remove target/{target}/{profile}/.fingerprint/{package}-* and retry",
            executable.display()
        );
    }
    Ok(executable)
}

/// The signing keys, created once and kept (the bootloader embeds them: keeping them keeps
/// its build cached).
struct Keys {
    ed25519: PathBuf,
    p256: PathBuf,
}

impl Keys {
    fn ensure(fwsign: &Path, work: &Path) -> Result<Self> {
        let keys = Self { ed25519: work.join("ed25519.pem"), p256: work.join("p256.pem") };
        for (path, kind, spki) in
            [(&keys.ed25519, "ed25519", "ed25519.spki"), (&keys.p256, "ecdsa-p256", "p256.spki")]
        {
            if !path.is_file() {
                run_quiet(
                    Command::new(fwsign).arg("keygen").arg("-k").arg(path).args(["-t", kind]),
                )?;
            }
            run_quiet(
                Command::new(fwsign)
                    .arg("getpub")
                    .arg("-k")
                    .arg(path)
                    .args(["-e", "raw", "-o"])
                    .arg(work.join(spki)),
            )?;
        }
        Ok(keys)
    }
}

/// Signs the 16, 64 and 256 KiB images the firmware verifies, with both keys.
fn make_device_inputs(fwsign: &Path, keys: &Keys, work: &Path) -> Result<()> {
    for kib in DEVICE_SIZES_KIB {
        let payload = work.join(format!("payload-{kib}k.bin"));
        write_payload(&payload, kib * 1024)?;
        for (name, key) in [("ed25519", &keys.ed25519), ("p256", &keys.p256)] {
            let image = work.join(format!("{name}-{kib}k.img"));
            run_quiet(&mut sign_command(fwsign, key, &payload, &image))?;
        }
    }
    make_logged_image(fwsign, keys, work)
}

/// Entries in the benchmark log before the measured image (entry 299 of 300: 5 proof hashes).
const LOG_ENTRIES_BEFORE: usize = 299;

/// The 256 KiB Ed25519 image with a LOG_PROOF, logged as entry 299 of a log of 300
/// (`fwsign log`), and the log's verifier key (`log.vkey`).
fn make_logged_image(fwsign: &Path, keys: &Keys, work: &Path) -> Result<()> {
    let log = work.join("bench-log");
    if log.exists() {
        std::fs::remove_dir_all(&log)
            .with_context(|| format!("cannot remove {}", log.display()))?;
    }
    let log_key = work.join("log.pem");
    if !log_key.exists() {
        run_quiet(
            Command::new(fwsign).arg("keygen").arg("-k").arg(&log_key).args(["-t", "ed25519"]),
        )?;
    }
    let init = Command::new(fwsign)
        .args(["log", "init", "--origin", "bench.example/log", "--dir"])
        .arg(&log)
        .arg("-k")
        .arg(&log_key)
        .output()
        .context("cannot run fwsign log init")?;
    if !init.status.success() {
        bail!("fwsign log init failed: {}", String::from_utf8_lossy(&init.stderr).trim());
    }
    crate::write_atomically(&work.join("log.vkey"), &init.stdout)?;
    let append = |image: &str, output: &Path| {
        let mut command = Command::new(fwsign);
        command.args(["log", "append", "--dir"]).arg(&log).arg("-k").arg(&log_key);
        command.arg("--signing-key").arg(&keys.ed25519).arg(work.join(image)).arg(output);
        run_quiet(&mut command)
    };
    let scratch = work.join("log-filler.img");
    for _ in 0..LOG_ENTRIES_BEFORE {
        append("ed25519-16k.img", &scratch)?;
    }
    append("ed25519-256k.img", &work.join("ed25519-256k-logged.img"))
}

/// A reproducible pseudo-random payload of `len` bytes.
fn write_payload(path: &Path, len: usize) -> Result<()> {
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let bytes: Vec<u8> = (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect();
    crate::write_atomically(path, &bytes)
}

/// `sign` with the options both tools share.
fn sign_command(program: &Path, key: &Path, input: &Path, output: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .arg("sign")
        .arg("-k")
        .arg(key)
        .args(["-v", "1.2.3", "-H", "0x200", "--pad-header", "-S", SLOT_SIZE])
        .arg(input)
        .arg(output);
    command
}

/// Runs the benchmark firmware on `machine`; its `key=value` figures.
fn run_qemu(machine: &Machine, firmware: &Path, work: &Path) -> Result<Vec<(String, f64)>> {
    let mut child = Command::new("qemu-system-arm")
        .args(["-machine", machine.machine, "-cpu", machine.cpu])
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-icount", "shift=7"])
        .args(["-semihosting-config", "enable=on,target=native"])
        .arg("-kernel")
        .arg(firmware)
        .current_dir(work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run qemu-system-arm")?;
    let deadline = Instant::now() + QEMU_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "{}: the benchmark firmware did not finish within {QEMU_TIMEOUT:?}",
                machine.machine
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "the benchmark firmware failed on {}: {}{}",
            machine.machine,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let figures: Vec<(String, f64)> = stdout
        .lines()
        .filter_map(|line| line.trim().split_once('='))
        .filter_map(|(key, value)| Some((key.to_owned(), value.parse().ok()?)))
        .collect();
    if !figures.iter().any(|(key, value)| key == "icount_exact" && *value == 1.0) {
        bail!("{}: the firmware did not confirm exact instruction counting", machine.machine);
    }
    Ok(figures)
}

/// Per-byte SHA-256 and the flat keys named in the benchmark's JSON contract.
fn derive_device_figures(results: &mut Results) {
    for machine in &MACHINES {
        let p = machine.prefix;
        let bytes = results.get(&format!("{p}sha256_bytes")).copied();
        for name in ["sha256", "sha256_sha2"] {
            let instr = results.get(&format!("{p}{name}_instr")).copied();
            if let (Some(instr), Some(bytes)) = (instr, bytes) {
                let per_byte = (instr / bytes * 100.0).round() / 100.0;
                results.insert(format!("{p}{name}_instr_per_byte"), per_byte);
            }
        }
        results.remove(&format!("{p}icount_exact"));
    }
}

/// Flash and RAM of the bootloader and of the verifier alone.
fn footprint(keys: &Keys, results: &mut Results) -> Result<()> {
    let target = MACHINES[0].target;
    let trusted = format!("{},{}", keys.ed25519.display(), keys.p256.display());
    let bootloader = build_firmware(
        "fwsign-bootloader-firmware",
        target,
        "",
        &[("FWSIGN_TRUSTED_KEYS", &trusted)],
        Settings::Firmware,
    )?;
    let size = Footprint::of(&bootloader)?;
    results.insert("bootloader_standard_flash_bytes".into(), size.flash as f64);
    results.insert("bootloader_standard_static_ram_bytes".into(), size.ram as f64);
    for (key, features, _) in VERIFIER_BUILDS {
        let elf = build_binary(
            "fwsign-bench",
            Some("fwsign-footprint"),
            target,
            features,
            &[],
            Settings::Firmware,
        )?;
        let size = Footprint::of(&elf)?;
        results.insert(format!("{key}_flash_bytes"), size.flash as f64);
        results.insert(format!("{key}_static_ram_bytes"), size.ram as f64);
    }
    Ok(())
}

/// Flash (everything loaded: vector table, code, read-only data, `.data` initialisers) and
/// static RAM (`.data`, `.bss`, `.uninit`) of a firmware ELF.
struct Footprint {
    flash: u64,
    ram: u64,
}

impl Footprint {
    fn of(elf: &Path) -> Result<Self> {
        let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
        let file = object::File::parse(&*data)
            .with_context(|| format!("{} is not an ELF file", elf.display()))?;
        let mut size = Self { flash: 0, ram: 0 };
        for section in file.sections() {
            let loaded = matches!(
                section.kind(),
                SectionKind::Text
                    | SectionKind::Data
                    | SectionKind::ReadOnlyData
                    | SectionKind::ReadOnlyString
                    | SectionKind::UninitializedData
            );
            if !loaded || section.size() == 0 {
                continue;
            }
            let in_ram = section.address() >= 0x2000_0000;
            if section.kind() != SectionKind::UninitializedData {
                size.flash += section.size();
            }
            if in_ram {
                size.ram += section.size();
            }
        }
        Ok(size)
    }
}

/// `fwsign` against `imgtool`: signing 64 KiB and 1 MiB, verifying 1 MiB (Ed25519).
fn host_figures(
    fwsign: &Path,
    imgtool: &Path,
    keys: &Keys,
    work: &Path,
    results: &mut Results,
) -> Result<()> {
    let key = &keys.ed25519;
    let floor = median_time(|| Command::new("true"))?;
    results.insert("process_start_ms".into(), (floor.as_secs_f64() * 1e5).round() / 100.0);
    for (label, len) in [("64k", 64 * 1024), ("1mib", 1024 * 1024)] {
        let payload = work.join(format!("host-{label}.bin"));
        write_payload(&payload, len)?;
        let ours = work.join(format!("host-{label}-fwsign.img"));
        let theirs = work.join(format!("host-{label}-imgtool.img"));
        let fwsign_time = median_time(|| sign_command(fwsign, key, &payload, &ours))?;
        let imgtool_time = median_time(|| sign_command(imgtool, key, &payload, &theirs))?;
        record_pair(results, &format!("sign_{label}"), fwsign_time, imgtool_time);
        if label == "1mib" {
            let verify = |program: &Path| {
                let mut command = Command::new(program);
                command.arg("verify").arg("-k").arg(key).arg(&ours);
                command
            };
            let fwsign_time = median_time(|| verify(fwsign))?;
            let imgtool_time = median_time(|| verify(imgtool))?;
            record_pair(results, "verify_1mib", fwsign_time, imgtool_time);
        }
    }
    Ok(())
}

fn record_pair(results: &mut Results, name: &str, fwsign: Duration, imgtool: Duration) {
    let ms = |d: Duration| (d.as_secs_f64() * 1e5).round() / 100.0;
    results.insert(format!("{name}_fwsign_ms"), ms(fwsign));
    results.insert(format!("{name}_imgtool_ms"), ms(imgtool));
    let speedup = imgtool.as_secs_f64() / fwsign.as_secs_f64().max(1e-9);
    results.insert(format!("{name}_speedup_vs_imgtool"), (speedup * 10.0).round() / 10.0);
}

/// Median wall time of [`HOST_RUNS`] runs of the command `make` builds (each must succeed),
/// after one untimed run that warms the file cache.
fn median_time(make: impl Fn() -> Command) -> Result<Duration> {
    run_quiet(&mut make())?;
    let mut times = Vec::with_capacity(HOST_RUNS);
    for _ in 0..HOST_RUNS {
        let mut command = make();
        let start = Instant::now();
        run_quiet(&mut command)?;
        times.push(start.elapsed());
    }
    times.sort();
    Ok(times[HOST_RUNS / 2])
}

fn run_quiet(command: &mut Command) -> Result<()> {
    let output =
        command.stdin(Stdio::null()).output().with_context(|| format!("cannot run {command:?}"))?;
    if !output.status.success() {
        bail!("{command:?} failed: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}

/// The readable report: one section per kind of figure.
fn print_table(results: &Results) {
    let get = |key: &str| results.get(key).copied();
    let count = |key: &str| get(key).map_or("-".to_owned(), group);
    println!();
    println!("Device (instructions under QEMU -icount; firmware profile)");
    let mut header = format!("{:<34}", "");
    for machine in &MACHINES {
        header.push_str(&format!(" {:>14}", machine.column));
    }
    println!("{header}");
    let row = |label: &str, key: &str, format: &dyn Fn(&str) -> String| {
        let mut line = format!("{label:<34}");
        for machine in &MACHINES {
            line.push_str(&format!(" {:>14}", format(&format!("{}{key}", machine.prefix))));
        }
        println!("{line}");
    };
    for algorithm in ["ed25519", "p256"] {
        for kib in DEVICE_SIZES_KIB {
            row(
                &format!("validate {kib} KiB, {algorithm}"),
                &format!("validate_{kib}k_{algorithm}_instr"),
                &count,
            );
        }
        row(&format!("{algorithm} verify alone"), &format!("{algorithm}_verify_instr"), &count);
    }
    row("copy 256 KiB from storage", "copy_256k_instr", &count);
    let per_byte = |key: &str| get(key).map_or("-".into(), |v| format!("{v:.2}"));
    row("SHA-256 per byte (Thumb-2)", "sha256_instr_per_byte", &per_byte);
    row("SHA-256 per byte (sha2 crate)", "sha256_sha2_instr_per_byte", &per_byte);
    let bytes = |key: &str| format!("{} B", count(key));
    row("peak stack, validate ed25519", "validate_256k_ed25519_stack_bytes", &bytes);
    row("peak stack, validate p256", "validate_256k_p256_stack_bytes", &bytes);
    println!();
    println!("Footprint (Cortex-M4, bytes)          flash     static RAM");
    let bootloader = ("bootloader as shipped (standard)", "bootloader_standard");
    let verifiers = VERIFIER_BUILDS.iter().map(|(key, _, label)| (*label, *key));
    for (label, key) in std::iter::once(bootloader).chain(verifiers) {
        println!(
            "{label:<34} {:>10} {:>14}",
            count(&format!("{key}_flash_bytes")),
            count(&format!("{key}_static_ram_bytes"))
        );
    }
    println!();
    bootloader::print_table(results);
    println!();
    println!("Host (whole process, median of {HOST_RUNS}, ms)      fwsign    imgtool   speed-up");
    for (label, key) in [
        ("sign 64 KiB (ed25519)", "sign_64k"),
        ("sign 1 MiB (ed25519)", "sign_1mib"),
        ("verify 1 MiB (ed25519)", "verify_1mib"),
    ] {
        println!(
            "{label:<34} {:>10.2} {:>10.2} {:>9.1}x",
            get(&format!("{key}_fwsign_ms")).unwrap_or(f64::NAN),
            get(&format!("{key}_imgtool_ms")).unwrap_or(f64::NAN),
            get(&format!("{key}_speedup_vs_imgtool")).unwrap_or(f64::NAN)
        );
    }
    println!(
        "{:<34} {:>10.2}   (starting a process that does nothing)",
        "process start",
        get("process_start_ms").unwrap_or(f64::NAN)
    );
}

/// `12345678.0` as `12,345,678`.
fn group(value: f64) -> String {
    let digits = format!("{value:.0}");
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A flat JSON object, keys sorted; integers printed without a fraction.
fn to_json(results: &Results) -> String {
    let fields: Vec<String> = results
        .iter()
        .map(|(key, value)| {
            if !value.is_finite() {
                format!("  \"{key}\": null")
            } else if value.fract() == 0.0 {
                format!("  \"{key}\": {value:.0}")
            } else {
                format!("  \"{key}\": {value}")
            }
        })
        .collect();
    format!("{{\n{}\n}}\n", fields.join(",\n"))
}
