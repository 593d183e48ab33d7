//! Links the application after the image header in the selected board's primary slot, and
//! takes its version from the environment: `FWSIGN_APP_VERSION` (`major.minor.revision`,
//! default `1.0.0`) and `FWSIGN_APP_HEALTHY` (`0` builds an image that fails its health
//! check and so never confirms itself).

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=FWSIGN_APP_VERSION");
    println!("cargo:rerun-if-env-changed=FWSIGN_APP_HEALTHY");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let board = boards::ALL
        .into_iter()
        .find(|b| {
            env::var_os(format!("CARGO_FEATURE_{}", b.name.to_uppercase().replace('-', "_")))
                .is_some()
        })
        .expect("enable one board feature");
    fs::write(out.join("memory.x"), board.application_memory_x()).expect("write memory.x");
    fs::write(out.join("device.x"), "").expect("write device.x"); // interrupts: boards::interrupts
    println!("cargo:rustc-link-search={}", out.display());
    // No page alignment: keeps the ELF headers out of the loaded image.
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tdefmt.x");

    let version = env::var("FWSIGN_APP_VERSION").unwrap_or_else(|_| "1.0.0".into());
    let parts: Vec<u32> = version
        .split('.')
        .map(|p| {
            p.parse().unwrap_or_else(|_| {
                panic!("FWSIGN_APP_VERSION={version:?}: expected major.minor.revision")
            })
        })
        .collect();
    let [major, minor, revision] = parts[..] else {
        panic!("FWSIGN_APP_VERSION={version:?}: expected major.minor.revision");
    };
    assert!(
        major < 256 && minor < 256 && revision < 65536,
        "FWSIGN_APP_VERSION={version:?}: out of range"
    );
    let healthy = env::var("FWSIGN_APP_HEALTHY").map_or(true, |v| v != "0");
    let code = format!(
        "const VERSION: (u8, u8, u16) = ({major}, {minor}, {revision});\nconst VERSION_STR: &str = \"{major}.{minor}.{revision}\";\nconst HEALTHY: bool = {healthy};\n"
    );
    fs::write(out.join("version.rs"), code).expect("write version.rs");
}
