//! Requests that wait for people: a key with `approvals = N` signs only after N distinct
//! members of its `approvers` group approved, none denied, and before the request expired.
//!
//! A request is identified by its fingerprint (who asked, which key, which digests), so a
//! re-run of the same CI job with the same image attaches to the waiting request instead of
//! making a second one, and once it is signed, gets the signature.

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Waiting for approvals.
    Pending,
    /// Approved and signed; the reply is stored.
    Signed,
    /// Denied by an approver.
    Denied,
    /// Not approved in time.
    Expired,
}

impl RequestStatus {
    /// The name stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Signed => "signed",
            Self::Denied => "denied",
            Self::Expired => "expired",
        }
    }

    /// The status of a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Pending, Self::Signed, Self::Denied, Self::Expired]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

/// A request waiting for (or done with) approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRequest {
    /// Its id (32 hex digits).
    pub id: String,
    /// The key.
    pub key: String,
    /// Who asked ([`crate::policy::Principal::label`]).
    pub requester: String,
    /// The requester as the policy saw it, JSON.
    pub principal: String,
    /// The request body as sent.
    pub body: String,
    /// Who asked for what.
    pub fingerprint: String,
    /// Where it stands.
    pub status: RequestStatus,
    /// When it was made, Unix seconds.
    pub created: u64,
    /// When it expires, Unix seconds.
    pub expires: u64,
    /// Distinct approvers so far.
    pub approvers: Vec<String>,
    /// The signing reply, once signed.
    pub result: Option<String>,
}

/// The fingerprint of a request: requester, key and the digests, in order.
pub fn fingerprint(requester: &str, key: &str, digests: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in [requester.as_bytes(), key.as_bytes()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    for digest in digests {
        hasher.update(digest);
    }
    fwsign_keys::hex(&hasher.finalize())
}

/// A new random request id.
///
/// # Errors
/// The random number generator's failure.
pub fn new_id() -> Result<String, getrandom::Error> {
    let mut id = [0u8; 16];
    getrandom::fill(&mut id)?;
    Ok(fwsign_keys::hex(&id))
}
