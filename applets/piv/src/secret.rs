//! Secret key material inside commands: never printed, zeroized on drop.

use zeroize::{Zeroize, ZeroizeOnDrop};

/// Raw key bytes from the host (a management key, an imported private scalar).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes(Vec<u8>);

impl KeyBytes {
    pub fn new(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyBytes({} bytes)", self.0.len())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", super::KeyBytes::new(&[1, 2, 3])),
            "KeyBytes(3 bytes)"
        );
    }
}
