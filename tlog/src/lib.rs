//! The fwsign transparency log on the host: everything a log operator and a monitor compute.
//!
//! A signing service appends one [`entry`] per signature to an RFC 6962 Merkle tree, signs
//! [`checkpoint`]s of it as C2SP signed [`note`]s, serves it as C2SP [`tiles`], and hands each
//! signer a [`proof`] text (`tlog-proof@v1`) that goes into the image's LOG_PROOF TLV. A
//! [`monitor`] reads the tiles ([`tiles::TileStore`]), computes a consistency proof between the
//! last checkpoint it recorded and the newest, and checks it ([`tree::verify_consistency`]), so
//! a forked or truncated log is caught.
//!
//! The crate is storage-agnostic: the [`tree`] reads and writes hashes by their stored index
//! (the layout of Go's `golang.org/x/mod/sumdb/tlog`) through the [`tree::HashStore`] trait, so
//! a service keeps them in its database and a test in memory ([`tree::MemoryStore`]).
//!
//! What it is not: a server, a database schema, or the device-side check. The checks a device
//! makes (proof parsing, inclusion, checkpoint signatures, the entry format) live in
//! `verifier-core`'s `tlog` module, and this crate reuses them rather than repeating them.

pub mod checkpoint;
pub mod entry;
mod error;
pub mod local;
pub mod monitor;
pub mod note;
pub mod proof;
pub mod tiles;
pub mod tree;

pub use error::TlogError;
pub use verifier_core::tlog::{LogKey, TreeHash};

/// Base64 (standard alphabet, padded), as every C2SP text format uses it.
pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
