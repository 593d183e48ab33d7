//! The fwsign signing service: firmware keys behind one server, a central policy, an audit trail.
//!
//! `fwsign serve --config service.toml` runs it. Clients (CI jobs, people, factory stations)
//! send the to-be-signed region of an MCUboot image; the service parses it with
//! verifier-core, computes the digest itself, asks the Cedar policy whether this caller may sign
//! this image with this key, signs with a key that never leaves its PKCS#11 token, and appends
//! a hash-chained audit record, durable before the signature is sent. It is not an image
//! builder (the client builds and writes images, as `fwsign sign` always has) and not a key
//! manager (keys are made in the token with `fwsign keygen`). It serves HTTPS itself (rustls,
//! `[tls]`), or plain HTTP on loopback behind a proxy. With a `[log]` configured, every
//! signature is also appended to a transparency log, served as C2SP tiles.
//!
//! Modules, one concept each: [`config`] (the checked `service.toml`), [`tokens`] (API
//! tokens), [`oidc`] (CI identity tokens), [`policy`] (Cedar schema and decisions), [`request`]
//! (the sign request format), [`tbs`] (parsing what is to be signed), [`approvals`] (requests
//! that wait for people), [`keyring`] (the named keys), [`key_state`] (whether a key may still
//! sign: active, retired, revoked), [`audit`] (the chained record format), [`factory`] (what a
//! factory station reports about a device), [`log`] (the
//! transparency log's key, entries and growth), [`limits`] (rate limits and the request queue
//! bound), [`storage`] (the one storage trait, its SQLite and PostgreSQL backends and their
//! schema migrations), [`http`] (the API), [`tls`] (HTTPS), [`server`] (start-up and admin
//! commands), [`check`] (offline policy checks), [`client`] (the blocking client the CLI uses).
//!
//! # Features
//! - `service` (default): everything but [`request`] and [`tbs`], the request decoder, which
//!   build without it (for the fuzzer).

#![forbid(unsafe_code)]

#[cfg(feature = "service")]
pub mod approvals;
#[cfg(feature = "service")]
pub mod audit;
#[cfg(feature = "service")]
pub mod check;
#[cfg(feature = "service")]
pub mod client;
#[cfg(feature = "service")]
pub mod config;
#[cfg(feature = "service")]
mod connections;
#[cfg(feature = "service")]
pub mod factory;
#[cfg(feature = "service")]
pub mod http;
#[cfg(feature = "service")]
pub mod key_state;
#[cfg(feature = "service")]
pub mod keyring;
#[cfg(feature = "service")]
pub mod limits;
#[cfg(feature = "service")]
pub mod log;
#[cfg(feature = "service")]
pub mod metrics;
#[cfg(feature = "service")]
pub mod oidc;
#[cfg(feature = "service")]
pub mod policy;
pub mod request;
#[cfg(feature = "service")]
pub mod server;
#[cfg(feature = "service")]
pub mod storage;
pub mod tbs;
#[cfg(feature = "service")]
pub mod tls;
#[cfg(feature = "service")]
pub mod tokens;
