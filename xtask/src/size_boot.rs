//! `cargo xtask check-size-build`: the size-oriented Ed25519 bootloader on QEMU.
//!
//! salty's assembly field arithmetic and the rolled SHA-256 run only on the device, and that
//! build's `core` panics by trapping: host tests cannot show that it decides like the others.
//! So it is built as `cargo xtask bench` builds it and booted with an image signed by imgtool:
//! the signed image must start, and a changed payload byte, a changed signature byte and a
//! malleated signature (`S + L`, the same point for a verifier that reduces `S`) must each end
//! in the safe state.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::bench::bootloader;
use crate::sign::{self, SignRequest};

/// The board: the AN386 with 264 KiB slots, as the benchmark builds use.
const BOARD: boards::Board = boards::mps2::AN386_BENCH;
/// The bootloader's exit code when nothing may boot (`bootloader/firmware`).
const NOTHING_BOOTABLE: i32 = 3;
/// A boot takes well under a second of host time.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Ed25519's group order L.
const ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Builds the size-oriented Ed25519 bootloader and checks what it boots and refuses.
pub(crate) fn check() -> Result<()> {
    crate::qemu::ensure_installed()?;
    let dir = crate::root().join("target").join("size-boot");
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let key = dir.join("ed25519.pem");
    if !key.is_file() {
        sign::run(
            Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&key),
        )
        .context("creating the Ed25519 key needs openssl")?;
    }
    let elf = bootloader::build_ed25519_size(&BOARD, &key)?;
    let signed = signed_image(&dir, &key)?;
    let len = signed.len();
    let cases: [(&str, Vec<u8>, i32); 4] = [
        ("signed image", signed.clone(), 0),
        ("payload byte changed", flip(&signed, BOARD.header_size as usize + 100), NOTHING_BOOTABLE),
        ("signature byte changed", flip(&signed, len - 40), NOTHING_BOOTABLE),
        ("signature S + L", malleate(&signed)?, NOTHING_BOOTABLE),
    ];
    for (case, image, expected) in cases {
        let code = boot(&elf, &image, &dir).with_context(|| format!("booting the {case}"))?;
        if code != expected {
            bail!("{case}: the size-oriented bootloader exited with {code}, expected {expected}");
        }
        println!("size-oriented bootloader, {case}: exit {code} as expected");
    }
    Ok(())
}

/// A 4 KiB application whose first instructions end QEMU with exit code 0 (semihosting
/// `SYS_EXIT`, `ADP_Stopped_ApplicationExit`), signed by imgtool with a security counter.
fn signed_image(dir: &Path, key: &Path) -> Result<Vec<u8>> {
    const EXIT: [u8; 12] = [
        0x18, 0x20, // movs r0, #0x18 (SYS_EXIT)
        0x01, 0x49, // ldr r1, [pc, #4] (ADP_Stopped_ApplicationExit)
        0xab, 0xbe, // bkpt 0xab
        0xfe, 0xe7, // b .
        0x26, 0x00, 0x02, 0x00, // .word 0x20026
    ];
    let entry = BOARD.primary_address() + BOARD.header_size + 8;
    let mut app = vec![0u8; 4096];
    app[0..4].copy_from_slice(&(BOARD.ram_base + 0x1_0000).to_le_bytes());
    app[4..8].copy_from_slice(&(entry | 1).to_le_bytes());
    app[8..20].copy_from_slice(&EXIT);
    let input = dir.join("app.bin");
    std::fs::write(&input, &app).with_context(|| format!("cannot write {}", input.display()))?;
    let output = dir.join("app-signed.bin");
    let request = SignRequest {
        input: &input,
        output: &output,
        key: Some(key),
        version: "1.0.0",
        security_counter: 1,
    };
    sign::with_imgtool(&BOARD, &request)
}

/// `image` with one bit of byte `at` changed.
fn flip(image: &[u8], at: usize) -> Vec<u8> {
    let mut changed = image.to_vec();
    if let Some(byte) = changed.get_mut(at) {
        *byte ^= 1;
    }
    changed
}

/// `image` with its Ed25519 signature's `S` (the image's last 32 bytes) replaced by `S + L`.
fn malleate(image: &[u8]) -> Result<Vec<u8>> {
    let mut changed = image.to_vec();
    let start = changed.len().checked_sub(32).context("the image is too short")?;
    let mut carry = 0u16;
    for (byte, order) in changed[start..].iter_mut().zip(ORDER) {
        let sum = u16::from(*byte) + u16::from(order) + carry;
        *byte = sum.to_le_bytes()[0];
        carry = sum >> 8;
    }
    if carry != 0 {
        bail!("S + L overflows 256 bits for this signature");
    }
    Ok(changed)
}

/// Boots `image` from the primary slot through `elf`; QEMU's exit code.
fn boot(elf: &Path, image: &[u8], dir: &Path) -> Result<i32> {
    let mut flash = vec![0xffu8; BOARD.flash_size as usize];
    flash
        .get_mut(..image.len())
        .context("the image is larger than the flash")?
        .copy_from_slice(image);
    std::fs::write(dir.join(boards::mps2::FLASH_FILE), &flash)?;
    let (machine, cpu) = BOARD.qemu.context("the board runs on QEMU")?;
    let mut child = Command::new("qemu-system-arm")
        .args(["-machine", machine, "-cpu", cpu])
        .args(["-display", "none", "-monitor", "none", "-serial", "none"])
        .args(["-semihosting-config", "enable=on,target=native", "-kernel"])
        .arg(elf)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot run qemu-system-arm")?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            return status.code().context("QEMU was killed by a signal");
        }
        if started.elapsed() > BOOT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            bail!("QEMU neither booted the application nor refused within {BOOT_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
