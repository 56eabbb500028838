//! Typed CNS commands: every shape check (CLA, P1-P2, lengths, references) happens here, so the
//! handlers in `lib.rs` decide only on the card's state.

use card_os::apdu::Command;
use card_os::CardError;

use crate::fs::SelectTarget;

/// Instructions (ISO 7816-4 and 7816-8).
pub mod ins {
    pub const SELECT: u8 = 0xA4;
    pub const READ_BINARY: u8 = 0xB0;
    pub const UPDATE_BINARY: u8 = 0xD6;
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE_DATA: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const MANAGE_SECURITY_ENVIRONMENT: u8 = 0x22;
    pub const PERFORM_SECURITY_OPERATION: u8 = 0x2A;
    pub const INTERNAL_AUTHENTICATE: u8 = 0x88;
    pub const GET_CHALLENGE: u8 = 0x84;
    pub const EXTERNAL_AUTHENTICATE: u8 = 0x82;
    pub const GENERATE_KEY_PAIR: u8 = 0x46;
}

/// The PIN references of the CNS (P2 of VERIFY and friends). Bit 8 set ("specific", which
/// OpenSC adds for STIncard masks) names the same PIN.
pub const PIN_REFERENCE: u8 = 0x10;
pub const PUK_REFERENCE: u8 = 0x11;
const REFERENCE_SPECIFIC: u8 = 0x80;

/// The one private key of the card (CNS0), as MSE's `83 01 xx` and GENERATE name it.
pub const KEY_REFERENCE: u8 = 0x01;
/// The security environment OpenSC restores before every MSE SET (`22 F3 03`).
pub const SECURITY_ENVIRONMENT: u8 = 0x03;

/// PIN values travel padded to 8 bytes with `FF` (OpenSC's itacns driver pads so).
pub const PIN_BLOCK_LEN: usize = 8;
const PIN_PAD: u8 = 0xFF;

/// A reference-data object of the card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinRef {
    Pin,
    Puk,
}

/// What a security environment is set up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Digital signature template (`B6`): PSO COMPUTE DIGITAL SIGNATURE.
    Sign,
    /// Confidentiality template (`B8`): PSO DECIPHER.
    Decipher,
    /// Authentication template (`A4`): INTERNAL AUTHENTICATE.
    Authenticate,
}

impl Operation {
    pub fn byte(self) -> u8 {
        match self {
            Operation::Sign => 0xB6,
            Operation::Decipher => 0xB8,
            Operation::Authenticate => 0xA4,
        }
    }

    pub fn from_byte(byte: u8) -> Option<Self> {
        [
            Operation::Sign,
            Operation::Decipher,
            Operation::Authenticate,
        ]
        .into_iter()
        .find(|o| o.byte() == byte)
    }
}

/// SELECT's answer: the FCP template or nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectAnswer {
    Fcp,
    Nothing,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CnsCommand<'a> {
    Select {
        target: SelectTarget<'a>,
        answer: SelectAnswer,
    },
    ReadBinary {
        offset: usize,
        ne: usize,
    },
    UpdateBinary {
        offset: usize,
        data: &'a [u8],
    },
    /// VERIFY; without a value, a status query (`90 00` verified, `63 Cx` not).
    Verify {
        reference: PinRef,
        value: Option<&'a [u8]>,
    },
    /// CHANGE REFERENCE DATA of the PIN or the PUK: old value ‖ new value.
    ChangeReference {
        reference: PinRef,
        old: &'a [u8],
        new: &'a [u8],
    },
    /// CHANGE REFERENCE DATA `01 01`: a new personalization key (new value only: the bureau has
    /// just authenticated with the old one).
    ChangePersonalizationKey {
        new: &'a [u8],
    },
    /// RESET RETRY COUNTER of the PIN with the PUK, and a new PIN (P1 `00`) or the old one kept (P1 `01`).
    UnblockPin {
        puk: &'a [u8],
        new_pin: Option<&'a [u8]>,
    },
    RestoreSecurityEnvironment,
    SetSecurityEnvironment {
        operation: Operation,
    },
    /// PSO COMPUTE DIGITAL SIGNATURE: a whole modulus-sized block (raw), or a DigestInfo the card pads.
    Sign {
        input: &'a [u8],
    },
    /// PSO DECIPHER: the cryptogram after the padding-indicator byte.
    Decipher {
        cryptogram: &'a [u8],
    },
    InternalAuthenticate {
        input: &'a [u8],
    },
    GetChallenge {
        len: usize,
    },
    ExternalAuthenticate {
        cryptogram: &'a [u8],
    },
    /// Generates the card's RSA key of this many bits.
    GenerateKeyPair {
        bits: usize,
    },
}

