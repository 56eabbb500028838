//! A PIV session on one card: every operation is one typed method, APDUs built from the shared vocabulary.

use apdu::{tlv, Command, Response, StatusWord};
use card_transport::Transport;
use piv_types::{
    aid, ins, p, tag, KeyAlgorithm, KeySlot, ObjectId, PinPolicy, PinReference, TouchPolicy,
};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::unexpected;
use crate::{ManagementKey, PinOutcome, PinValue, PivError, PublicKey};

/// CLA of every PIV command (first interindustry, basic channel).
const CLA: u8 = 0x00;
/// SELECT by DF name, first occurrence.
const SELECT_BY_NAME: u8 = 0x04;
/// Le `00`: up to 256 bytes (more follow behind `61 xx`).
const LE_ANY: usize = apdu::MAX_SHORT_NE;

/// Policies for a key the card generates; `Default` leaves the slot's own default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            pin_policy: PinPolicy::Default,
            touch_policy: TouchPolicy::Default,
        }
    }
}

/// An RSA private key in CRT form for [`PivSession::import_rsa`], each part big-endian.
pub struct RsaCrtParts<'a> {
    pub p: &'a [u8],
    pub q: &'a [u8],
    pub dp: &'a [u8],
    pub dq: &'a [u8],
    pub qinv: &'a [u8],
}

/// The firmware version a YubiKey-compatible card reports (GET VERSION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Version {
    pub major: u8,
    pub minor: u8,
    pub patch: u8,
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// What GET METADATA reports for a slot, the PIN, the PUK or the management key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// `01`: the algorithm id (a [`KeyAlgorithm`] id, a management algorithm id, or `FF` for PIN/PUK).
    pub algorithm: Option<u8>,
    /// `02`: PIN policy and touch policy bytes.
    pub policy: Option<(u8, u8)>,
    /// `03`: `01` generated on the card, `02` imported.
    pub origin: Option<u8>,
    /// `04`: the public key's inner TLVs (`86` point, or `81` modulus and `82` exponent).
    pub public_key: Option<Vec<u8>>,
    /// `05`: whether the PIN, PUK or management key still has its factory value.
    pub is_default: Option<bool>,
    /// `06`: total and remaining tries.
    pub retries: Option<(u8, u8)>,
}

/// A PIV session on one card. [`PivSession::open`] selects the application.
pub struct PivSession<'t> {
    transport: &'t mut dyn Transport,
}

impl<'t> PivSession<'t> {
    /// Selects the PIV application by its 5-byte prefix (as yubico-piv-tool does) and checks that the
    /// answer names the PIV AID.
    pub fn open(transport: &'t mut dyn Transport) -> Result<Self, PivError> {
        let mut session = Self { transport };
        let answer = session.expect_ok(
            "SELECT PIV",
            Command::new(CLA, ins::SELECT, SELECT_BY_NAME, 0x00)
                .with_data(aid::PIV_PREFIX)
                .with_le(LE_ANY)?,
        )?;
        if answer.is_empty() {
            return Err(unexpected("SELECT PIV", "no application property template"));
        }
        Ok(session)
    }

    /// A session on a card whose PIV application is already selected (no SELECT is sent).
    pub fn attach(transport: &'t mut dyn Transport) -> Self {
        Self { transport }
    }

    /// The transport, for commands this client has no method for.
    pub fn transport(&mut self) -> &mut dyn Transport {
        self.transport
    }

    /// One command and its whole answer, whatever the status word.
    pub fn exchange(&mut self, command: &Command) -> Result<Response, PivError> {
        Ok(self.transport.exchange_chained(command)?)
    }

    fn expect_ok(
        &mut self,
        operation: &'static str,
        command: Command,
    ) -> Result<Vec<u8>, PivError> {
        let response = self.exchange(&command)?;
        if response.sw != StatusWord::SUCCESS {
            return Err(PivError::Refused {
                operation,
                sw: response.sw,
            });
        }
        Ok(response.data)
    }

