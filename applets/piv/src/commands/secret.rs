//! Secrets inside commands, in their wire form: never printed, zeroized on drop.

use card_os::CardError;
use piv_types::PIN_FIELD_LEN;
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

/// The private key of an IMPORT KEY.
#[derive(Debug)]
pub enum PrivateKeyImport {
    /// `06 L d`: a curve's private scalar, exactly the scalar length.
    Ec(KeyBytes),
    /// `01 p 02 q 03 dP 04 dQ 05 qInv`: an RSA key in CRT form (the exponent is 65 537).
    Rsa(RsaCrt),
}

/// An RSA private key in CRT form, each value at most half the modulus length.
#[derive(Debug)]
pub struct RsaCrt {
    pub p: KeyBytes,
    pub q: KeyBytes,
    pub dp: KeyBytes,
    pub dq: KeyBytes,
    pub qinv: KeyBytes,
}

/// An 8-byte PIN field, as sent: the value padded with `FF`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PaddedPin([u8; PIN_FIELD_LEN]);

impl std::fmt::Debug for PaddedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaddedPin(<secret>)")
    }
}

/// The padding byte after a PIN shorter than the field.
const PAD: u8 = 0xFF;

impl PaddedPin {
    /// The field of a VERIFY: exactly 8 bytes, else `6A 80` (as a YubiKey answers).
    pub fn from_field(bytes: &[u8]) -> Result<Self, CardError> {
        let field: [u8; PIN_FIELD_LEN] = bytes.try_into().map_err(|_| CardError::InvalidData)?;
        Ok(Self(field))
    }

    /// Pads a value of up to 8 bytes (longer values are cut; callers validate first).
    pub fn pad(value: &[u8]) -> Self {
        let mut field = [PAD; PIN_FIELD_LEN];
        for (dst, src) in field.iter_mut().zip(value) {
            *dst = *src;
        }
        Self(field)
    }

    /// Whether this is a value a PIN or PUK may be set to: 6 to 8 non-`FF` bytes, then only `FF`.
    pub fn is_well_formed(&self) -> bool {
        let len = self
            .0
            .iter()
            .position(|b| *b == PAD)
            .unwrap_or(PIN_FIELD_LEN);
        len >= 6 && self.0[len..].iter().all(|b| *b == PAD)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key() {
        assert_eq!(
            format!("{:?}", KeyBytes::new(&[1, 2, 3])),
            "KeyBytes(3 bytes)"
        );
    }

    #[test]
    fn padding_rules() {
        assert!(PaddedPin::pad(b"123456").is_well_formed());
        assert!(PaddedPin::pad(b"12345678").is_well_formed());
        assert!(!PaddedPin::pad(b"12345").is_well_formed());
        assert!(
            !PaddedPin::from_field(&[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0x37])
                .unwrap()
                .is_well_formed()
        );
        assert!(PaddedPin::from_field(b"1234567").is_err());
        assert_eq!(
            format!("{:?}", PaddedPin::pad(b"123456")),
            "PaddedPin(<secret>)"
        );
    }
}
