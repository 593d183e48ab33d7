//! `cargo xtask factory-firmware` and `cargo xtask factory-bench`: what a factory line
//! provisions, and how fast the station provisions virtual devices.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};

use crate::cmd::device::DeviceArg;
use crate::firmware;
use crate::kit;
use crate::sign;

/// The demo application version the factory firmware carries.
const VERSION: &str = "1.0.0";

/// Build the bootloader and the signed demo application a factory line provisions, for a
/// QEMU board, into one directory: `device.toml` (the profile with `[keys] source =
/// "provisioned"`), `bootloader.elf` (reading its keys from the provisioning record),
/// `app.bin` (unsigned), `app.signed.bin` (signed by the development Ed25519 key, full public
/// key) and `keys/` (the public keys to provision).
#[derive(clap::Parser)]
pub(crate) struct FirmwareCmd {
    /// Board: mps2-an386, mps2-an385 or mps2-an505.
    #[arg(long, default_value = "mps2-an386")]
    board: String,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    device: DeviceArg,
}

impl FirmwareCmd {
    pub(crate) fn run(self) -> Result<()> {
        let kit = Firmware::build(&self.board, &self.device, &self.out)?;
        println!("factory firmware for {} in {}", self.board, kit.dir.display());
        Ok(())
    }
}

/// The built factory firmware.
struct Firmware {
    dir: PathBuf,
    fwsign: PathBuf,
    profile: PathBuf,
    keys: Vec<PathBuf>,
}

impl Firmware {
    fn build(board: &str, device: &DeviceArg, dir: &Path) -> Result<Self> {
        let board = boards::by_name(board).ok_or_else(|| anyhow!("unknown board {board:?}"))?;
        std::fs::create_dir_all(dir.join("keys"))?;
        let chosen = device.profile(&board)?;
        let profile = kit::provisioned_profile(&board, &chosen, &dir.join("device.toml"))?;
        let fwsign = sign::fwsign()?;
        let dev_keys = sign::dev_keys(&fwsign)?;
        let bootloader = firmware::bootloader(&board, &profile, &dev_keys.trusted())?;
        let app = firmware::app(&board, VERSION, true)?;
        copy(&bootloader, &dir.join("bootloader.elf"))?;
        copy(&app.bin, &dir.join("app.bin"))?;
        sign::run(
            Command::new(&fwsign)
                .arg("sign")
                .arg("--device")
                .arg(&profile.path)
                .args(["--pad-header", "--public-key-format", "full", "-k"])
                .arg(&dev_keys.ed25519)
                .args(["-v", VERSION, "-s", "1"])
                .arg(&app.bin)
                .arg(dir.join("app.signed.bin")),
        )?;
        let mut keys = Vec::new();
        for (key, name) in
            [(&dev_keys.ed25519, "ed25519.pub.pem"), (&dev_keys.p256, "p256.pub.pem")]
        {
            let public = dir.join("keys").join(name);
            sign::run(
                Command::new(&fwsign)
                    .arg("getpub")
                    .arg("-k")
                    .arg(key)
                    .arg("-e")
                    .arg("pem")
                    .arg("-o")
                    .arg(&public),
            )?;
            keys.push(public);
        }
        Ok(Self { dir: dir.to_owned(), fwsign, profile: profile.path, keys })
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Provision N virtual QEMU devices with `fwsign factory provision` and report devices per
/// hour and the time per step (merge, flash, verify, boot check, lock, record).
#[derive(clap::Parser)]
pub(crate) struct BenchCmd {
    /// How many devices.
    #[arg(long, default_value_t = 10)]
    count: usize,
    /// Board: mps2-an386, mps2-an385 or mps2-an505.
    #[arg(long, default_value = "mps2-an386")]
    board: String,
    #[command(flatten)]
    device: DeviceArg,
}

impl BenchCmd {
    pub(crate) fn run(self) -> Result<()> {
        crate::qemu::ensure_installed()?;
        let dir = crate::target_dir().join("xtask").join("factory-bench");
        let _ = std::fs::remove_dir_all(&dir);
        let firmware = Firmware::build(&self.board, &self.device, &dir.join("firmware"))?;
        let station = dir.join("station.toml");
        crate::write_atomically(&station, b"name = \"bench\"\ndatabase = \"station.sqlite\"\n")?;
        let started = Instant::now();
        let mut command = Command::new(&firmware.fwsign);
        command
            .args(["factory", "provision", "--json", "--device"])
            .arg(&firmware.profile)
            .arg("--bootloader")
            .arg(firmware.dir.join("bootloader.elf"))
            .arg("--image")
            .arg(firmware.dir.join("app.signed.bin"))
            .arg("--station")
            .arg(&station)
            .args(["--qemu", &self.board, "--count", &self.count.to_string()])
            .arg("--keys")
            .args(&firmware.keys);
        let output = sign::run(&mut command)?;
        let elapsed = started.elapsed();
        let devices: Vec<serde_json::Value> = output
            .lines()
            .map(serde_json::from_str)
            .collect::<Result<_, _>>()
            .context("fwsign factory provision --json printed something else")?;
        let bad: Vec<_> = devices.iter().filter(|d| d["status"] != "good").collect();
        anyhow::ensure!(bad.is_empty(), "devices not good: {bad:?}");
        anyhow::ensure!(
            devices.len() == self.count,
            "{} devices reported, {} asked",
            devices.len(),
            self.count
        );
        let mut steps: BTreeMap<String, f64> = BTreeMap::new();
        for device in &devices {
            for (step, ms) in device["steps_ms"].as_object().into_iter().flatten() {
                *steps.entry(step.clone()).or_default() += ms.as_f64().unwrap_or(0.0);
            }
        }
        let count = self.count as f64;
        println!(
            "factory-bench: {} virtual {} devices in {:.1} s",
            self.count,
            self.board,
            elapsed.as_secs_f64()
        );
        println!(
            "  devices per hour (one station, QEMU): {:.0}",
            count * 3600.0 / elapsed.as_secs_f64()
        );
        for step in ["merge", "flash", "verify", "boot_check", "lock", "record"] {
            println!(
                "  {step:<11} {:>8.2} ms per device",
                steps.get(step).copied().unwrap_or(0.0) / count
            );
        }
        let host: f64 = ["merge", "verify", "record"].iter().filter_map(|s| steps.get(*s)).sum();
        println!("  host-side work (merge + verify + record): {:.2} ms per device", host / count);
        Ok(())
    }
}