    /// GENERAL AUTHENTICATE with a dynamic authentication template built by `items`.
    fn general_authenticate(
        &mut self,
        operation: &'static str,
        algorithm: u8,
        key_reference: u8,
        items: impl FnOnce(&mut Vec<u8>),
    ) -> Result<Zeroizing<Vec<u8>>, PivError> {
        let command = general_authenticate_command(algorithm, key_reference, items);
        let answer = Zeroizing::new(self.expect_ok(operation, command)?);
        let template =
            tlv::expect(&answer, tag::DYNAMIC_AUTH).map_err(|e| unexpected(operation, e))?;
        Ok(Zeroizing::new(template.to_vec()))
    }

    /// Mutual authentication with the management key (9B): the card proves it knows the key too.
    pub fn authenticate(&mut self, key: &ManagementKey) -> Result<(), PivError> {
        const OP: &str = "GENERAL AUTHENTICATE (management key)";
        let alg = key.algorithm().id();
        let block = key.algorithm().block_len();
        let template = self.general_authenticate(OP, alg, p::MANAGEMENT_KEY, |t| {
            tlv::write(t, tag::WITNESS, &[]);
        })?;
        let witness = tlv::find(&template, tag::WITNESS)
            .map_err(|e| unexpected(OP, e))?
            .filter(|w| w.len() == block)
            .ok_or_else(|| unexpected(OP, "no 80 witness of one block"))?;
        let decrypted = key.decrypt(witness)?;
        let mut challenge = Zeroizing::new(vec![0u8; block]);
        getrandom::fill(&mut challenge).map_err(|e| PivError::Random(e.to_string()))?;
        let template = self.general_authenticate(OP, alg, p::MANAGEMENT_KEY, |t| {
            tlv::write(t, tag::WITNESS, &decrypted);
            tlv::write(t, tag::CHALLENGE, &challenge);
        })?;
        let response = tlv::find(&template, tag::RESPONSE)
            .map_err(|e| unexpected(OP, e))?
            .ok_or_else(|| unexpected(OP, "no 82 response"))?;
        let expected = key.encrypt(&challenge)?;
        if !bool::from(response.ct_eq(&expected)) {
            return Err(PivError::CardNotAuthenticated);
        }
        Ok(())
    }

    /// Generates a key pair in `slot` on the card (needs the management key); returns the public key.
    pub fn generate(
        &mut self,
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        options: GenerateOptions,
    ) -> Result<PublicKey, PivError> {
        const OP: &str = "GENERATE ASYMMETRIC KEY PAIR";
        let mut body = Vec::new();
        tlv::write_nested(&mut body, tag::GENERATE_CONTROL, |t| {
            tlv::write(t, tag::ALGORITHM, &[algorithm.id()]);
            if options.pin_policy != PinPolicy::Default {
                tlv::write(t, tag::PIN_POLICY, &[options.pin_policy.byte()]);
            }
            if options.touch_policy != TouchPolicy::Default {
                tlv::write(t, tag::TOUCH_POLICY, &[options.touch_policy.byte()]);
            }
        });
        let answer = self.expect_ok(
            OP,
            Command::new(CLA, ins::GENERATE_ASYMMETRIC, 0x00, slot.reference())
                .with_data(body)
                .with_le(LE_ANY)?,
        )?;
        let template = tlv::expect(&answer, tag::PUBLIC_KEY).map_err(|e| unexpected(OP, e))?;
        PublicKey::from_template(algorithm, template)
    }

    /// Signs with the key in `slot`: for ECDSA `input` is the hash (the card returns a DER signature);
    /// for RSA it is the already padded block of the modulus length (the card returns the raw result).
    pub fn sign(
        &mut self,
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        input: &[u8],
    ) -> Result<Vec<u8>, PivError> {
        const OP: &str = "GENERAL AUTHENTICATE (sign)";
        let answer = Zeroizing::new(self.expect_ok(OP, sign_command(slot, algorithm, input))?);
        let template = tlv::expect(&answer, tag::DYNAMIC_AUTH).map_err(|e| unexpected(OP, e))?;
        let signature = tlv::find(template, tag::RESPONSE)
            .map_err(|e| unexpected(OP, e))?
            .ok_or_else(|| unexpected(OP, "no 82 response"))?;
        Ok(signature.to_vec())
    }

