//! API tokens for people and stations: shown once, stored only as a SHA-256 hash.
//!
//! A token is `fwst_` followed by 32 random bytes in base64url; the prefix lets a secret
//! scanner recognise a leaked one and lets the service tell a token from an OIDC JWT.

use std::fmt;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

/// The prefix of every API token.
pub const TOKEN_PREFIX: &str = "fwst_";

/// What a token holder may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Submits signing requests.
    Submitter,
    /// Approves or denies pending requests.
    Approver,
    /// Reads the audit trail.
    Auditor,
    /// A factory station: records the devices it provisioned.
    Station,
    /// Everything.
    Admin,
}

impl Role {
    /// The name used on the command line, in storage and in policies.
    pub fn name(self) -> &'static str {
        match self {
            Self::Submitter => "submitter",
            Self::Approver => "approver",
            Self::Auditor => "auditor",
            Self::Station => "station",
            Self::Admin => "admin",
        }
    }

    /// Whether this role includes `wanted`.
    pub fn allows(self, wanted: Self) -> bool {
        self == wanted || self == Self::Admin
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        [Self::Submitter, Self::Approver, Self::Auditor, Self::Station, Self::Admin]
            .into_iter()
            .find(|role| role.name() == text)
            .ok_or_else(|| {
                format!("unknown role \"{text}\": expected submitter, approver, auditor, station or admin")
            })
    }
}

/// A token's holder, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// The client's name.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// A group it belongs to, besides those the configuration lists it in.
    pub group: Option<String>,
}

/// A new random token.
///
/// # Errors
/// The random number generator's failure.
pub fn generate() -> Result<String, getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    Ok(format!("{TOKEN_PREFIX}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)))
}

/// The hash stored for a token.
pub fn hash(token: &str) -> String {
    fwsign_keys::hex(&Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_prefixed_and_hashed() {
        let (a, b) = (generate().expect("rng"), generate().expect("rng"));
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), hash(&b));
    }

    #[test]
    fn roles_parse_and_admin_includes_all() {
        assert_eq!("auditor".parse::<Role>(), Ok(Role::Auditor));
        assert!("root".parse::<Role>().is_err());
        assert!(Role::Admin.allows(Role::Auditor));
        assert!(!Role::Submitter.allows(Role::Auditor));
    }
}
