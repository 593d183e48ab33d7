//! `cargo xtask flash`: the bootloader and a signed image onto a real board.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use device_profile::Profile;
use fwsign_keys::keys::{NoPassword, load_key};
use fwsign_keys::profile_keys;
use probe_rs::Permissions;
use probe_rs::flashing::{DownloadOptions, FlashProgress, ProgressEvent, ProgressOperation};
use probe_rs::probe::list::Lister;
use verifier_core::tlog::{ProofBuffer, check_log_proof};
use verifier_core::{SliceReader, TrustedKey, verify_image};

use crate::cmd::device::DeviceArg;
use crate::{elf, firmware};

/// Verify a signed image by the device's rules and keys (its profile), then program the
/// bootloader built with that profile and the image through a debug probe (probe-rs) and
/// reset the board.
#[derive(clap::Parser)]
pub(crate) struct Cmd {
    /// Board with a debug probe: nrf52840dk.
    #[arg(long, default_value = "nrf52840dk")]
    board: String,
    /// Signed image for the primary slot.
    #[arg(long)]
    image: PathBuf,
    /// Trusted key PEM files, built into the bootloader instead of the profile's keys.
    #[arg(long = "key")]
    keys: Vec<PathBuf>,
    #[command(flatten)]
    device: DeviceArg,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<()> {
        let board = boards::by_name(&self.board)
            .ok_or_else(|| anyhow!("unknown board {:?}", self.board))?;
        let chip = board.probe_chip.ok_or_else(|| {
            anyhow!("{} is emulated: use `cargo xtask ota` or `cargo xtask demo`", board.name)
        })?;
        let profile = self.device.profile(&board)?;
        let image = std::fs::read(&self.image)
            .with_context(|| format!("cannot read {}", self.image.display()))?;
        check_image(&image, &profile, &self.keys, &self.image)?;

        println!("building the bootloader for {} ({})", board.name, profile.path.display());
        let (boot_address, bootloader) =
            elf::to_binary(&firmware::bootloader(&board, &profile, &self.keys)?)?;
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

/// Refuses to flash anything the bootloader would refuse: the profile's policy on a new
/// device, with the keys the bootloader is built with (`key_paths`, or the profile's), and its
/// log proof if the profile requires one.
fn check_image(image: &[u8], profile: &Profile, key_paths: &[PathBuf], path: &Path) -> Result<()> {
    let (keys, names): (Vec<TrustedKey>, Vec<String>) = if key_paths.is_empty() {
        profile_keys::keys(profile, &NoPassword)?
            .into_iter()
            .map(|k| (k.trusted, k.spec.to_string()))
            .unzip()
    } else {
        key_paths
            .iter()
            .map(|p| {
                Ok((
                    TrustedKey::new(load_key(p, &NoPassword)?.public_key()),
                    p.display().to_string(),
                ))
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .unzip()
    };
    let verified = verify_image(&mut SliceReader::new(image), &keys, &profile.policy(0))
        .map_err(|e| anyhow!("refusing to flash {}: {e}", path.display()))?;
    let log_keys = profile.log_verifier_keys();
    if !log_keys.is_empty() {
        let mut buffer = Box::new(ProofBuffer::new());
        let reader = &mut SliceReader::new(image);
        check_log_proof(reader, &verified, &keys, &log_keys, &mut buffer)
            .map_err(|e| anyhow!("refusing to flash {}: {e}", path.display()))?;
    }
    let signer = names.get(verified.key_index()).map_or("?", String::as_str);
    println!("{}: v{}, signature by {signer} verified", path.display(), verified.header().version);
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