    /// Key agreement with the key in `slot` and the host's public point; returns the shared secret.
    pub fn ecdh(
        &mut self,
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        peer_point: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, PivError> {
        const OP: &str = "GENERAL AUTHENTICATE (ECDH)";
        let template = self.general_authenticate(OP, algorithm.id(), slot.reference(), |t| {
            tlv::write(t, tag::RESPONSE, &[]);
            tlv::write(t, tag::EXPONENTIATION, peer_point);
        })?;
        let shared = tlv::find(&template, tag::RESPONSE)
            .map_err(|e| unexpected(OP, e))?
            .ok_or_else(|| unexpected(OP, "no 82 response"))?;
        Ok(Zeroizing::new(shared.to_vec()))
    }

    /// GET DATA: the value inside `53` (Discovery: inside `7E`).
    pub fn get_object(&mut self, object: ObjectId) -> Result<Vec<u8>, PivError> {
        self.read_object(object)?.ok_or(PivError::Refused {
            operation: "GET DATA",
            sw: StatusWord::NOT_FOUND,
        })
    }

    /// GET DATA, with `None` for an object the card does not hold (`6A 82`).
    pub fn read_object(&mut self, object: ObjectId) -> Result<Option<Vec<u8>>, PivError> {
        const OP: &str = "GET DATA";
        let mut body = Vec::new();
        tlv::write(&mut body, tag::TAG_LIST, &object.tag_bytes());
        let [p1, p2] = p::DATA_OBJECTS;
        let response = self.exchange(
            &Command::new(CLA, ins::GET_DATA, p1, p2)
                .with_data(body)
                .with_le(LE_ANY)?,
        )?;
        match response.sw {
            StatusWord::SUCCESS => {}
            StatusWord::NOT_FOUND => return Ok(None),
            sw => return Err(PivError::Refused { operation: OP, sw }),
        }
        let outer = if object == ObjectId::DISCOVERY {
            tag::DISCOVERY
        } else {
            tag::DATA
        };
        let value = tlv::expect(&response.data, outer).map_err(|e| unexpected(OP, e))?;
        Ok(Some(value.to_vec()))
    }

    /// PUT DATA (needs the management key): `value` is what goes inside `53`; long values are chained.
    pub fn put_object(&mut self, object: ObjectId, value: &[u8]) -> Result<(), PivError> {
        let mut body = Vec::with_capacity(value.len() + 10);
        tlv::write(&mut body, tag::TAG_LIST, &object.tag_bytes());
        tlv::write(&mut body, tag::DATA, value);
        let [p1, p2] = p::DATA_OBJECTS;
        self.expect_ok(
            "PUT DATA",
            Command::new(CLA, ins::PUT_DATA, p1, p2).with_data(body),
        )
        .map(drop)
    }

    /// Deletes a data object (PUT DATA with an empty `53`).
    pub fn delete_object(&mut self, object: ObjectId) -> Result<(), PivError> {
        self.put_object(object, &[])
    }

    /// Writes a certificate into `slot`'s certificate object (`70` DER, `71 00` uncompressed, `FE`).
    pub fn put_certificate(&mut self, slot: KeySlot, der: &[u8]) -> Result<(), PivError> {
        let mut value = Vec::with_capacity(der.len() + 10);
        tlv::write(&mut value, tag::CERTIFICATE, der);
        tlv::write(&mut value, tag::CERT_INFO, &[0x00]);
        tlv::write(&mut value, tag::ERROR_DETECTION, &[]);
        self.put_object(ObjectId::certificate_of(slot), &value)
    }

    /// The DER certificate in `slot`'s certificate object, if there is one.
    pub fn read_certificate(&mut self, slot: KeySlot) -> Result<Option<Vec<u8>>, PivError> {
        let Some(value) = self.read_object(ObjectId::certificate_of(slot))? else {
            return Ok(None);
        };
        let der = tlv::find(&value, tag::CERTIFICATE)
            .map_err(|e| unexpected("GET DATA (certificate)", e))?
            .ok_or_else(|| unexpected("GET DATA (certificate)", "no 70 certificate"))?;
        Ok(Some(der.to_vec()))
    }

    /// VERIFY the PIN (a wrong PIN is an outcome, not an error).
    pub fn verify_pin(&mut self, pin: &PinValue) -> Result<PinOutcome, PivError> {
        self.pin_command(
            "VERIFY",
            Command::new(CLA, ins::VERIFY, 0x00, PinReference::Pin.reference())
                .with_data(pin.field().to_vec()),
        )
    }

    /// The PIN's state without spending a try (VERIFY without data): `Wrong` means "not verified".
    pub fn pin_status(&mut self) -> Result<PinOutcome, PivError> {
        self.pin_command(
            "VERIFY (status)",
            Command::new(CLA, ins::VERIFY, 0x00, PinReference::Pin.reference()),
        )
    }

    /// Drops the PIN-verified state (VERIFY P1 `FF`).
    pub fn log_out(&mut self) -> Result<(), PivError> {
        self.expect_ok(
            "VERIFY (log out)",
            Command::new(
                CLA,
                ins::VERIFY,
                p::VERIFY_LOG_OUT,
                PinReference::Pin.reference(),
            ),
        )
        .map(drop)
    }

    /// CHANGE REFERENCE DATA of the PIN or PUK.
    pub fn change_reference(
        &mut self,
        reference: PinReference,
        old: &PinValue,
        new: &PinValue,
    ) -> Result<PinOutcome, PivError> {
        let mut data = Zeroizing::new(old.field().to_vec());
        data.extend_from_slice(new.field());
        self.pin_command(
            "CHANGE REFERENCE DATA",
            Command::new(CLA, ins::CHANGE_REFERENCE, 0x00, reference.reference())
                .with_data(data.to_vec()),
        )
    }

    /// RESET RETRY COUNTER: unblocks (and sets) the PIN with the PUK.
    pub fn unblock_pin(
        &mut self,
        puk: &PinValue,
        new_pin: &PinValue,
    ) -> Result<PinOutcome, PivError> {
        let mut data = Zeroizing::new(puk.field().to_vec());
        data.extend_from_slice(new_pin.field());
        self.pin_command(
            "RESET RETRY COUNTER",
            Command::new(
                CLA,
                ins::RESET_RETRY_COUNTER,
                0x00,
                PinReference::Pin.reference(),
            )
            .with_data(data.to_vec()),
        )
    }

    fn pin_command(
        &mut self,
        operation: &'static str,
        command: Command,
    ) -> Result<PinOutcome, PivError> {
        // The command may carry a PIN: its bytes are dropped (and zeroized by the callers' buffers).
        let response = self.exchange(&command)?;
        PinOutcome::from_status(response.sw).map_err(|sw| PivError::Refused { operation, sw })
    }

    /// Replaces the management key (YubiKey `FF`); the session must be authenticated.
    pub fn set_management_key(
        &mut self,
        new: &ManagementKey,
        touch_required: bool,
    ) -> Result<(), PivError> {
        let [p1, p2] = if touch_required {
            p::SET_MGMT_KEY_TOUCH
        } else {
            p::SET_MGMT_KEY
        };
        let key = new.bytes();
        let mut data = Zeroizing::new(vec![
            new.algorithm().id(),
            p::MANAGEMENT_KEY,
            key.len() as u8,
        ]);
        data.extend_from_slice(key);
        self.expect_ok(
            "SET MANAGEMENT KEY",
            Command::new(CLA, ins::SET_MANAGEMENT_KEY, p1, p2).with_data(data.to_vec()),
        )
        .map(drop)
    }

    /// YubiKey ATTEST (`F9`): a DER certificate for the slot's key, signed by the card's attestation key.
    pub fn attest(&mut self, slot: KeySlot) -> Result<Vec<u8>, PivError> {
        self.expect_ok(
            "ATTEST",
            Command::new(CLA, ins::ATTEST, slot.reference(), 0x00).with_le(LE_ANY)?,
        )
    }

    /// YubiKey GET VERSION.
    pub fn version(&mut self) -> Result<Version, PivError> {
        let answer = self.expect_ok(
            "GET VERSION",
            Command::new(CLA, ins::GET_VERSION, 0, 0).with_le(LE_ANY)?,
        )?;
        match answer[..] {
            [major, minor, patch] => Ok(Version {
                major,
                minor,
                patch,
            }),
            _ => Err(unexpected(
                "GET VERSION",
                format!("{} bytes, not 3", answer.len()),
            )),
        }
    }

    /// YubiKey GET SERIAL.
    pub fn serial(&mut self) -> Result<u32, PivError> {
        let answer = self.expect_ok(
            "GET SERIAL",
            Command::new(CLA, ins::GET_SERIAL, 0, 0).with_le(LE_ANY)?,
        )?;
        let bytes: [u8; 4] = answer[..]
            .try_into()
            .map_err(|_| unexpected("GET SERIAL", format!("{} bytes, not 4", answer.len())))?;
        Ok(u32::from_be_bytes(bytes))
    }

    /// YubiKey GET METADATA of a key reference (a slot, `80` PIN, `81` PUK, `9B` management key).
    pub fn metadata(&mut self, reference: u8) -> Result<Metadata, PivError> {
        const OP: &str = "GET METADATA";
        let answer = self.expect_ok(
            OP,
            Command::new(CLA, ins::GET_METADATA, 0x00, reference).with_le(LE_ANY)?,
        )?;
        let mut metadata = Metadata::default();
        for item in tlv::iter(&answer) {
            let item = item.map_err(|e| unexpected(OP, e))?;
            match (item.tag.0, item.value) {
                (tag::META_ALGORITHM, [alg]) => metadata.algorithm = Some(*alg),
                (tag::META_POLICY, [pin, touch]) => metadata.policy = Some((*pin, *touch)),
                (tag::META_ORIGIN, [origin]) => metadata.origin = Some(*origin),
                (tag::META_PUBLIC_KEY, key) => metadata.public_key = Some(key.to_vec()),
                (tag::META_IS_DEFAULT, [flag]) => metadata.is_default = Some(*flag != 0),
                (tag::META_RETRIES, [total, left]) => metadata.retries = Some((*total, *left)),
                (other, value) => {
                    return Err(unexpected(
                        OP,
                        format!("item {other:02X} of {} bytes", value.len()),
                    ))
                }
            }
        }
        Ok(metadata)
    }

    /// YubiKey IMPORT KEY of a curve private value (P-256: 32 bytes, P-384: 48; the 32-byte Ed25519 seed
    /// or X25519 scalar).
    pub fn import_ec(
        &mut self,
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        scalar: &[u8],
        options: GenerateOptions,
    ) -> Result<(), PivError> {
        let mut data = Zeroizing::new(Vec::new());
        let private_tag = match algorithm {
            KeyAlgorithm::Ed25519 => tag::ED25519_PRIVATE,
            KeyAlgorithm::X25519 => tag::X25519_PRIVATE,
            _ => tag::EC_PRIVATE,
        };
        tlv::write(&mut data, private_tag, scalar);
        if options.pin_policy != PinPolicy::Default {
            tlv::write(&mut data, tag::PIN_POLICY, &[options.pin_policy.byte()]);
        }
        if options.touch_policy != TouchPolicy::Default {
            tlv::write(&mut data, tag::TOUCH_POLICY, &[options.touch_policy.byte()]);
        }
        self.expect_ok(
            "IMPORT KEY",
            Command::new(CLA, ins::IMPORT_KEY, algorithm.id(), slot.reference())
                .with_data(data.to_vec()),
        )
        .map(drop)
    }

    /// YubiKey IMPORT KEY of an RSA key in CRT form (`01 p 02 q 03 dP 04 dQ 05 qInv`, each padded to half
    /// the modulus length, as ykman and yubico-piv-tool send them; the exponent must be 65 537).
    pub fn import_rsa(
        &mut self,
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        crt: &RsaCrtParts<'_>,
        options: GenerateOptions,
    ) -> Result<(), PivError> {
        const OP: &str = "IMPORT KEY";
        let half = algorithm
            .rsa_modulus_len()
            .ok_or_else(|| unexpected(OP, "not an RSA algorithm"))?
            / 2;
        let mut data = Zeroizing::new(Vec::new());
        for (item, value) in [
            (tag::RSA_PRIME_P, crt.p),
            (tag::RSA_PRIME_Q, crt.q),
            (tag::RSA_EXPONENT_P, crt.dp),
            (tag::RSA_EXPONENT_Q, crt.dq),
            (tag::RSA_COEFFICIENT, crt.qinv),
        ] {
            if value.len() > half {
                return Err(unexpected(
                    OP,
                    "an RSA key part longer than half the modulus",
                ));
            }
            let mut padded = Zeroizing::new(vec![0u8; half - value.len()]);
            padded.extend_from_slice(value);
            tlv::write(&mut data, item, &padded);
        }
        if options.pin_policy != PinPolicy::Default {
            tlv::write(&mut data, tag::PIN_POLICY, &[options.pin_policy.byte()]);
        }
        if options.touch_policy != TouchPolicy::Default {
            tlv::write(&mut data, tag::TOUCH_POLICY, &[options.touch_policy.byte()]);
        }
        self.expect_ok(
            OP,
            Command::new(CLA, ins::IMPORT_KEY, algorithm.id(), slot.reference())
                .with_data(data.to_vec()),
        )
        .map(drop)
    }

    /// YubiKey MOVE KEY: moves the key in `from` to `to`, or deletes it (`to: None`).
    pub fn move_key(&mut self, from: KeySlot, to: Option<KeySlot>) -> Result<(), PivError> {
        let p1 = to.map_or(p::MOVE_KEY_DELETE, KeySlot::reference);
        self.expect_ok(
            "MOVE KEY",
            Command::new(CLA, ins::MOVE_KEY, p1, from.reference()),
        )
        .map(drop)
    }

    /// YubiKey SET PIN RETRIES (needs the management key and the PIN); resets PIN and PUK to defaults.
    pub fn set_pin_retries(&mut self, pin_tries: u8, puk_tries: u8) -> Result<(), PivError> {
        self.expect_ok(
            "SET PIN RETRIES",
            Command::new(CLA, ins::SET_PIN_RETRIES, pin_tries, puk_tries),
        )
        .map(drop)
    }

    /// YubiKey RESET of the PIV application (only once PIN and PUK are both blocked).
    pub fn reset_application(&mut self) -> Result<(), PivError> {
        self.expect_ok("RESET", Command::new(CLA, ins::RESET, 0, 0))
            .map(drop)
    }
}

/// GENERAL AUTHENTICATE with the dynamic authentication template `items` build, Le `00`.
fn general_authenticate_command(
    algorithm: u8,
    key_reference: u8,
    items: impl FnOnce(&mut Vec<u8>),
) -> Command {
    let mut body = Zeroizing::new(Vec::new());
    tlv::write_nested(&mut body, tag::DYNAMIC_AUTH, items);
    let command = Command::new(CLA, ins::GENERAL_AUTHENTICATE, algorithm, key_reference)
        .with_data(body.to_vec());
    // Le 00 always fits: no error possible.
    command.clone().with_le(LE_ANY).unwrap_or(command)
}

/// The GENERAL AUTHENTICATE that asks the key in `slot` to sign `input` (a hash for ECDSA, a padded block
/// for RSA): `7C { 82 00, 81 input }`. Public so benchmarks can send the exact command the client sends.
pub fn sign_command(slot: KeySlot, algorithm: KeyAlgorithm, input: &[u8]) -> Command {
    general_authenticate_command(algorithm.id(), slot.reference(), |t| {
        tlv::write(t, tag::RESPONSE, &[]);
        tlv::write(t, tag::CHALLENGE, input);
    })
}