/// The longest challenge GET CHALLENGE gives.
pub const MAX_CHALLENGE: usize = 256;

impl<'a> CnsCommand<'a> {
    pub fn parse(command: &'a Command) -> Result<Self, CardError> {
        if command.cla != 0x00 {
            return Err(CardError::ClaNotSupported);
        }
        let (p1, p2) = (command.p1, command.p2);
        let data = command.data.as_slice();
        let no_data = |c: CnsCommand<'a>| {
            if data.is_empty() {
                Ok(c)
            } else {
                Err(CardError::WrongLength)
            }
        };
        match command.ins {
            ins::SELECT => Self::select(p1, p2, data),
            ins::READ_BINARY => {
                if p1 & 0x80 != 0 {
                    // Short EF identifiers: not in this card's mask.
                    return Err(CardError::FunctionNotSupported);
                }
                let ne = command.ne().ok_or(CardError::WrongLength)?;
                no_data(CnsCommand::ReadBinary {
                    offset: usize::from(u16::from_be_bytes([p1, p2])),
                    ne,
                })
            }
            ins::UPDATE_BINARY => {
                if p1 & 0x80 != 0 {
                    return Err(CardError::FunctionNotSupported);
                }
                if data.is_empty() {
                    return Err(CardError::WrongLength);
                }
                Ok(CnsCommand::UpdateBinary {
                    offset: usize::from(u16::from_be_bytes([p1, p2])),
                    data,
                })
            }
            ins::VERIFY => {
                if p1 != 0x00 {
                    return Err(CardError::IncorrectP1P2);
                }
                let reference = pin_reference(p2)?;
                let value = if data.is_empty() {
                    None
                } else {
                    Some(pin_value(data)?)
                };
                Ok(CnsCommand::Verify { reference, value })
            }
            ins::CHANGE_REFERENCE_DATA => match (p1, p2) {
                (0x01, crate::PERSONALIZATION_KEY_REFERENCE) => {
                    if data.len() != crate::PERSONALIZATION_KEY_LEN {
                        return Err(CardError::WrongLength);
                    }
                    Ok(CnsCommand::ChangePersonalizationKey { new: data })
                }
                (0x00, _) => {
                    let reference = pin_reference(p2)?;
                    let (old, new) = two_blocks(data)?;
                    Ok(CnsCommand::ChangeReference {
                        reference,
                        old,
                        new,
                    })
                }
                _ => Err(CardError::IncorrectP1P2),
            },
            ins::RESET_RETRY_COUNTER => {
                if pin_reference(p2)? != PinRef::Pin {
                    return Err(CardError::IncorrectP1P2);
                }
                match p1 {
                    0x00 => {
                        let (puk, new_pin) = two_blocks(data)?;
                        Ok(CnsCommand::UnblockPin {
                            puk,
                            new_pin: Some(new_pin),
                        })
                    }
                    0x01 => Ok(CnsCommand::UnblockPin {
                        puk: pin_value(data)?,
                        new_pin: None,
                    }),
                    _ => Err(CardError::IncorrectP1P2),
                }
            }
            ins::MANAGE_SECURITY_ENVIRONMENT => Self::manage_security_environment(p1, p2, data),
            ins::PERFORM_SECURITY_OPERATION => match (p1, p2) {
                (0x9E, 0x9A) if !data.is_empty() => Ok(CnsCommand::Sign { input: data }),
                (0x80, 0x86) => match data.split_first() {
                    // Padding indicator 00: "no further indication" (ISO 7816-8 table 8).
                    Some((0x00, cryptogram)) if !cryptogram.is_empty() => {
                        Ok(CnsCommand::Decipher { cryptogram })
                    }
                    Some(_) => Err(CardError::InvalidData),
                    None => Err(CardError::WrongLength),
                },
                (0x9E, 0x9A) => Err(CardError::WrongLength),
                _ => Err(CardError::IncorrectP1P2),
            },
            ins::INTERNAL_AUTHENTICATE => {
                if p1 != 0x00 || p2 != 0x00 {
                    return Err(CardError::IncorrectP1P2);
                }
                if data.is_empty() {
                    return Err(CardError::WrongLength);
                }
                Ok(CnsCommand::InternalAuthenticate { input: data })
            }
            ins::GET_CHALLENGE => {
                if p1 != 0x00 || p2 != 0x00 {
                    return Err(CardError::IncorrectP1P2);
                }
                let len = command.ne().ok_or(CardError::WrongLength)?;
                if len > MAX_CHALLENGE {
                    return Err(CardError::WrongLength);
                }
                no_data(CnsCommand::GetChallenge { len })
            }
            ins::EXTERNAL_AUTHENTICATE => {
                if p1 != 0x00 || p2 != crate::PERSONALIZATION_KEY_REFERENCE {
                    return Err(CardError::IncorrectP1P2);
                }
                if data.len() != crate::CHALLENGE_LEN {
                    return Err(CardError::WrongLength);
                }
                Ok(CnsCommand::ExternalAuthenticate { cryptogram: data })
            }
            ins::GENERATE_KEY_PAIR => {
                if p1 != 0x00 || p2 != KEY_REFERENCE {
                    return Err(CardError::IncorrectP1P2);
                }
                let bits = match data {
                    [] => 2048,
                    [hi, lo] => usize::from(u16::from_be_bytes([*hi, *lo])),
                    _ => return Err(CardError::WrongLength),
                };
                if !matches!(bits, 1024 | 2048) {
                    return Err(CardError::InvalidData);
                }
                Ok(CnsCommand::GenerateKeyPair { bits })
            }
            _ => Err(CardError::InsNotSupported),
        }
    }

    fn select(p1: u8, p2: u8, data: &'a [u8]) -> Result<Self, CardError> {
        let answer = match p2 {
            0x00 | 0x04 => SelectAnswer::Fcp,
            0x0C => SelectAnswer::Nothing,
            _ => return Err(CardError::IncorrectP1P2),
        };
        let fid = || match data {
            [hi, lo] => Ok(u16::from_be_bytes([*hi, *lo])),
            _ => Err(CardError::WrongLength),
        };
        let target = match p1 {
            0x00 if data.is_empty() => SelectTarget::FileId(None),
            0x00 => SelectTarget::FileId(Some(fid()?)),
            0x01 => SelectTarget::ChildDf(fid()?),
            0x02 => SelectTarget::ChildEf(fid()?),
            0x03 if data.is_empty() => SelectTarget::Parent,
            0x03 => return Err(CardError::WrongLength),
            0x08 => SelectTarget::PathFromMf(data),
            0x09 => SelectTarget::PathFromCurrent(data),
            _ => return Err(CardError::IncorrectP1P2),
        };
        Ok(CnsCommand::Select { target, answer })
    }

    fn manage_security_environment(p1: u8, p2: u8, data: &'a [u8]) -> Result<Self, CardError> {
        match p1 {
            // RESTORE: OpenSC sends it as `00 22 F3 03 00` (the CNS wants a zero byte; OpenSC
            // passes it as Le), so a data field is not required to be absent.
            0xF3 => {
                if p2 != SECURITY_ENVIRONMENT {
                    return Err(CardError::ReferenceNotFound);
                }
                Ok(CnsCommand::RestoreSecurityEnvironment)
            }
            // SET, for computation, decipherment, internal and external authentication.
            0xF1 | 0x41 | 0x81 | 0xC1 => {
                let operation = Operation::from_byte(p2).ok_or(CardError::IncorrectP1P2)?;
                match data {
                    [0x83 | 0x84, 0x01, KEY_REFERENCE] => {
                        Ok(CnsCommand::SetSecurityEnvironment { operation })
                    }
                    [0x83 | 0x84, 0x01, _] => Err(CardError::ReferenceNotFound),
                    _ => Err(CardError::InvalidData),
                }
            }
            _ => Err(CardError::IncorrectP1P2),
        }
    }
}

