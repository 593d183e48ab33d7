//! `cargo xtask flash`: the bootloader and a signed image onto a real board.

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use fwsign_keys::keys::{NoPassword, load_key};
use probe_rs::Permissions;
use probe_rs::flashing::{DownloadOptions, FlashProgress, ProgressEvent, ProgressOperation};
use probe_rs::probe::list::Lister;
use verifier_core::{Policy, SliceReader, TrustedKey, verify_image};

use crate::{elf, firmware, root};

/// Verify a signed image against the bootloader's trusted keys, then program the
/// bootloader and the image through a debug probe (probe-rs) and reset the board.
#[derive(clap::Parser)]
pub(crate) struct Cmd {
    /// Board with a debug probe: nrf52840dk.
    #[arg(long, default_value = "nrf52840dk")]
    board: String,
    /// Signed image for the primary slot.
    #[arg(long)]
    image: PathBuf,
    /// Trusted key PEM files, built into the bootloader (default: target/dev-keys/{ed25519,p256}.pem).
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<()> {
        let board = boards::by_name(&self.board)
            .ok_or_else(|| anyhow!("unknown board {:?}", self.board))?;
        let chip = board.probe_chip.ok_or_else(|| {
            anyhow!("{} is emulated: use `cargo xtask ota` or `cargo xtask demo`", board.name)
        })?;
        let key_paths = if self.keys.is_empty() { default_keys() } else { self.keys };
        let image = std::fs::read(&self.image)
            .with_context(|| format!("cannot read {}", self.image.display()))?;
        check_image(&image, &key_paths, board.slot_size(), &self.image)?;

        println!("building the bootloader for {}", board.name);
        let (boot_address, bootloader) =
            elf::to_binary(&firmware::bootloader(&board, &key_paths)?)?;
        let mut session = attach(chip)?;
        let mut loader = session.target().flash_loader();
        loader
            .add_data(u64::from(boot_address), &bootloader)
            .context("bootloader does not fit the flash map")?;
        loader
            .add_data(u64::from(board.primary_address()), &image)
            .context("image does not fit the flash map")?;
        let mut options = DownloadOptions::default();
        options.verify = true;
        options.progress = FlashProgress::new(report_progress());
        loader.commit(&mut session, options).context("flashing failed")?;
        session.core(0)?.reset().context("reset failed")?;
        println!(
            "flashed bootloader at {boot_address:#x} and {} at {:#x}; board reset",
            self.image.display(),
            board.primary_address()
        );
        Ok(())
    }
}

fn default_keys() -> Vec<PathBuf> {
    let dir = root().join("target").join("dev-keys");
    vec![dir.join("ed25519.pem"), dir.join("p256.pem")]
}

/// Refuses to flash anything the bootloader would refuse.
fn check_image(
    image: &[u8],
    key_paths: &[PathBuf],
    slot_size: u32,
    path: &std::path::Path,
) -> Result<()> {
    let keys = key_paths
        .iter()
        .map(|p| Ok(TrustedKey::new(load_key(p, &NoPassword)?.public_key())))
        .collect::<Result<Vec<_>>>()?;
    let verified = verify_image(&mut SliceReader::new(image), &keys, &Policy::default())
        .map_err(|e| anyhow!("refusing to flash {}: {e}", path.display()))?;
    if verified.image_len > slot_size {
        bail!(
            "refusing to flash {}: {} bytes do not fit the {slot_size:#x}-byte slot",
            path.display(),
            verified.image_len
        );
    }
    println!(
        "{}: v{}, signature by {} verified",
        path.display(),
        verified.header.version,
        key_paths[verified.key_index].display()
    );
    Ok(())
}

fn attach(chip: &str) -> Result<probe_rs::Session> {
    let probes = Lister::new().list_all();
    let Some(info) = probes.first() else {
        bail!(
            "no debug probe found: connect the board's debug USB port (the on-board J-Link of the nRF52840-DK), \
             and on Linux allow access to it (probe-rs udev rules)"
        );
    };
    println!("using probe {info}");
    let probe = info.open().with_context(|| format!("cannot open probe {info}"))?;
    probe.attach(chip, Permissions::default()).with_context(|| format!("cannot attach to {chip}"))
}

fn report_progress() -> impl FnMut(ProgressEvent) {
    let mut totals = std::collections::HashMap::new();
    let mut done = std::collections::HashMap::new();
    move |event| match event {
        ProgressEvent::AddProgressBar { operation, total: Some(total) } => {
            totals.insert(name(operation), total);
        }
        ProgressEvent::Progress { operation, size, .. } => {
            let bytes = done.entry(name(operation)).or_insert(0u64);
            *bytes += size;
            let total = totals.get(name(operation)).copied().unwrap_or(*bytes).max(1);
            print!("\r{:<8} {:>3}%", name(operation), *bytes * 100 / total);
            let _ = std::io::Write::flush(&mut std::io::stdout());
        }
        ProgressEvent::Finished(operation) => println!("\r{:<8} done", name(operation)),
        ProgressEvent::Failed(operation) => println!("\r{:<8} FAILED", name(operation)),
        _ => {}
    }
}

fn name(operation: ProgressOperation) -> &'static str {
    match operation {
        ProgressOperation::Fill => "fill",
        ProgressOperation::Erase => "erase",
        ProgressOperation::Program => "program",
        ProgressOperation::Verify => "verify",
        #[allow(unreachable_patterns)]
        _ => "flash",
    }
}
