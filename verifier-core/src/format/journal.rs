//! The bootloader's swap journal, the first state sector: an array of bookkeeping units (8
//! bytes of content, padded to the flash write size if larger).
//!
//! | unit | contents |
//! |---|---|
//! | 0 | header: `"FJ"`, operation, `!operation`, sectors (u16), `!sectors` (u16) |
//! | 1 + k | written (every bit programmed) once step k has completed; erased while not |
//! | 1 + steps | the boot marker: written once the boot the operation was done for has run |
//!
//! The operation is a [`super::trailer::swap_type`] or [`OVERWRITE`].

/// Bytes of content in a unit.
pub const CONTENT: usize = 8;
/// The header's first two bytes.
pub const HEADER_MAGIC: [u8; 2] = *b"FJ";
/// Operation code of an overwrite (copy the secondary over the primary).
pub const OVERWRITE: u8 = 0x10;
/// Steps after the data sectors: primary trailer, secondary trailer, completion marker.
pub const FINAL_STEPS: u32 = 3;

/// Steps of a swap of `sectors` data sectors, including the completion marker.
pub const fn swap_steps(sectors: u32) -> u32 {
    sectors.saturating_mul(3).saturating_add(FINAL_STEPS)
}

/// Steps of an overwrite of `sectors` data sectors, including the completion marker.
pub const fn overwrite_steps(sectors: u32) -> u32 {
    sectors.saturating_add(FINAL_STEPS)
}

/// The header unit for operation `code` over `sectors` data sectors.
pub const fn encode_header(code: u8, sectors: u16) -> [u8; CONTENT] {
    let [s0, s1] = sectors.to_le_bytes();
    let [n0, n1] = (!sectors).to_le_bytes();
    [HEADER_MAGIC[0], HEADER_MAGIC[1], code, !code, s0, s1, n0, n1]
}

/// Operation code and data sectors of a header unit, if it is one.
pub fn decode_header(unit: [u8; CONTENT]) -> Option<(u8, u16)> {
    let [m0, m1, code, not_code, s0, s1, n0, n1] = unit;
    let sectors = u16::from_le_bytes([s0, s1]);
    let valid =
        [m0, m1] == HEADER_MAGIC && code == !not_code && sectors == !u16::from_le_bytes([n0, n1]);
    valid.then_some((code, sectors))
}

/// Steps of operation `code` over `sectors` data sectors (`None` for an unknown code).
pub fn steps(code: u8, sectors: u16) -> Option<u32> {
    use super::trailer::swap_type::{PERMANENT, REVERT, TEST};
    match code {
        TEST | PERMANENT | REVERT => Some(swap_steps(u32::from(sectors))),
        OVERWRITE => Some(overwrite_steps(u32::from(sectors))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let header = encode_header(3, 31);
        assert_eq!(decode_header(header), Some((3, 31)));
        let mut torn = header;
        torn[6] = 0xff;
        assert_eq!(decode_header(torn), None);
        assert_eq!(steps(3, 31), Some(96));
        assert_eq!(steps(OVERWRITE, 31), Some(34));
        assert_eq!(steps(9, 31), None);
    }
}
