//! The provisioning record: the per-device data a factory writes once, outside the bootloader.
//!
//! A device built with provisioned keys does not carry its trusted keys in the bootloader: it
//! reads them from this record, kept in a flash page of its own (locked before the jump on the
//! nRF52840), so one bootloader build serves every product and customer. The record holds a
//! format version, the device identity, up to [`MAX_KEYS`] trusted key hashes (SHA-256 of the
//! key's SubjectPublicKeyInfo, as MCUboot's hardware-key mode; images then carry the full key,
//! `--public-key-format full`), the initial security counter and, optionally, a
//! transparency-log verifier key, all sealed by a SHA-256 digest, and per key slot a one-way
//! revoked word outside the digest, each in its own flash write unit.
//!
//! Layout and rules are defined once in [`format`]; [`Record::parse`] reads a record without
//! allocating or panicking and refuses a damaged one with a [`RecordError`]; with the `std`
//! feature [`RecordBuilder`] encodes one on the host.
//!
//! Power-fail safety: the factory writes the whole page once, and a record is valid only with
//! its digest, so a torn factory write reads as damaged (or as not provisioned) and the device
//! boots nothing. Revoked words change in the field: erased means valid, any other value means
//! revoked, so a torn revocation reads as revoked and writing [`format::REVOKED`] again
//! completes it.
//!
//! What it is not: it does not write flash, lock pages or decide revocations (the bootloader
//! and `fwsign factory` do), and holds no secret: key hashes and the log key are public.
#![cfg_attr(not(feature = "std"), no_std)]

#[cfg(feature = "std")]
mod builder;
mod error;
pub mod format;
mod view;

#[cfg(feature = "std")]
pub use builder::{BuildError, RecordBuilder};
pub use error::{Field, RecordError};
pub use format::{MAX_IDENTITY_LEN, MAX_KEYS, MAX_LOG_KEY_NAME_LEN, RECORD_LEN};
pub use view::{Record, RecordView, SlotState, TrustedKeys};
