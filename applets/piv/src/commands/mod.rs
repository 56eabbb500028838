//! Layer one: bytes → a typed [`PivCommand`] that already obeys the spec (valid references, well-formed
//! TLV, right lengths). Handlers (layer two) enforce policy: PIN, management key, slot contents.
//!
//! Status words chosen here: unknown INS `6D 00`, bad P1/P2 `6A 86`, unknown PIN reference `6A 88`,
//! malformed data `6A 80`, a data field where none belongs (or missing) `67 00`.

mod auth;

pub use auth::AuthRequest;

use card_os::apdu::{tlv, Command};
use card_os::CardError;

use crate::keys::{KeySlot, PinPolicy, TouchPolicy};
use crate::objects::ObjectId;
use crate::params::ManagementAlgorithm;
use crate::pin::{PaddedPin, PinReference};
use crate::secret::KeyBytes;

/// Instruction bytes, one table.
pub mod ins {
    pub const VERIFY: u8 = 0x20;
    pub const CHANGE_REFERENCE: u8 = 0x24;
    pub const RESET_RETRY_COUNTER: u8 = 0x2C;
    pub const GENERATE_ASYMMETRIC: u8 = 0x47;
    pub const GENERAL_AUTHENTICATE: u8 = 0x87;
    pub const GET_DATA: u8 = 0xCB;
    pub const PUT_DATA: u8 = 0xDB;
    pub const MOVE_KEY: u8 = 0xF6;
    pub const GET_METADATA: u8 = 0xF7;
    pub const GET_SERIAL: u8 = 0xF8;
    pub const ATTEST: u8 = 0xF9;
    pub const SET_PIN_RETRIES: u8 = 0xFA;
    pub const RESET: u8 = 0xFB;
    pub const GET_VERSION: u8 = 0xFD;
    pub const IMPORT_KEY: u8 = 0xFE;
    pub const SET_MANAGEMENT_KEY: u8 = 0xFF;
}

/// P-256, the one asymmetric algorithm this card implements.
pub const ALG_ECC_P256: u8 = 0x11;

/// What VERIFY asks for.
#[derive(Debug)]
pub enum VerifyAction {
    Check(PaddedPin),
    Status,
    LogOut,
}

/// Which key GENERAL AUTHENTICATE addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthKey {
    Management,
    Slot(KeySlot),
}

/// What GET METADATA describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataTarget {
    Pin(PinReference),
    Management,
    Slot(KeySlot),
}

/// A command that already obeys the spec.
#[derive(Debug)]
pub enum PivCommand {
    Verify {
        reference: PinReference,
        action: VerifyAction,
    },
    ChangeReference {
        reference: PinReference,
        old: PaddedPin,
        new: PaddedPin,
    },
    ResetRetryCounter {
        puk: PaddedPin,
        new_pin: PaddedPin,
    },
    GetData(ObjectId),
    /// `value: None` deletes the object.
    PutData {
        object: ObjectId,
        value: Option<Vec<u8>>,
    },
    Generate {
        slot: KeySlot,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    },
    Authenticate {
        algorithm: u8,
        key: AuthKey,
        request: AuthRequest,
    },
    GetVersion,
    GetSerial,
    SetManagementKey {
        algorithm: ManagementAlgorithm,
        key: KeyBytes,
        touch_required: bool,
    },
    Reset,
    SetPinRetries {
        pin: u8,
        puk: u8,
    },
    Attest(KeySlot),
    GetMetadata(MetadataTarget),
    /// `to: None` deletes the key.
    MoveKey {
        to: Option<KeySlot>,
        from: KeySlot,
    },
    ImportKey {
        slot: KeySlot,
        private: KeyBytes,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    },
}

fn p1p2(command: &Command, p1: u8, p2: u8) -> Result<(), CardError> {
    if command.p1 == p1 && command.p2 == p2 {
        Ok(())
    } else {
        Err(CardError::IncorrectP1P2)
    }
}

fn no_data(command: &Command) -> Result<(), CardError> {
    if command.data.is_empty() {
        Ok(())
    } else {
        Err(CardError::WrongLength)
    }
}

