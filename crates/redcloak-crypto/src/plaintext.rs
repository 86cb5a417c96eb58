//! [`Plaintext`]: a decrypted value that wipes itself when dropped.

use std::fmt;
use std::ops::Deref;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A decrypted value or member. Reads as a `&[u8]` (`Deref`, `AsRef`);
/// `Debug` shows only its length; the whole allocation is zeroed when it is
/// dropped.
///
/// Not `Zeroizing<Vec<u8>>` because that wipes a `Vec<u8>` one volatile byte
/// write at a time (~0.4 ns per byte, as much as decrypting it); this wipes
/// the allocation as one block behind an optimisation barrier (the `zeroize`
/// crate's fast path for byte slices).
#[derive(Default, PartialEq, Eq)]
pub struct Plaintext(Vec<u8>);

impl Plaintext {
    /// An empty buffer that can grow to `capacity` bytes without
    /// reallocating (a reallocation would leave an unwiped copy behind).
    pub(crate) fn with_capacity(capacity: usize) -> Plaintext {
        Plaintext(Vec::with_capacity(capacity))
    }

    /// Mutable access for decrypting in place. Callers must not grow it past
    /// its capacity.
    pub(crate) fn vec_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }

    /// The bytes as a plain `Vec`, which is no longer wiped on drop: for
    /// callers that hand the value on anyway (e.g. into a reply buffer).
    pub fn into_vec(mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

impl Deref for Plaintext {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Plaintext {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Zeroize for Plaintext {
    fn zeroize(&mut self) {
        // Everything up to the capacity, as one byte slice.
        self.0.clear();
        self.0.spare_capacity_mut().zeroize();
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        self.zeroize();
    }
}

impl ZeroizeOnDrop for Plaintext {}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zeroize_clears_and_debug_hides() {
        let mut p = Plaintext::with_capacity(8);
        p.vec_mut().extend_from_slice(b"secret");
        assert_eq!(&*p, b"secret");
        assert_eq!(format!("{p:?}"), "Plaintext(6 bytes)");
        p.zeroize();
        assert!(p.is_empty());
        assert!(p.0.capacity() >= 8);
        let mut q = Plaintext::with_capacity(4);
        q.vec_mut().extend_from_slice(b"abc");
        assert_eq!(q.into_vec(), b"abc");
    }
}
