//! `cargo xtask demo`: the OTA story on an emulated Cortex-M4, narrated.

use anyhow::{Result, bail};

use crate::kit::{BOOT_TIMEOUT, Kit, Signer, expect};
use crate::qemu::Status;
use crate::scenarios::{VERSIONS, tampered, update};

/// Build everything, sign the demo versions and play the OTA story on QEMU mps2-an386,
/// with the decoded device logs.
#[derive(clap::Parser)]
pub(crate) struct Cmd {
    /// Hide the device logs; print only the story.
    #[arg(long)]
    quiet: bool,
}

impl Cmd {
    pub(crate) fn run(self) -> Result<()> {
        let echo = !self.quiet;
        let board = boards::mps2::AN386;
        chapter(
            "Building the bootloader (trusting target/dev-keys/{ed25519,p256}.pem) and demo v1, v2, v3",
        );
        let kit = Kit::build(board, &VERSIONS)?;
        let v1 = kit.image("1.0.0", true, 1, Signer::Ed25519)?;
        let v2 = kit.image("2.0.0", true, 2, Signer::Ed25519)?;
        println!(
            "  signed with fwsign: v1 (security counter 1, {} bytes), v2 (counter 2, {} bytes)",
            v1.len(),
            v2.len()
        );

        chapter("1. Factory: v1 programmed into the primary slot; power on");
        let device = kit.device("demo", &v1)?;
        let (mut session, status) = device.boot(echo)?;
        show(&status);
        expect(&status, "1.0.0", "normal")?;

        chapter("2. v2 arrives over the UART, boots in test mode and confirms itself");
        let status = update(&mut session, &v2, false)?;
        show(&status);
        expect(&status, "2.0.0", "test-boot")?;
        session.power_off();
        println!("  power cycle:");
        let (mut session, status) = device.boot(echo)?;
        show(&status);
        expect(&status, "2.0.0", "normal")?;

        chapter("3. A tampered v3 (one bit flipped in transit) is refused; v2 keeps running");
        let status =
            update(&mut session, &tampered(kit.image("3.0.0", true, 3, Signer::Ed25519)?), false)?;
        refused(&status)?;

        chapter("4. A v3 signed by an unknown key is refused");
        let status = update(&mut session, &kit.image("3.0.0", true, 3, Signer::Untrusted)?, false)?;
        refused(&status)?;

        chapter("5. A downgrade to v1 (security counter 1 < 2) is refused");
        let status = update(&mut session, &v1, false)?;
        refused(&status)?;

        chapter("6. A broken v3 boots in test mode, fails its health check and is reverted");
        let status = update(&mut session, &kit.image("3.0.0", false, 3, Signer::Ed25519)?, false)?;
        show(&status);
        expect(&status, "3.0.0", "test-boot")?;
        let status = session.expect_status(BOOT_TIMEOUT)?;
        show(&status);
        expect(&status, "2.0.0", "reverted")?;
        session.power_off();
        println!(
            "\nThe story played out as expected: the device only ever ran signed, current, healthy firmware."
        );
        Ok(())
    }
}

fn chapter(title: &str) {
    println!("\n== {title}");
}

fn show(status: &Status) {
    println!("  => device runs {status}");
}

fn refused(status: &Status) -> Result<()> {
    show(status);
    if status.outcome != "update-refused" || status.version != "2.0.0" {
        bail!(
            "expected the update to be refused with v2.0.0 still running, device reports {status}"
        );
    }
    Ok(())
}
