//! PIN and PUK values on the wire, and what a check answers.

use apdu::StatusWord;
use piv_types::PIN_FIELD_LEN;
use zeroize::Zeroizing;

use crate::PivError;

/// A PIN or PUK as it travels: 1 to 8 bytes padded with `FF` to 8 (zeroized on drop, never printed).
pub struct PinValue(Zeroizing<[u8; PIN_FIELD_LEN]>);

impl std::fmt::Debug for PinValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinValue(redacted)")
    }
}

impl PinValue {
    pub fn new(value: &str) -> Result<Self, PivError> {
        if value.is_empty() || value.len() > PIN_FIELD_LEN {
            return Err(PivError::BadLength {
                what: "a PIN or PUK",
                expected: format!("1 to {PIN_FIELD_LEN} bytes"),
                got: value.len(),
            });
        }
        let mut field = Zeroizing::new([0xFF; PIN_FIELD_LEN]);
        field[..value.len()].copy_from_slice(value.as_bytes());
        Ok(Self(field))
    }

    pub(crate) fn field(&self) -> &[u8] {
        &self.0[..]
    }
}

/// What a PIN or PUK check (or a status query) answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    /// `90 00`.
    Verified,
    /// `63 Cx`: wrong (or, for a status query, not verified yet); `x` tries left.
    Wrong { tries_left: u8 },
    /// `69 83`: blocked.
    Blocked,
}

impl PinOutcome {
    /// The outcome a status word means, or the status word back if it is no PIN answer.
    pub fn from_status(sw: StatusWord) -> Result<Self, StatusWord> {
        match (sw.sw1(), sw.sw2()) {
            (0x90, 0x00) => Ok(PinOutcome::Verified),
            (0x63, x) if x & 0xF0 == 0xC0 => Ok(PinOutcome::Wrong {
                tries_left: x & 0x0F,
            }),
            (0x69, 0x83) => Ok(PinOutcome::Blocked),
            _ => Err(sw),
        }
    }

    pub fn status_word(self) -> StatusWord {
        match self {
            PinOutcome::Verified => StatusWord::SUCCESS,
            PinOutcome::Wrong { tries_left } => StatusWord::from_bytes(0x63, 0xC0 | tries_left),
            PinOutcome::Blocked => StatusWord::from_bytes(0x69, 0x83),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_padded_and_outcomes_round_trip() {
        assert_eq!(
            PinValue::new("1234").unwrap().field(),
            [0x31, 0x32, 0x33, 0x34, 0xFF, 0xFF, 0xFF, 0xFF]
        );
        assert!(PinValue::new("123456789").is_err());
        assert!(PinValue::new("").is_err());
        assert_eq!(
            format!("{:?}", PinValue::new("1234").unwrap()),
            "PinValue(redacted)"
        );
        for outcome in [
            PinOutcome::Verified,
            PinOutcome::Wrong { tries_left: 2 },
            PinOutcome::Blocked,
        ] {
            assert_eq!(PinOutcome::from_status(outcome.status_word()), Ok(outcome));
        }
        let other = StatusWord::from_bytes(0x69, 0x82);
        assert_eq!(PinOutcome::from_status(other), Err(other));
    }
}
