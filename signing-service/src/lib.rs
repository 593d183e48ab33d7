//! The fwsign signing service: firmware keys behind one server, a central policy, an audit trail.
//!
//! `fwsign serve --config service.toml` runs it. Clients (CI jobs, people, factory stations)
//! send the to-be-signed region of an MCUboot image; the service parses it with
//! verifier-core, computes the digest itself, asks the Cedar policy whether this caller may sign
//! this image with this key, signs with a key that never leaves its PKCS#11 token, and appends
//! a hash-chained audit record, durable before the signature is sent. It is not an image
//! builder (the client builds and writes images, as `fwsign sign` always has), not a key
//! manager (keys are made in the token with `fwsign keygen`), and not a transparency log.
//!
//! Modules, one concept each: [`config`] (the checked `service.toml`), [`tokens`] (API
//! tokens), [`oidc`] (CI identity tokens), [`policy`] (Cedar schema and decisions), [`tbs`] (parsing what is to be signed), [`approvals`]
//! (requests that wait for people),
//! [`keyring`] (the named keys), [`audit`] (the chained record format), [`storage`] (the one
//! storage trait and its SQLite backend), [`http`] (the API), [`server`] (start-up and admin
//! commands), [`check`] (offline policy checks), [`client`] (the blocking client the CLI uses).

#![forbid(unsafe_code)]

pub mod approvals;
pub mod audit;
pub mod check;
pub mod client;
pub mod config;
pub mod http;
pub mod keyring;
pub mod metrics;
pub mod oidc;
pub mod policy;
pub mod server;
pub mod storage;
pub mod tbs;
pub mod tokens;
