//! A short byte string held inline: digests and encoded keys without allocation.

use core::fmt;
use core::ops::Deref;

/// Up to `N` bytes stored inline; derefs to the bytes held.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineBytes<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> InlineBytes<N> {
    /// The most bytes held.
    pub const MAX_LEN: usize = N;

    /// Copies the concatenation of `parts`, cut at `N` bytes.
    pub fn concat(parts: &[&[u8]]) -> Self {
        let mut bytes = [0u8; N];
        let source = parts.iter().flat_map(|part| part.iter());
        let len = bytes.iter_mut().zip(source).map(|(dst, src)| *dst = *src).count();
        Self { bytes, len }
    }

    /// Copies `value`, cut at `N` bytes.
    pub fn from_slice(value: &[u8]) -> Self {
        Self::concat(&[value])
    }
}

impl<const N: usize> Deref for InlineBytes<N> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.bytes.get(..self.len).unwrap_or(&[])
    }
}

impl<const N: usize> fmt::Debug for InlineBytes<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}
