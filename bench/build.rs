//! Links the benchmark firmware for the QEMU MPS2 boards: on AN385 and AN386 (ARMv7-M) 4 MiB of
//! code memory at 0 and 4 MiB of RAM at 0x2000_0000; on AN505 (ARMv8-M Mainline, Secure state)
//! 4 MiB of SSRAM1 at 0x1000_0000 and 2 MiB of RAM at 0x3800_0000.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rustc-check-cfg=cfg(systick_20mhz)");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let target = std::env::var("TARGET").unwrap_or_default();
    let (flash, ram, ram_len) = if target.starts_with("thumbv8m.main") {
        println!("cargo:rustc-cfg=systick_20mhz");
        ("0x10000000", "0x38000000", "2M")
    } else {
        ("0x00000000", "0x20000000", "4M")
    };
    let memory = format!(
        "MEMORY\n{{\n  FLASH : ORIGIN = {flash}, LENGTH = 4M\n  RAM : ORIGIN = {ram}, LENGTH = {ram_len}\n}}\n"
    );
    std::fs::write(out.join("memory.x"), memory).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
}
