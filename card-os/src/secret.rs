//! Secret bytes: never printed, zeroized on drop, compared in constant time.

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A secret byte string (PIN value, key material). `Debug` prints only its length.
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl PartialEq for Secret {
    /// Constant time in the contents (the length is not secret).
    fn eq(&self, other: &Self) -> bool {
        ct_eq(&self.0, &other.0)
    }
}

impl Eq for Secret {}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

/// Constant-time equality of two byte strings. Lengths are compared too, without an early return.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let same_len = (a.len() as u64).ct_eq(&(b.len() as u64));
    let n = a.len().max(b.len());
    let mut diff = subtle::Choice::from(1u8);
    for i in 0..n {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0xFF);
        diff &= x.ct_eq(&y);
    }
    (same_len & diff).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_contents_and_eq_compares_all_bytes() {
        let s = Secret::new(b"123456".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(6 bytes)");
        assert_eq!(s, Secret::new(b"123456".to_vec()));
        assert_ne!(s, Secret::new(b"123457".to_vec()));
        assert_ne!(s, Secret::new(b"12345".to_vec()));
        assert!(!ct_eq(b"", b"\xFF"));
        assert!(ct_eq(b"", b""));
    }
}
