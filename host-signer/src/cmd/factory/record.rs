//! The provisioning record each device gets: the shared part (key hashes, initial security
//! counter, log key) with the device's identity, encoded by the `provisioning` crate, the
//! one definition of the format the bootloader reads.

use boards::Board;
use provisioning::RecordBuilder;

/// What every device's record holds but its identity.
#[derive(Debug, Clone)]
pub(crate) struct RecordTemplate {
    /// SHA-256 of each trusted key's SubjectPublicKeyInfo, in slot order.
    pub(crate) key_hashes: Vec<[u8; 32]>,
    /// The device's initial security counter.
    pub(crate) security_counter: u32,
    /// The transparency-log verifier key (name, Ed25519 key) the profile names, if any.
    pub(crate) log_key: Option<(String, [u8; 32])>,
}

impl RecordTemplate {
    /// The encoded record of the device `identity`.
    pub(crate) fn build(&self, identity: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut builder = self
            .key_hashes
            .iter()
            .fold(RecordBuilder::new(identity), |builder, hash| builder.trusted_key_hash(*hash))
            .security_counter(self.security_counter);
        if let Some((name, key)) = &self.log_key {
            builder = builder.log_key(name, *key);
        }
        builder.build().map_err(|e| anyhow::anyhow!("provisioning record: {e}"))
    }
}

/// Address and size of `board`'s provisioning record region.
pub(crate) fn region(board: &Board) -> (u32, u32) {
    (board.flash_base + board.provisioning.offset, board.provisioning.size)
}
