//! `cargo xtask ota`: does this device accept that update?

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use verifier_core::{ImageHeader, format};

use crate::cmd::device::DeviceArg;
use crate::kit::{BOOT_TIMEOUT, Kit, Signer, expect};

/// Boot the bootloader and the signed demo v1 (security counter 1) on QEMU, send FILE over
/// the UART as a test update, reset, and report whether it was accepted (exit 0) or
/// refused (exit 1).
#[derive(clap::Parser)]
pub(crate) struct Cmd {
    /// Board: mps2-an386, mps2-an385 or mps2-an505.
    #[arg(long, default_value = "mps2-an386")]
    board: String,
    /// The signed image to try.
    #[arg(long)]
    update: PathBuf,
    /// Print the decoded device logs.
    #[arg(long)]
    verbose: bool,
    #[command(flatten)]
    device: DeviceArg,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<bool> {
        let board = boards::by_name(&self.board)
            .ok_or_else(|| anyhow!("unknown board {:?}", self.board))?;
        let file = std::fs::read(&self.update)
            .with_context(|| format!("cannot read {}", self.update.display()))?;
        let update = image_part(&file);
        let kit = Kit::build_for(board, &self.device.profile(&board)?, &[("1.0.0", true)])?;
        let device = kit.device("ota", &kit.image("1.0.0", true, 1, Signer::Ed25519)?)?;
        let (mut session, status) = device.boot(self.verbose)?;
        expect(&status, "1.0.0", "normal")?;
        session.clear_logs();
        session.send_update(update, false)?;
        let deadline = std::time::Instant::now() + BOOT_TIMEOUT;
        while std::time::Instant::now() < deadline {
            let logs = session.logs();
            if let Some(line) = logs.iter().find(|l| l.contains("update refused: ")) {
                let reason = line.split("update refused: ").nth(1).unwrap_or("?");
                println!("refused: {reason} (v1.0.0 keeps running)");
                return Ok(false);
            }
            if let Some(line) = logs.iter().find(|l| l.contains("[boot]") && l.contains("booting "))
            {
                let version = line.split("booting ").nth(1).unwrap_or("?").to_owned();
                // A demo application reports whether it confirmed itself; other
                // applications may not speak the status protocol.
                let confirmation = match session.expect_status(Duration::from_secs(5)) {
                    Ok(status) if status.confirmed => "; the application confirmed itself",
                    Ok(_) => "; the application did NOT confirm itself (it will be reverted)",
                    Err(_) => "",
                };
                println!("accepted: now running {version}{confirmation}");
                return Ok(true);
            }
            if let Some(line) = logs.iter().find(|l| l.contains("nothing bootable")) {
                bail!("the device is bricked: {line}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("no verdict from the bootloader within {BOOT_TIMEOUT:?}")
    }
}

/// The image without slot padding: up to the end of its TLVs when the header says where
/// that is; the whole file otherwise (the bootloader then judges it).
fn image_part(file: &[u8]) -> &[u8] {
    let end = file
        .first_chunk()
        .and_then(|header| ImageHeader::parse(header).ok())
        .and_then(|header| header.hashed_len())
        .and_then(|hashed| {
            let at = usize::try_from(hashed).ok()?;
            let [m0, m1, t0, t1] = *file.get(at..at + 4)?.first_chunk::<4>()?;
            let magic = u16::from_le_bytes([m0, m1]);
            (magic == format::UNPROTECTED_TLV_MAGIC)
                .then(|| at + usize::from(u16::from_le_bytes([t0, t1])))
        });
    end.and_then(|end| file.get(..end)).unwrap_or(file)
}

#[cfg(test)]
mod tests {
    use super::image_part;

    fn image(payload: usize, tlv_total: u16) -> Vec<u8> {
        let mut bytes = vec![0u8; 0x20];
        bytes[..4].copy_from_slice(&0x96f3_b83du32.to_le_bytes());
        bytes[8..10].copy_from_slice(&0x20u16.to_le_bytes());
        bytes[12..16].copy_from_slice(&u32::try_from(payload).expect("small").to_le_bytes());
        bytes.extend(std::iter::repeat_n(0xAB, payload));
        bytes.extend_from_slice(&[0x07, 0x69]);
        bytes.extend_from_slice(&tlv_total.to_le_bytes());
        bytes.extend(std::iter::repeat_n(0x11, usize::from(tlv_total) - 4));
        bytes
    }

    #[test]
    fn strips_slot_padding_after_the_tlvs() {
        let bare = image(100, 40);
        let mut padded = bare.clone();
        padded.resize(4096, 0xFF);
        assert_eq!(image_part(&padded), &bare[..]);
    }

    #[test]
    fn keeps_files_it_cannot_parse_whole() {
        let junk = vec![0x55; 300];
        assert_eq!(image_part(&junk), &junk[..]);
        let mut truncated = image(100, 40);
        truncated.truncate(130);
        assert_eq!(image_part(&truncated), &truncated[..]);
    }
}
