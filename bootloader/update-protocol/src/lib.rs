//! A small framed protocol for sending a firmware update over a byte stream.
//!
//! Host to device, every frame:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | [`SYNC`] (`0xA5`) |
//! | 1 | [`Kind`] |
//! | 2 | payload length, little-endian, at most [`MAX_PAYLOAD`] |
//! | n | payload |
//! | 4 | CRC-32 (ISO-HDLC, as zlib) of kind, length and payload, little-endian |
//!
//! Payloads: `Begin` = image length (u32) and a mode byte (0 test, 1 permanent); `Data` =
//! offset (u32) and up to [`MAX_CHUNK`] bytes; `Commit` = empty. The device answers each
//! frame with one line, [`ACK`] or `NAK <reason>`, and the host sends the next frame only
//! after an `ACK` (stop and wait: simple, and enough for a UART). Bytes before a
//! [`SYNC`] are skipped, so the device resynchronises after noise.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// First byte of every frame.
pub const SYNC: u8 = 0xA5;
/// Largest data chunk in a `Data` frame.
pub const MAX_CHUNK: usize = 1024;
/// Largest payload.
pub const MAX_PAYLOAD: usize = MAX_CHUNK + 4;
/// Line the device sends for a frame it accepted.
pub const ACK: &str = "ACK";
/// Prefix of the line the device sends for a frame it rejected.
pub const NAK: &str = "NAK";
/// Prefix of the line the device sends at start-up with its state.
pub const STATUS: &str = "STATUS";

/// Sync, kind and length.
const HEADER: usize = 4;
const TRAILER: usize = 4;
const CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// Frame types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Start of an update: length and mode.
    Begin = 1,
    /// A chunk of the image at an offset.
    Data = 2,
    /// The whole image was sent: request the upgrade and reset.
    Commit = 3,
}

impl Kind {
    fn from_u8(byte: u8) -> Option<Self> {
        [Kind::Begin, Kind::Data, Kind::Commit].into_iter().find(|k| *k as u8 == byte)
    }
}

/// Size of the largest encoded frame.
pub const MAX_FRAME: usize = HEADER + MAX_PAYLOAD + TRAILER;

/// Encodes a frame into `out`, returning its length.
///
/// # Panics
/// If `payload` is longer than [`MAX_PAYLOAD`] (a caller bug).
pub fn encode(kind: Kind, payload: &[u8], out: &mut [u8; MAX_FRAME]) -> usize {
    assert!(payload.len() <= MAX_PAYLOAD, "payload too long");
    let len = payload.len();
    out[0] = SYNC;
    out[1] = kind as u8;
    out[2..4].copy_from_slice(&u16::try_from(len).unwrap_or(u16::MAX).to_le_bytes());
    out[4..4 + len].copy_from_slice(payload);
    let crc = CRC.checksum(&out[1..4 + len]);
    out[4 + len..8 + len].copy_from_slice(&crc.to_le_bytes());
    8 + len
}

/// Why a frame was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// The checksum does not match.
    Checksum,
    /// Unknown frame type.
    UnknownKind(u8),
    /// Payload length above [`MAX_PAYLOAD`].
    TooLong(u16),
}

impl FrameError {
    /// The reason sent after [`NAK`].
    pub fn describe(&self) -> &'static str {
        match self {
            FrameError::Checksum => "checksum",
            FrameError::UnknownKind(_) => "unknown-frame",
            FrameError::TooLong(_) => "too-long",
        }
    }
}

/// A received frame.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Its type.
    pub kind: Kind,
    /// Its payload.
    pub payload: &'a [u8],
}

/// Reassembles frames from a byte stream, one byte at a time.
pub struct Decoder {
    buffer: [u8; MAX_FRAME],
    len: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// An empty decoder.
    pub const fn new() -> Self {
        Self { buffer: [0; MAX_FRAME], len: 0 }
    }

    /// Feeds one byte; returns a complete frame or an error once one is decided.
    pub fn push(&mut self, byte: u8) -> Option<Result<Frame<'_>, FrameError>> {
        if self.len == 0 && byte != SYNC {
            return None;
        }
        self.buffer[self.len] = byte;
        self.len += 1;
        if self.len < HEADER {
            return None;
        }
        let declared = u16::from_le_bytes([self.buffer[2], self.buffer[3]]);
        let payload_len = usize::from(declared);
        if payload_len > MAX_PAYLOAD {
            self.len = 0;
            return Some(Err(FrameError::TooLong(declared)));
        }
        let total = 4 + payload_len + TRAILER;
        if self.len < total {
            return None;
        }
        self.len = 0;
        Some(self.finish(payload_len))
    }

    fn finish(&self, payload_len: usize) -> Result<Frame<'_>, FrameError> {
        let body = &self.buffer[1..4 + payload_len];
        let crc = &self.buffer[4 + payload_len..8 + payload_len];
        if CRC.checksum(body).to_le_bytes() != crc {
            return Err(FrameError::Checksum);
        }
        let kind = Kind::from_u8(self.buffer[1]).ok_or(FrameError::UnknownKind(self.buffer[1]))?;
        Ok(Frame { kind, payload: &self.buffer[4..4 + payload_len] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(bytes: &[u8]) -> Vec<Result<(Kind, Vec<u8>), FrameError>> {
        let mut decoder = Decoder::new();
        let mut out = Vec::new();
        for byte in bytes {
            if let Some(result) = decoder.push(*byte) {
                out.push(result.map(|f| (f.kind, f.payload.to_vec())));
            }
        }
        out
    }

    #[test]
    fn round_trips_after_noise() {
        let mut frame = [0u8; MAX_FRAME];
        let n = encode(Kind::Data, &[7; 300], &mut frame);
        let mut stream = vec![0x00, 0x13];
        stream.extend_from_slice(&frame[..n]);
        assert_eq!(decode_all(&stream), vec![Ok((Kind::Data, vec![7; 300]))]);
    }

    #[test]
    fn rejects_a_flipped_bit() {
        let mut frame = [0u8; MAX_FRAME];
        let n = encode(Kind::Commit, &[], &mut frame);
        frame[1] ^= 0x04;
        assert_eq!(decode_all(&frame[..n]), vec![Err(FrameError::Checksum)]);
    }

    #[test]
    fn rejects_an_oversized_length() {
        assert_eq!(decode_all(&[SYNC, 2, 0xFF, 0xFF]), vec![Err(FrameError::TooLong(0xFFFF))]);
    }
}
