//! Power-fail testing of the bootloader on simulated NOR flash.
//!
//! Every flow a device goes through in the field (test upgrade, confirm, revert, permanent
//! upgrade, overwrite-only install, security-counter update, and a key rotation confirmed or
//! installed permanently) is first run cleanly to list its flash operations. Then, for every operation, the flow is run again from the same start with
//! a fault at that operation: power cut before it, a torn write (part of the cells
//! programmed, one cell only partly) or an interrupted erase (a prefix erased, or random
//! content). The device then reboots until it boots, and the harness checks the promises:
//!
//! - a valid signed image boots (re-verified independently of the boot decision);
//! - it is the old or the new image, exactly as the state machine promises for where the
//!   fault fell (before or after the request or confirmation was committed);
//! - in swap modes the other image is intact in the secondary slot;
//! - the trailers are consistent with the boot outcome, no request is left pending and the
//!   journal is blank;
//! - the security counter never decreased and has the promised value;
//! - a revoked key slot never becomes valid again; in a rotation the old key is revoked
//!   exactly when the rotation image runs confirmed, and the old image is refused from then on;
//! - the boot after that does what the state machine promises (a test image is reverted,
//!   anything else boots again unchanged).
//!
//! A random-sample mode with a fixed seed adds further faults during the recovery boots.
//!
//! The matrix covers [`shape::ALL`] (uniform 1 KiB and 4 KiB pages, STM32F4's mixed
//! 16/64/128 KiB sectors) × [`matrix::WRITE_SIZES`] × [`flow::supported`] × [`point::FaultKind`].
//! The flash erases to `0xFF`, or to `0x00` when this crate is built with the
//! `flash-erase-zero` feature (which builds the bootloader for such flash too).

pub mod device;
pub mod flow;
pub mod image;
pub mod matrix;
pub mod point;
pub mod shape;

pub use matrix::{Options, Summary, run};
