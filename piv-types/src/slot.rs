//! Key references and policies as types: an invalid slot or policy byte cannot be represented.

/// An asymmetric key slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    /// `9A` PIV authentication.
    Authentication,
    /// `9C` digital signature.
    Signature,
    /// `9D` key management.
    KeyManagement,
    /// `9E` card authentication.
    CardAuthentication,
    /// `82`–`95` retired key management.
    Retired(Retired),
    /// `F9` the card's attestation key.
    Attestation,
}

/// A retired key slot number, 1 to 20 (key references `82` to `95`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Retired(u8);

impl Retired {
    pub fn number(self) -> u8 {
        self.0
    }
}

impl KeySlot {
    pub fn from_reference(reference: u8) -> Option<Self> {
        Some(match reference {
            0x9A => KeySlot::Authentication,
            0x9C => KeySlot::Signature,
            0x9D => KeySlot::KeyManagement,
            0x9E => KeySlot::CardAuthentication,
            0x82..=0x95 => KeySlot::Retired(Retired(reference - 0x81)),
            0xF9 => KeySlot::Attestation,
            _ => return None,
        })
    }

    /// A slot that holds a user key (every slot but `F9`).
    pub fn user_from_reference(reference: u8) -> Option<Self> {
        Self::from_reference(reference).filter(|slot| *slot != KeySlot::Attestation)
    }

    pub fn reference(self) -> u8 {
        match self {
            KeySlot::Authentication => 0x9A,
            KeySlot::Signature => 0x9C,
            KeySlot::KeyManagement => 0x9D,
            KeySlot::CardAuthentication => 0x9E,
            KeySlot::Retired(r) => 0x81 + r.0,
            KeySlot::Attestation => 0xF9,
        }
    }

    /// Every slot that holds a user key (not F9).
    pub fn user_slots() -> impl Iterator<Item = KeySlot> {
        [0x9A, 0x9C, 0x9D, 0x9E]
            .into_iter()
            .chain(0x82..=0x95)
            .filter_map(KeySlot::from_reference)
    }
}

impl std::fmt::Display for KeySlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:02X}", self.reference())
    }
}

/// PIN policy (YubiKey encoding). `Default` appears only on the wire; stored keys hold a resolved policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinPolicy {
    Default = 0,
    Never = 1,
    Once = 2,
    Always = 3,
}

impl PinPolicy {
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => PinPolicy::Default,
            1 => PinPolicy::Never,
            2 => PinPolicy::Once,
            3 => PinPolicy::Always,
            _ => return None,
        })
    }

    pub fn byte(self) -> u8 {
        self as u8
    }

    /// The slot's default for `Default`: 9C always, 9E never, the others once.
    pub fn resolve(self, slot: KeySlot) -> Self {
        match (self, slot) {
            (PinPolicy::Default, KeySlot::Signature) => PinPolicy::Always,
            (PinPolicy::Default, KeySlot::CardAuthentication | KeySlot::Attestation) => {
                PinPolicy::Never
            }
            (PinPolicy::Default, _) => PinPolicy::Once,
            (other, _) => other,
        }
    }
}

/// Touch policy (YubiKey encoding). Recorded and reported; a virtual card has no button.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TouchPolicy {
    Default = 0,
    Never = 1,
    Always = 2,
    Cached = 3,
}

impl TouchPolicy {
    pub fn from_byte(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => TouchPolicy::Default,
            1 => TouchPolicy::Never,
            2 => TouchPolicy::Always,
            3 => TouchPolicy::Cached,
            _ => return None,
        })
    }

    pub fn byte(self) -> u8 {
        self as u8
    }

    /// Every slot's default is "never".
    pub fn resolve(self) -> Self {
        match self {
            TouchPolicy::Default => TouchPolicy::Never,
            other => other,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn references_round_trip() {
        for r in 0..=255u8 {
            if let Some(slot) = KeySlot::from_reference(r) {
                assert_eq!(slot.reference(), r);
            }
        }
        assert_eq!(KeySlot::user_slots().count(), 24);
        assert!(KeySlot::from_reference(0x9B).is_none());
        assert!(KeySlot::from_reference(0x96).is_none());
        assert!(KeySlot::user_from_reference(0xF9).is_none());
        assert_eq!(
            PinPolicy::Default.resolve(KeySlot::Signature),
            PinPolicy::Always
        );
        assert_eq!(
            PinPolicy::Never.resolve(KeySlot::Signature),
            PinPolicy::Never
        );
        assert_eq!(KeySlot::Signature.to_string(), "9C");
        for byte in 0..=3 {
            assert_eq!(PinPolicy::from_byte(byte).unwrap().byte(), byte);
            assert_eq!(TouchPolicy::from_byte(byte).unwrap().byte(), byte);
        }
        assert!(PinPolicy::from_byte(4).is_none());
    }
}
