//! `cargo xtask check-sha256`: the shipped SHA-256 block functions against `sha2`, on QEMU.
//!
//! The Thumb-2 assembly runs only on the device and the rolled variant only in size builds, so
//! host tests cannot show either hashes correctly. `fwsign-sha256-check` (bench/src/bin) hashes
//! 304 pseudo-random inputs with both and exits non-zero on the first difference; it runs on
//! every CPU the assembly ships for, and with the rolled block function on the Cortex-M4.

use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::bench::{Settings, build_binary};

/// One run: the QEMU machine and CPU, the target, and the `fwsign-bench` features.
struct Case {
    label: &'static str,
    machine: &'static str,
    cpu: &'static str,
    target: &'static str,
    features: &'static str,
}

const CASES: [Case; 4] = [
    Case {
        label: "unrolled Thumb-2, Cortex-M3",
        machine: "mps2-an385",
        cpu: "cortex-m3",
        target: "thumbv7m-none-eabi",
        features: UNROLLED,
    },
    Case {
        label: "unrolled Thumb-2, Cortex-M4",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        target: "thumbv7em-none-eabihf",
        features: UNROLLED,
    },
    Case {
        label: "unrolled Thumb-2, Cortex-M33",
        machine: "mps2-an505",
        cpu: "cortex-m33",
        target: "thumbv8m.main-none-eabihf",
        features: UNROLLED,
    },
    Case {
        label: "rolled, Cortex-M4",
        machine: "mps2-an386",
        cpu: "cortex-m4",
        target: "thumbv7em-none-eabihf",
        features: ROLLED,
    },
];

/// The bench firmware's features: the fewest that build (verifier-core needs an algorithm).
const UNROLLED: &str = "ed25519,thumb2-sha256";
const ROLLED: &str = "ed25519,thumb2-sha256,sha256-armv7m/rolled";
/// What the firmware prints when every input matched.
const PASSED: &str = "sha256_armv7m_checked_inputs=304";

/// Builds and runs the check for every case.
pub(crate) fn check() -> Result<()> {
    crate::qemu::ensure_installed()?;
    for case in &CASES {
        let firmware = build_binary(
            "fwsign-bench",
            Some("fwsign-sha256-check"),
            case.target,
            case.features,
            &[],
            Settings::Firmware,
        )?;
        let output = Command::new("qemu-system-arm")
            .args(["-machine", case.machine, "-cpu", case.cpu])
            .args(["-display", "none", "-monitor", "none", "-serial", "none"])
            .args(["-semihosting-config", "enable=on,target=native"])
            .arg("-kernel")
            .arg(&firmware)
            .output()
            .context("cannot run qemu-system-arm")?;
        let said = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !said.lines().any(|line| line.trim() == PASSED) {
            bail!(
                "SHA-256 {}: the block function disagrees with sha2: {}{}",
                case.label,
                said.trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        println!("SHA-256 {}: 304 inputs hash as sha2 hashes them", case.label);
    }
    Ok(())
}
