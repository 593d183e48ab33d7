//! Selects the Thumb-2 block function on ARMv7-M and ARMv8-M Mainline targets (`cfg(thumb2)`).
//! Rust exposes no stable `target_feature` for Thumb-2, so the target name decides.

fn main() {
    println!("cargo:rustc-check-cfg=cfg(thumb2)");
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    let thumb2 = ["thumbv7m-", "thumbv7em-", "thumbv8m.main-"];
    if thumb2.iter().any(|prefix| target.starts_with(prefix)) {
        println!("cargo:rustc-cfg=thumb2");
    }
}
