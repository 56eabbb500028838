//! Layer one: bytes → a typed [`PivCommand`] that already obeys the spec (valid references, well-formed
//! TLV, right lengths). Handlers (layer two) enforce policy: PIN, management key, slot contents.
//!
//! Refusals chosen here: unknown INS `6D 00`, bad P1/P2 `6A 86`, unknown PIN reference `6A 88`,
//! malformed data `6A 80`, a data field where none belongs (or missing) `67 00`.
//!
//! This layer sees only card-os's public API and the `piv-types` vocabulary; the handlers (`keys`, `pin`,
//! `mgmt`, `objects`, `yubico`) import it, never the reverse.

mod auth;
mod secret;

pub use auth::{MgmtStep, SlotOp, Template};
pub use secret::{KeyBytes, PaddedPin, PrivateKeyImport, RsaCrt};

use card_os::apdu::{tlv, Command};
use card_os::CardError;
use piv_types::{
    ins, p, tag, KeyAlgorithm, KeySlot, ManagementAlgorithm, ObjectId, PinPolicy, PinReference,
    TouchPolicy, PIN_FIELD_LEN,
};

/// The asymmetric algorithms this card implements; the parser refuses the others.
pub const SUPPORTED_KEY_ALGORITHMS: &[KeyAlgorithm] = &[
    KeyAlgorithm::Rsa1024,
    KeyAlgorithm::Rsa2048,
    KeyAlgorithm::Rsa3072,
    KeyAlgorithm::Rsa4096,
    KeyAlgorithm::EccP256,
    KeyAlgorithm::EccP384,
    KeyAlgorithm::Ed25519,
    KeyAlgorithm::X25519,
];

/// SP 800-78 gives 3-key Triple DES a second identifier, `00`; OpenSC asks for a 9B challenge with it.
const ALG_TRIPLE_DES_ALIAS: u8 = 0x00;
/// SET MANAGEMENT KEY data: `alg, 9B, len, key`.
const SET_MGMT_KEY_REFERENCE: u8 = p::MANAGEMENT_KEY;

/// What VERIFY asks for.
#[derive(Debug)]
pub enum VerifyAction {
    Check(PaddedPin),
    Status,
    LogOut,
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
        algorithm: KeyAlgorithm,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    },
    /// GENERAL AUTHENTICATE with the management key (9B), P1 naming its algorithm.
    MgmtAuth {
        alg: ManagementAlgorithm,
        step: MgmtStep,
    },
    /// GENERAL AUTHENTICATE with a slot's private key, P1 naming its algorithm.
    SlotAuth {
        slot: KeySlot,
        alg: KeyAlgorithm,
        op: SlotOp,
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
        algorithm: KeyAlgorithm,
        private: PrivateKeyImport,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
    },
}