fn pin_reference(p2: u8) -> Result<PinRef, CardError> {
    match p2 & !REFERENCE_SPECIFIC {
        PIN_REFERENCE => Ok(PinRef::Pin),
        PUK_REFERENCE => Ok(PinRef::Puk),
        _ => Err(CardError::ReferenceNotFound),
    }
}

/// A PIN value: its digits without the `FF` padding; at most one block.
fn pin_value(block: &[u8]) -> Result<&[u8], CardError> {
    if block.is_empty() || block.len() > PIN_BLOCK_LEN {
        return Err(CardError::WrongLength);
    }
    let end = block
        .iter()
        .rposition(|&b| b != PIN_PAD)
        .map_or(0, |i| i + 1);
    let value = &block[..end];
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(CardError::InvalidData);
    }
    Ok(value)
}

/// Two padded PIN blocks (old and new, or PUK and new PIN).
fn two_blocks(data: &[u8]) -> Result<(&[u8], &[u8]), CardError> {
    if data.len() != 2 * PIN_BLOCK_LEN {
        return Err(CardError::WrongLength);
    }
    let (first, second) = data.split_at(PIN_BLOCK_LEN);
    Ok((pin_value(first)?, pin_value(second)?))
}

/// Pads a PIN to a block, as hosts send it.
pub fn pin_block(value: &[u8]) -> [u8; PIN_BLOCK_LEN] {
    let mut block = [PIN_PAD; PIN_BLOCK_LEN];
    let len = value.len().min(PIN_BLOCK_LEN);
    block[..len].copy_from_slice(&value[..len]);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hex_apdu: &str) -> Result<String, String> {
        let bytes = hex::decode(hex_apdu.replace(' ', "")).unwrap();
        let command = Command::from_bytes(&bytes).unwrap();
        CnsCommand::parse(&command)
            .map(|c| format!("{c:?}"))
            .map_err(|e| format!("{:04X}", e.status_word().map_or(0, |s| s.to_u16())))
    }

    #[test]
    fn the_forms_opensc_sends_parse() {
        assert!(parse("00 A4 08 00 04 10 00 10 03 00")
            .unwrap()
            .contains("PathFromMf"));
        assert!(parse("00 A4 00 0C 02 3F 00").unwrap().contains("Nothing"));
        assert!(parse("00 B0 00 00 FF").unwrap().contains("ne: 255"));
        assert!(parse("00 22 F3 03 00").unwrap().contains("Restore"));
        assert!(parse("00 22 F1 B6 03 83 01 01").unwrap().contains("Sign"));
        assert!(parse("00 20 00 90 08 31 32 33 34 35 FF FF FF")
            .unwrap()
            .contains("[49, 50, 51, 52, 53]"));
        assert!(parse("00 20 00 90").unwrap().contains("value: None"));
        assert!(parse("00 2C 00 90 10 3132333435363738 3132333435FFFFFF")
            .unwrap()
            .contains("UnblockPin"));
    }

    #[test]
    fn malformed_commands_get_their_status_word() {
        assert_eq!(parse("80 A4 00 00 02 3F 00"), Err("6E00".into()));
        assert_eq!(parse("00 A4 00 01 02 3F 00"), Err("6A86".into()));
        assert_eq!(parse("00 A4 00 00 03 3F 00 00"), Err("6700".into()));
        assert_eq!(parse("00 B0 81 00 10"), Err("6A81".into()));
        assert_eq!(parse("00 B0 00 00"), Err("6700".into()));
        assert_eq!(parse("00 20 00 92 08 3132333435FFFFFF"), Err("6A88".into()));
        assert_eq!(
            parse("00 20 00 90 09 313233343536373839"),
            Err("6700".into())
        );
        assert_eq!(parse("00 20 00 90 08 31323334FFFF3536"), Err("6A80".into()));
        assert_eq!(parse("00 20 00 90 08 FFFFFFFFFFFFFFFF"), Err("6A80".into()));
        assert_eq!(
            parse("00 24 02 91 10 3132333435363738 3132333435FFFFFF"),
            Err("6A86".into())
        );
        assert_eq!(parse("00 24 01 01 08 0102030405060708"), Err("6700".into()));
        assert_eq!(
            parse("00 24 00 12 10 3132333435363738 3132333435FFFFFF"),
            Err("6A88".into())
        );
        assert_eq!(parse("00 22 F1 B6 03 83 01 02"), Err("6A88".into()));
        assert_eq!(parse("00 22 F1 B7 03 83 01 01"), Err("6A86".into()));
        assert_eq!(parse("00 22 F3 01 00"), Err("6A88".into()));
        assert_eq!(parse("00 2A 80 86 02 02 00"), Err("6A80".into()));
        assert_eq!(parse("00 84 00 00 00 01 01"), Err("6700".into()));
        assert_eq!(parse("00 46 00 01 02 0C 00"), Err("6A80".into()));
        assert_eq!(parse("00 FF 00 00"), Err("6D00".into()));
    }

    #[test]
    fn pin_blocks_round_trip() {
        let block = pin_block(b"12345");
        assert_eq!(block, *b"12345\xFF\xFF\xFF");
        assert_eq!(pin_value(&block).unwrap(), b"12345");
    }
}
