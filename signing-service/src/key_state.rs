//! Whether a configured key may still sign: active, retired or revoked.
//!
//! Keys live in `service.toml`, but their life cycle lives in the database, so retiring or
//! revoking one (`fwsign key retire|revoke NAME`) needs no configuration change and is seen by
//! every request from then on. The state only moves forward (active → retired → revoked): a
//! key taken out of service is never quietly put back.

use std::fmt;

/// The life-cycle state of a signing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum KeyState {
    /// Signs (the state of every key the database has no row for).
    Active,
    /// At the end of its life: signs nothing more, devices still trust it until rotated.
    Retired,
    /// Compromised or withdrawn: signs nothing more, devices should revoke it.
    Revoked,
}

impl KeyState {
    /// The state's name as stored and shown.
    pub fn name(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Retired => "retired",
            Self::Revoked => "revoked",
        }
    }

    /// The state named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Active, Self::Retired, Self::Revoked].into_iter().find(|s| s.name() == name)
    }

    /// Whether the service may sign with a key in this state.
    pub fn may_sign(self) -> bool {
        self == Self::Active
    }
}

impl fmt::Display for KeyState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_only_active_signs() {
        for state in [KeyState::Active, KeyState::Retired, KeyState::Revoked] {
            assert_eq!(KeyState::from_name(state.name()), Some(state));
        }
        assert_eq!(KeyState::from_name("expired"), None);
        assert!(KeyState::Active.may_sign());
        assert!(!KeyState::Retired.may_sign());
        assert!(!KeyState::Revoked.may_sign());
        assert!(KeyState::Active < KeyState::Retired && KeyState::Retired < KeyState::Revoked);
    }
}