fn p1p2(command: &Command, expected: [u8; 2]) -> Result<(), CardError> {
    if [command.p1, command.p2] == expected {
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
    KeySlot::user_from_reference(reference).ok_or(CardError::IncorrectP1P2)
}

/// The PIN or PUK in P2: `6A 88` for the global PIN (`00`), which this card does not have; `6A 86` for
/// anything else.
fn pin_reference(p2: u8) -> Result<PinReference, CardError> {
    match PinReference::from_reference(p2) {
        Some(reference) => Ok(reference),
        None if p2 == PinReference::GLOBAL_PIN => Err(CardError::ReferenceNotFound),
        None => Err(CardError::IncorrectP1P2),
    }
}

/// An algorithm this card implements, or `refusal`.
fn supported_key_algorithm(id: u8, refusal: CardError) -> Result<KeyAlgorithm, CardError> {
    KeyAlgorithm::from_id(id)
        .filter(|alg| SUPPORTED_KEY_ALGORITHMS.contains(alg))
        .ok_or(refusal)
}

/// The management key's algorithm in P1 of GENERAL AUTHENTICATE (`00` is 3DES too); `6A 86` otherwise.
fn management_algorithm(p1: u8) -> Result<ManagementAlgorithm, CardError> {
    match p1 {
        ALG_TRIPLE_DES_ALIAS => Ok(ManagementAlgorithm::TripleDes),
        id => ManagementAlgorithm::from_id(id).ok_or(CardError::IncorrectP1P2),
    }
}

/// Reads the optional `AA 01 p` / `AB 01 t` policy TLVs.
fn policies(items: &[tlv::Tlv<'_>], slot: KeySlot) -> Result<(PinPolicy, TouchPolicy), CardError> {
    let mut pin = PinPolicy::Default;
    let mut touch = TouchPolicy::Default;
    for item in items {
        match (item.tag.0, item.value) {
            (tag::PIN_POLICY, [p]) => {
                pin = PinPolicy::from_byte(*p).ok_or(CardError::InvalidData)?
            }
            (tag::TOUCH_POLICY, [t]) => {
                touch = TouchPolicy::from_byte(*t).ok_or(CardError::InvalidData)?
            }
            _ => return Err(CardError::InvalidData),
        }
    }
    Ok((pin.resolve(slot), touch.resolve()))
}

impl PivCommand {
    /// Whether the command reads, replaces or signs with the card's attestation identity, which is
    /// made at its first use (`yubico::attest`).
    pub fn uses_attestation_identity(&self) -> bool {
        match self {
            PivCommand::GetData(object) | PivCommand::PutData { object, .. } => {
                *object == ObjectId::ATTESTATION_CERT
            }
            PivCommand::GetMetadata(MetadataTarget::Slot(slot)) => *slot == KeySlot::Attestation,
            PivCommand::Attest(_) => true,
            _ => false,
        }
    }

    /// Parses one whole command. The class has been checked by the caller.
    pub fn parse(command: &Command) -> Result<Self, CardError> {
        match command.ins {
            ins::VERIFY => Self::verify(command),
            ins::CHANGE_REFERENCE => {
                if command.p1 != 0 {
                    return Err(CardError::IncorrectP1P2);
                }
                let reference = pin_reference(command.p2)?;
                let (old, new) = two_pins(command)?;
                Ok(PivCommand::ChangeReference {
                    reference,
                    old,
                    new,
                })
            }
            ins::RESET_RETRY_COUNTER => {
                p1p2(command, [0x00, PinReference::Pin.reference()])?;
                let (puk, new_pin) = two_pins(command)?;
                Ok(PivCommand::ResetRetryCounter { puk, new_pin })
            }
            ins::GET_DATA => {
                p1p2(command, p::DATA_OBJECTS)?;
                let data = with_data(command)?;
                let id = tlv::expect(data, tag::TAG_LIST)?;
                Ok(PivCommand::GetData(
                    ObjectId::from_tag_bytes(id).ok_or(CardError::NotFound)?,
                ))
            }
            ins::PUT_DATA => Self::put_data(command),
            ins::GENERATE_ASYMMETRIC => Self::generate(command),
            ins::GENERAL_AUTHENTICATE => Self::authenticate(command),
            ins::GET_VERSION => {
                p1p2(command, [0, 0])?;
                no_data(command)?;
                Ok(PivCommand::GetVersion)
            }
            ins::GET_SERIAL => {
                p1p2(command, [0, 0])?;
                no_data(command)?;
                Ok(PivCommand::GetSerial)
            }
            ins::SET_MANAGEMENT_KEY => Self::set_management_key(command),
            ins::RESET => {
                p1p2(command, [0, 0])?;
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
                    p::MANAGEMENT_KEY => MetadataTarget::Management,
                    other => match PinReference::from_reference(other) {
                        Some(reference) => MetadataTarget::Pin(reference),
                        None => MetadataTarget::Slot(
                            KeySlot::from_reference(other).ok_or(CardError::ReferenceNotFound)?,
                        ),
                    },
                };
                Ok(PivCommand::GetMetadata(target))
            }
            ins::MOVE_KEY => {
                no_data(command)?;
                let from = user_slot(command.p2)?;
                let to = match command.p1 {
                    p::MOVE_KEY_DELETE => None,
                    other => Some(user_slot(other)?),
                };
                Ok(PivCommand::MoveKey { to, from })
            }
            ins::IMPORT_KEY => Self::import(command),
            _ => Err(CardError::InsNotSupported),
        }
    }

    fn verify(command: &Command) -> Result<Self, CardError> {
        if !matches!(command.p1, 0x00 | p::VERIFY_LOG_OUT) {
            return Err(CardError::IncorrectP1P2);
        }
        let reference = pin_reference(command.p2)?;
        let action = match (command.p1, command.data.len()) {
            (0x00, 0) => VerifyAction::Status,
            (0x00, _) => VerifyAction::Check(PaddedPin::from_field(&command.data)?),
            (p::VERIFY_LOG_OUT, 0) => VerifyAction::LogOut,
            (p::VERIFY_LOG_OUT, _) => return Err(CardError::WrongLength),
            _ => return Err(CardError::IncorrectP1P2),
        };
        Ok(PivCommand::Verify { reference, action })
    }

    fn put_data(command: &Command) -> Result<Self, CardError> {
        p1p2(command, p::DATA_OBJECTS)?;
        let data = with_data(command)?;
        let items = tlv::parse_all(data)?;
        let [id, value] = items.as_slice() else {
            return Err(CardError::InvalidData);
        };
        if id.tag.0 != tag::TAG_LIST {
            return Err(CardError::InvalidData);
        }
        let object = ObjectId::from_tag_bytes(id.value).ok_or(CardError::InvalidData)?;
        if object == ObjectId::DISCOVERY || value.tag.0 != tag::DATA {
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
        let template = tlv::expect(with_data(command)?, tag::GENERATE_CONTROL)?;
        let items = tlv::parse_all(template)?;
        let Some((algorithm, rest)) = items.split_first() else {
            return Err(CardError::InvalidData);
        };
        let algorithm = match (algorithm.tag.0, algorithm.value) {
            (tag::ALGORITHM, [id]) => supported_key_algorithm(*id, CardError::InvalidData)?,
            _ => return Err(CardError::InvalidData),
        };
        let (pin_policy, touch_policy) = policies(rest, slot)?;
        Ok(PivCommand::Generate {
            slot,
            algorithm,
            pin_policy,
            touch_policy,
        })
    }

    /// GENERAL AUTHENTICATE: the key in P2 (`6A 86`), the template (`6A 80`), the algorithm in P1
    /// (`6A 86`), then the template's items for that algorithm (`6A 80`).
    fn authenticate(command: &Command) -> Result<Self, CardError> {
        let slot = match command.p2 {
            p::MANAGEMENT_KEY => None,
            other => Some(user_slot(other)?),
        };
        let template = Template::parse(with_data(command)?)?;
        match slot {
            None => {
                let alg = management_algorithm(command.p1)?;
                let step = template.mgmt_step(alg)?;
                Ok(PivCommand::MgmtAuth { alg, step })
            }
            Some(slot) => {
                let alg = supported_key_algorithm(command.p1, CardError::IncorrectP1P2)?;
                let op = template.slot_op(alg)?;
                Ok(PivCommand::SlotAuth { slot, alg, op })
            }
        }
    }

    fn set_management_key(command: &Command) -> Result<Self, CardError> {
        let touch_required = match [command.p1, command.p2] {
            p::SET_MGMT_KEY => false,
            p::SET_MGMT_KEY_TOUCH => true,
            _ => return Err(CardError::IncorrectP1P2),
        };
        let data = with_data(command)?;
        let [alg, reference, len, key @ ..] = data else {
            return Err(CardError::InvalidData);
        };
        let algorithm = ManagementAlgorithm::from_id(*alg).ok_or(CardError::InvalidData)?;
        if *reference != SET_MGMT_KEY_REFERENCE
            || usize::from(*len) != key.len()
            || key.len() != algorithm.key_len()
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
        let algorithm = supported_key_algorithm(command.p1, CardError::InvalidData)?;
        let items = tlv::parse_all(with_data(command)?)?;
        let (private, rest) = match algorithm.rsa_modulus_len() {
            None => {
                let Some((scalar, rest)) = items.split_first() else {
                    return Err(CardError::InvalidData);
                };
                let expected_tag = match algorithm {
                    KeyAlgorithm::Ed25519 => tag::ED25519_PRIVATE,
                    KeyAlgorithm::X25519 => tag::X25519_PRIVATE,
                    _ => tag::EC_PRIVATE,
                };
                if scalar.tag.0 != expected_tag
                    || Some(scalar.value.len()) != algorithm.scalar_len()
                {
                    return Err(CardError::InvalidData);
                }
                (PrivateKeyImport::Ec(KeyBytes::new(scalar.value)), rest)
            }
            Some(modulus_len) => {
                let [p, q, dp, dq, qinv, rest @ ..] = items.as_slice() else {
                    return Err(CardError::InvalidData);
                };
                // In this order, each a non-empty integer of at most half the modulus length.
                let part = |item: &tlv::Tlv<'_>, expected: u32| {
                    if item.tag.0 == expected && (1..=modulus_len / 2).contains(&item.value.len()) {
                        Ok(KeyBytes::new(item.value))
                    } else {
                        Err(CardError::InvalidData)
                    }
                };
                let crt = RsaCrt {
                    p: part(p, tag::RSA_PRIME_P)?,
                    q: part(q, tag::RSA_PRIME_Q)?,
                    dp: part(dp, tag::RSA_EXPONENT_P)?,
                    dq: part(dq, tag::RSA_EXPONENT_Q)?,
                    qinv: part(qinv, tag::RSA_COEFFICIENT)?,
                };
                (PrivateKeyImport::Rsa(crt), rest)
            }
        };
        let (pin_policy, touch_policy) = policies(rest, slot)?;
        Ok(PivCommand::ImportKey {
            slot,
            algorithm,
            private,
            pin_policy,
            touch_policy,
        })
    }
}

/// `old8 ‖ new8` of CHANGE REFERENCE and RESET RETRY COUNTER.
fn two_pins(command: &Command) -> Result<(PaddedPin, PaddedPin), CardError> {
    if command.data.len() != 2 * PIN_FIELD_LEN {
        return Err(CardError::InvalidData);
    }
    let (a, b) = command.data.split_at(PIN_FIELD_LEN);
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
        assert_eq!(
            sw(parse("0047009A05AC03800199")),
            0x6A80,
            "no such algorithm"
        );
        assert!(parse("0047009A05AC038001E0").is_ok(), "Ed25519");
        assert!(parse("0047009A05AC03800107").is_ok(), "RSA 2048");
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
                algorithm: KeyAlgorithm::EccP256,
                pin_policy: PinPolicy::Always,
                touch_policy: TouchPolicy::Always
            }
        ));
        assert!(matches!(
            parse("0047009C05AC03800111").unwrap(),
            PivCommand::Generate {
                slot: KeySlot::Signature,
                algorithm: KeyAlgorithm::EccP256,
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
        assert!(matches!(
            pin_reference(0x00),
            Err(CardError::ReferenceNotFound)
        ));
        assert!(matches!(pin_reference(0x82), Err(CardError::IncorrectP1P2)));
    }

    #[test]
    fn general_authenticate_is_typed_by_its_key() {
        assert!(matches!(
            parse("0087009B047C028000").unwrap(),
            PivCommand::MgmtAuth {
                alg: ManagementAlgorithm::TripleDes,
                step: MgmtStep::WitnessRequest
            }
        ));
        assert!(matches!(
            parse("00870C9B047C028100").unwrap(),
            PivCommand::MgmtAuth {
                alg: ManagementAlgorithm::Aes256,
                step: MgmtStep::ChallengeRequest
            }
        ));
        // An AES-128 response must be one 16-byte block.
        let external = format!("0087089B147C128210{}", "00".repeat(16));
        assert!(matches!(
            parse(&external).unwrap(),
            PivCommand::MgmtAuth {
                step: MgmtStep::ExternalResponse { .. },
                ..
            }
        ));
        let short = format!("0087089B0C7C0A8208{}", "00".repeat(8));
        assert_eq!(sw(parse(&short)), 0x6A80);
        // Unknown algorithm for 9B; a slot operation on 9B; a 9B step on a slot.
        assert_eq!(sw(parse("0087079B047C028000")), 0x6A86);
        assert_eq!(sw(parse("0087039B077C0582008101AA")), 0x6A80);
        assert_eq!(sw(parse("0087119A047C028000")), 0x6A80);
        let signed = parse("0087119A077C0582008101AA").unwrap();
        assert!(matches!(
            signed,
            PivCommand::SlotAuth {
                slot: KeySlot::Authentication,
                alg: KeyAlgorithm::EccP256,
                op: SlotOp::Sign { .. }
            }
        ));
        // RSA takes exactly one modulus-sized block; P1 names an algorithm this card has, or 6A 86.
        assert_eq!(sw(parse("0087079A077C0582008101AA")), 0x6A80);
        let rsa_block =
            format!("0087079A00010A 7C820106 8200 81820100{}", "AA".repeat(256)).replace(' ', "");
        assert!(matches!(
            parse(&rsa_block).unwrap(),
            PivCommand::SlotAuth {
                alg: KeyAlgorithm::Rsa2048,
                op: SlotOp::Sign { .. },
                ..
            }
        ));
        assert_eq!(
            sw(parse("00879A9A077C0582008101AA")),
            0x6A86,
            "no such algorithm"
        );
        assert!(
            parse("0087E09A077C0582008101AA").is_ok(),
            "Ed25519 signs a message"
        );
        assert_eq!(
            sw(parse("0087E19A077C0582008101AA")),
            0x6A80,
            "X25519 does not sign"
        );
        assert!(matches!(
            parse("0087149A077C0582008101AA").unwrap(),
            PivCommand::SlotAuth {
                alg: KeyAlgorithm::EccP384,
                op: SlotOp::Sign { .. },
                ..
            }
        ));
        let too_long = format!("0087149A377C3582008131{}", "AA".repeat(49));
        assert_eq!(sw(parse(&too_long)), 0x6A80);
        // ECDH with a point of the wrong length for P-256.
        assert_eq!(sw(parse("0087119A087C06820085020401")), 0x6A80);
    }
}
