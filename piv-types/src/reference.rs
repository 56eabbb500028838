//! PIN key references.

/// A PIN key reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PinReference {
    /// `80`: the PIV application PIN.
    Pin,
    /// `81`: the PIN unblocking key.
    Puk,
}

impl PinReference {
    /// The global PIN (`00`) is not a reference this vocabulary knows: cards answer `6A 88` for it.
    pub const GLOBAL_PIN: u8 = 0x00;

    pub fn from_reference(reference: u8) -> Option<Self> {
        match reference {
            0x80 => Some(PinReference::Pin),
            0x81 => Some(PinReference::Puk),
            _ => None,
        }
    }

    pub fn reference(self) -> u8 {
        match self {
            PinReference::Pin => 0x80,
            PinReference::Puk => 0x81,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for reference in [PinReference::Pin, PinReference::Puk] {
            assert_eq!(
                PinReference::from_reference(reference.reference()),
                Some(reference)
            );
        }
        assert_eq!(PinReference::from_reference(PinReference::GLOBAL_PIN), None);
    }
}
