//! Algorithm identifiers (SP 800-78-4 table 6-2 and the YubiKey additions).

/// The management key's (9B) symmetric algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManagementAlgorithm {
    TripleDes,
    Aes128,
    Aes192,
    Aes256,
}

impl ManagementAlgorithm {
    /// The PIV algorithm identifier (`03`, `08`, `0A`, `0C`).
    pub const fn id(self) -> u8 {
        match self {
            ManagementAlgorithm::TripleDes => 0x03,
            ManagementAlgorithm::Aes128 => 0x08,
            ManagementAlgorithm::Aes192 => 0x0A,
            ManagementAlgorithm::Aes256 => 0x0C,
        }
    }

    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0x03 => Some(ManagementAlgorithm::TripleDes),
            0x08 => Some(ManagementAlgorithm::Aes128),
            0x0A => Some(ManagementAlgorithm::Aes192),
            0x0C => Some(ManagementAlgorithm::Aes256),
            _ => None,
        }
    }

    pub const fn key_len(self) -> usize {
        match self {
            ManagementAlgorithm::TripleDes | ManagementAlgorithm::Aes192 => 24,
            ManagementAlgorithm::Aes128 => 16,
            ManagementAlgorithm::Aes256 => 32,
        }
    }

    pub const fn block_len(self) -> usize {
        match self {
            ManagementAlgorithm::TripleDes => 8,
            _ => 16,
        }
    }
}

/// An asymmetric key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyAlgorithm {
    Rsa1024,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccP256,
    EccP384,
    Ed25519,
    X25519,
}

impl KeyAlgorithm {
    pub const fn id(self) -> u8 {
        match self {
            KeyAlgorithm::Rsa1024 => 0x06,
            KeyAlgorithm::Rsa2048 => 0x07,
            KeyAlgorithm::Rsa3072 => 0x05,
            KeyAlgorithm::Rsa4096 => 0x16,
            KeyAlgorithm::EccP256 => 0x11,
            KeyAlgorithm::EccP384 => 0x14,
            KeyAlgorithm::Ed25519 => 0xE0,
            KeyAlgorithm::X25519 => 0xE1,
        }
    }

    pub const fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            0x06 => KeyAlgorithm::Rsa1024,
            0x07 => KeyAlgorithm::Rsa2048,
            0x05 => KeyAlgorithm::Rsa3072,
            0x16 => KeyAlgorithm::Rsa4096,
            0x11 => KeyAlgorithm::EccP256,
            0x14 => KeyAlgorithm::EccP384,
            0xE0 => KeyAlgorithm::Ed25519,
            0xE1 => KeyAlgorithm::X25519,
            _ => return None,
        })
    }

    /// RSA modulus length in bytes, `None` for the curves.
    pub const fn rsa_modulus_len(self) -> Option<usize> {
        match self {
            KeyAlgorithm::Rsa1024 => Some(128),
            KeyAlgorithm::Rsa2048 => Some(256),
            KeyAlgorithm::Rsa3072 => Some(384),
            KeyAlgorithm::Rsa4096 => Some(512),
            _ => None,
        }
    }

    /// The scalar (private key) length of a curve, `None` for RSA.
    pub const fn scalar_len(self) -> Option<usize> {
        match self {
            KeyAlgorithm::EccP256 | KeyAlgorithm::Ed25519 | KeyAlgorithm::X25519 => Some(32),
            KeyAlgorithm::EccP384 => Some(48),
            _ => None,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in 0..=255u8 {
            if let Some(alg) = ManagementAlgorithm::from_id(id) {
                assert_eq!(alg.id(), id);
                assert!(alg.key_len() >= 16 && alg.block_len() >= 8);
            }
            if let Some(alg) = KeyAlgorithm::from_id(id) {
                assert_eq!(alg.id(), id);
                assert!(alg.rsa_modulus_len().is_some() != alg.scalar_len().is_some());
            }
        }
        assert_eq!(KeyAlgorithm::from_id(0x11), Some(KeyAlgorithm::EccP256));
        assert_eq!(ManagementAlgorithm::from_id(0x0A).unwrap().key_len(), 24);
    }
}