fn with_data(command: &Command) -> Result<&[u8], CardError> {
    if command.data.is_empty() {
        Err(CardError::WrongLength)
    } else {
        Ok(&command.data)
    }
}

/// A user key slot from P2 (or P1), `6A 86` when it names none.
fn user_slot(reference: u8) -> Result<KeySlot, CardError> {
    KeySlot::from_reference(reference)
        .filter(|slot| *slot != KeySlot::Attestation)
        .ok_or(CardError::IncorrectP1P2)
}

/// Reads the optional `AA 01 p` / `AB 01 t` policy TLVs.
fn policies(items: &[tlv::Tlv<'_>], slot: KeySlot) -> Result<(PinPolicy, TouchPolicy), CardError> {
    let mut pin = PinPolicy::Default;
    let mut touch = TouchPolicy::Default;
    for item in items {
        match (item.tag.0, item.value) {
            (0xAA, [p]) => pin = PinPolicy::from_byte(*p).ok_or(CardError::InvalidData)?,
            (0xAB, [t]) => touch = TouchPolicy::from_byte(*t).ok_or(CardError::InvalidData)?,
            _ => return Err(CardError::InvalidData),
        }
    }
    Ok((pin.resolve(slot), touch.resolve()))
}

impl PivCommand {
    /// Parses one whole command. The class has been checked by the caller.
    pub fn parse(command: &Command) -> Result<Self, CardError> {
        match command.ins {
            ins::VERIFY => Self::verify(command),
            ins::CHANGE_REFERENCE => {
                if command.p1 != 0 {
                    return Err(CardError::IncorrectP1P2);
                }
                let reference = PinReference::from_p2(command.p2)?;
                let (old, new) = two_pins(command)?;
                Ok(PivCommand::ChangeReference {
                    reference,
                    old,
                    new,
                })
            }
            ins::RESET_RETRY_COUNTER => {
                p1p2(command, 0x00, 0x80)?;
                let (puk, new_pin) = two_pins(command)?;
                Ok(PivCommand::ResetRetryCounter { puk, new_pin })
            }
            ins::GET_DATA => {
                p1p2(command, 0x3F, 0xFF)?;
                let data = with_data(command)?;
                let id = tlv::expect(data, 0x5Cu32)?;
                Ok(PivCommand::GetData(
                    ObjectId::from_tag_bytes(id).ok_or(CardError::NotFound)?,
                ))
            }
            ins::PUT_DATA => Self::put_data(command),
            ins::GENERATE_ASYMMETRIC => Self::generate(command),
            ins::GENERAL_AUTHENTICATE => {
                let key = match command.p2 {
                    0x9B => AuthKey::Management,
                    other => AuthKey::Slot(user_slot(other)?),
                };
                let request = AuthRequest::parse(with_data(command)?)?;
                Ok(PivCommand::Authenticate {
                    algorithm: command.p1,
                    key,
                    request,
                })
            }
            ins::GET_VERSION => {
                p1p2(command, 0, 0)?;
                no_data(command)?;
                Ok(PivCommand::GetVersion)
            }
            ins::GET_SERIAL => {
                p1p2(command, 0, 0)?;
                no_data(command)?;
                Ok(PivCommand::GetSerial)
            }
            ins::SET_MANAGEMENT_KEY => Self::set_management_key(command),
            ins::RESET => {
                p1p2(command, 0, 0)?;
                no_data(command)?;
                Ok(PivCommand::Reset)
            }
            ins::SET_PIN_RETRIES => {
                no_data(command)?;
                if !(1..=15).contains(&command.p1) || !(1..=15).contains(&command.p2) {
                    return Err(CardError::IncorrectP1P2);
                }
                Ok(PivCommand::SetPinRetries {
                    pin: command.p1,
                    puk: command.p2,
                })
            }
            ins::ATTEST => {
                if command.p2 != 0 {
                    return Err(CardError::IncorrectP1P2);
                }
                no_data(command)?;
                Ok(PivCommand::Attest(user_slot(command.p1)?))
            }
            ins::GET_METADATA => {
                if command.p1 != 0 {
                    return Err(CardError::IncorrectP1P2);
                }
                no_data(command)?;
                let target = match command.p2 {
                    0x80 => MetadataTarget::Pin(PinReference::Pin),
                    0x81 => MetadataTarget::Pin(PinReference::Puk),
                    0x9B => MetadataTarget::Management,
                    other => MetadataTarget::Slot(
                        KeySlot::from_reference(other).ok_or(CardError::ReferenceNotFound)?,
                    ),
                };
                Ok(PivCommand::GetMetadata(target))
            }
            ins::MOVE_KEY => {
                no_data(command)?;
                let from = user_slot(command.p2)?;
                let to = match command.p1 {
                    0xFF => None,
                    other => Some(user_slot(other)?),
                };
                Ok(PivCommand::MoveKey { to, from })
            }
            ins::IMPORT_KEY => Self::import(command),
            _ => Err(CardError::InsNotSupported),
        }
    }

    fn verify(command: &Command) -> Result<Self, CardError> {
        if !matches!(command.p1, 0x00 | 0xFF) {
            return Err(CardError::IncorrectP1P2);
        }
        let reference = PinReference::from_p2(command.p2)?;
        let action = match (command.p1, command.data.len()) {
            (0x00, 0) => VerifyAction::Status,
            (0x00, _) => VerifyAction::Check(PaddedPin::from_field(&command.data)?),
            (0xFF, 0) => VerifyAction::LogOut,
            (0xFF, _) => return Err(CardError::WrongLength),
            _ => return Err(CardError::IncorrectP1P2),
        };
        Ok(PivCommand::Verify { reference, action })
    }

    fn put_data(command: &Command) -> Result<Self, CardError> {
        p1p2(command, 0x3F, 0xFF)?;
        let data = with_data(command)?;
        let items = tlv::parse_all(data)?;
        let [id, value] = items.as_slice() else {
            return Err(CardError::InvalidData);
        };
        if id.tag.0 != 0x5C {
            return Err(CardError::InvalidData);
        }
        let object = ObjectId::from_tag_bytes(id.value).ok_or(CardError::InvalidData)?;
        if object == ObjectId::DISCOVERY || value.tag.0 != 0x53 {
            // Discovery is fixed by the applet; every other object is written inside `53`.
            return Err(CardError::InvalidData);
        }
        let value = (!value.value.is_empty()).then(|| value.value.to_vec());
        Ok(PivCommand::PutData { object, value })
    }

    fn generate(command: &Command) -> Result<Self, CardError> {
        if command.p1 != 0 {
            return Err(CardError::IncorrectP1P2);
        }
        let slot = user_slot(command.p2)?;
        let template = tlv::expect(with_data(command)?, 0xACu32)?;
        let items = tlv::parse_all(template)?;
        let Some((algorithm, rest)) = items.split_first() else {
            return Err(CardError::InvalidData);
        };
        if algorithm.tag.0 != 0x80 || algorithm.value != [ALG_ECC_P256] {
            return Err(CardError::InvalidData);
        }
        let (pin_policy, touch_policy) = policies(rest, slot)?;
        Ok(PivCommand::Generate {
            slot,
            pin_policy,
            touch_policy,
        })
    }

    fn set_management_key(command: &Command) -> Result<Self, CardError> {
        let touch_required = match (command.p1, command.p2) {
            (0xFF, 0xFF) => false,
            (0xFF, 0xFE) => true,
            _ => return Err(CardError::IncorrectP1P2),
        };
        let data = with_data(command)?;
        let [alg, reference, len, key @ ..] = data else {
            return Err(CardError::InvalidData);
        };
        let algorithm = ManagementAlgorithm::from_id(*alg).ok_or(CardError::InvalidData)?;
        if *reference != 0x9B || usize::from(*len) != key.len() || key.len() != algorithm.key_len()
        {
            return Err(CardError::InvalidData);
        }
        Ok(PivCommand::SetManagementKey {
            algorithm,
            key: KeyBytes::new(key),
            touch_required,
        })
    }

    fn import(command: &Command) -> Result<Self, CardError> {
        let slot = user_slot(command.p2)?;
        if command.p1 != ALG_ECC_P256 {
            return Err(CardError::InvalidData);
        }
        let items = tlv::parse_all(with_data(command)?)?;
        let Some((private, rest)) = items.split_first() else {
            return Err(CardError::InvalidData);
        };
        if private.tag.0 != 0x06 || private.value.len() != 32 {
            return Err(CardError::InvalidData);
        }
        let (pin_policy, touch_policy) = policies(rest, slot)?;
        Ok(PivCommand::ImportKey {
            slot,
            private: KeyBytes::new(private.value),
            pin_policy,
            touch_policy,
        })
    }
}

/// `old8 ‖ new8` of CHANGE REFERENCE and RESET RETRY COUNTER.
fn two_pins(command: &Command) -> Result<(PaddedPin, PaddedPin), CardError> {
    if command.data.len() != 16 {
        return Err(CardError::InvalidData);
    }
    let (a, b) = command.data.split_at(8);
    Ok((PaddedPin::from_field(a)?, PaddedPin::from_field(b)?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parse(hex: &str) -> Result<PivCommand, CardError> {
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect::<Vec<_>>();
        PivCommand::parse(&Command::from_bytes(&bytes).unwrap())
    }

    fn sw(result: Result<PivCommand, CardError>) -> u16 {
        result.unwrap_err().status_word().unwrap().to_u16()
    }

    #[test]
    fn spec_errors_map_to_one_status_word_each() {
        assert_eq!(sw(parse("00990000")), 0x6D00);
        assert_eq!(sw(parse("00200080053132333435")), 0x6A80);
        assert_eq!(sw(parse("00200182")), 0x6A86);
        assert_eq!(sw(parse("00200000")), 0x6A88);
        assert_eq!(sw(parse("00CB3FFE055C035FC102")), 0x6A86);
        assert_eq!(sw(parse("00CB3FFF045C035FC1")), 0x6A80);
        assert_eq!(sw(parse("00CB3FFF")), 0x6700);
        assert_eq!(sw(parse("00CB3FFF055C035FC1FF")), 0x6A82);
        assert_eq!(sw(parse("0047009A05AC03800107")), 0x6A80);
        assert_eq!(sw(parse("0047009B05AC03800111")), 0x6A86);
        assert_eq!(sw(parse("0047009A08AC06800111AA0109")), 0x6A80);
        assert_eq!(sw(parse("00FD0100")), 0x6A86);
        assert_eq!(sw(parse("00FA0003")), 0x6A86);
        assert_eq!(
            sw(parse("00FFFFFF0403 9B0101".replace(' ', "").as_str())),
            0x6A80
        );
        assert!(parse("00F7008000").is_ok());
        assert_eq!(sw(parse("00F70077")), 0x6A88);
        assert_eq!(sw(parse("00F6FFF9")), 0x6A86);
        assert_eq!(
            sw(parse(
                "00FE079A2206200000000000000000000000000000000000000000000000000000000000000001"
            )),
            0x6A80
        );
    }

    #[test]
    fn typed_commands_come_out() {
        assert!(matches!(
            parse("0047009A0BAC09800111AA0103AB0102").unwrap(),
            PivCommand::Generate {
                slot: KeySlot::Authentication,
                pin_policy: PinPolicy::Always,
                touch_policy: TouchPolicy::Always
            }
        ));
        assert!(matches!(
            parse("0047009C05AC03800111").unwrap(),
            PivCommand::Generate {
                slot: KeySlot::Signature,
                pin_policy: PinPolicy::Always,
                touch_policy: TouchPolicy::Never
            }
        ));
        assert!(matches!(
            parse("00DB3FFF075C035FC105 5300".replace(' ', "").as_str()).unwrap(),
            PivCommand::PutData { value: None, .. }
        ));
        assert!(matches!(
            parse("00208000").unwrap_err(),
            CardError::IncorrectP1P2
        ));
        assert!(matches!(
            parse("0020FF80").unwrap(),
            PivCommand::Verify {
                action: VerifyAction::LogOut,
                ..
            }
        ));
        assert!(matches!(
            parse("00F6FF9A").unwrap(),
            PivCommand::MoveKey {
                to: None,
                from: KeySlot::Authentication
            }
        ));
    }
}
