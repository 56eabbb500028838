//! What the `piv_session` target checks: the card dispatcher with the PIV applet behind it, fed an
//! arbitrary sequence of operations, against a model of what a PIV card must do. Shared with the replay
//! test (`applets/piv/tests/fuzz_corpus.rs` includes this file).
//!
//! The input decodes into operations ([`decode`]): PIN and PUK checks, changes and unblocks with right,
//! factory or fuzzer-chosen values; management-key authentication, replacement; data objects written,
//! read and deleted; P-256 and P-384 keys generated, imported, moved, deleted and used to sign (with
//! the key's algorithm in P1 or the other one); SET PIN RETRIES, RESET,
//! GET METADATA, warm resets; arbitrary APDUs; and power cuts armed at the N-th persistent write of the
//! next operation. Each operation's status word — and its data, wherever it is determined — is
//! predicted by [`Model`] and compared with the card's answer; signatures are verified against the key
//! the model holds for the slot. Arbitrary APDUs reach only commands that change nothing the model
//! holds (their state-changing instructions are sent as a read instead), so every later prediction
//! also checks that they changed nothing.
//!
//! A cut operation leaves the card mute. The model then lists the durable states the card may be in —
//! before, after, and the steps PIV's rules allow between (a try spent before the comparison, a try
//! given back before the new value is written) — and the card, powered up again, must be in one of
//! them, judged by GET METADATA and GET DATA. Candidates those cannot tell apart (two PIN values, two
//! management keys) are told apart the way a host would: one verification or one authentication.
//! At the end of every input the card's whole observable state must equal the model's.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use apdu::{Command, Response, StatusWord};
use card_os::{
    AppletRegistry, Card, CardConfig, CardSnapshot, Clock, FaultPlan, Installation, Storage,
};
use card_transport::{DirectReader, Transport, TransportError};
use piv_host::{ManagementKey, PivSession};
use piv_types::{
    ins, tag, KeyAlgorithm, KeySlot, ManagementAlgorithm, ObjectId, PinPolicy, PinReference,
    TouchPolicy, DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN, DEFAULT_PUK, PIN_FIELD_LEN,
};

// The status words the model predicts, from the one table (`apdu/src/status.rs`).
const SW_OK: u16 = StatusWord::SUCCESS.to_u16();
const SW_SECURITY: u16 = StatusWord::SECURITY_STATUS_NOT_SATISFIED.to_u16();
const SW_BLOCKED: u16 = StatusWord::AUTH_METHOD_BLOCKED.to_u16();
const SW_CONDITIONS: u16 = StatusWord::CONDITIONS_NOT_SATISFIED.to_u16();
const SW_INVALID_DATA: u16 = StatusWord::INCORRECT_DATA.to_u16();
const SW_NOT_FOUND: u16 = StatusWord::NOT_FOUND.to_u16();
const SW_NO_MEMORY: u16 = StatusWord::NOT_ENOUGH_MEMORY.to_u16();
const SW_WRONG_P1P2: u16 = StatusWord::INCORRECT_P1P2.to_u16();
const SW_REFERENCE_NOT_FOUND: u16 = StatusWord::REFERENCE_NOT_FOUND.to_u16();
const SW_CHAIN_INTERRUPTED: u16 = StatusWord::LAST_COMMAND_OF_CHAIN_EXPECTED.to_u16();
/// `6F 00`: the card's answer to its own bug (`CardError::Internal`, a crypto failure).
const SW_UNKNOWN: u16 = StatusWord::UNKNOWN.to_u16();
/// `63 Cx`: wrong, `x` tries left.
const SW_WRONG_PIN: u16 = 0x63C0;

/// At most this many operations per input (the fuzzer's inputs stay short; a sequence this long reaches
/// every state the model has).
const MAX_OPS: usize = 48;
/// Object values up to a little past the largest the card stores, so `6A 84` is reached too.
const MAX_VALUE_LEN: usize = piv_applet::MAX_OBJECT_LEN + 8;

const SELECT_PIV: [u8; 10] = [0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08];

/// The objects the model follows. Discovery is fixed; printed information needs the PIN to be read.
const OBJECTS: [ObjectId; 7] = [
    ObjectId::DISCOVERY,
    ObjectId::CHUID,
    ObjectId::CCC,
    ObjectId::CERT_AUTHENTICATION,
    ObjectId::PRINTED_INFO,
    ObjectId::KEY_HISTORY,
    ObjectId::ATTESTATION_CERT,
];
/// The key slots the model follows: the four named ones and a retired one.
const SLOTS: [u8; 5] = [0x9A, 0x9C, 0x9D, 0x9E, 0x82];
/// Instructions an arbitrary APDU may not carry: each changes state the model follows (or, for
/// GENERAL AUTHENTICATE, transient state: the management key's authentication, a PIN-always grant).
const STATE_CHANGING: [u8; 11] = [
    ins::VERIFY,
    ins::CHANGE_REFERENCE,
    ins::RESET_RETRY_COUNTER,
    ins::PUT_DATA,
    ins::GENERATE_ASYMMETRIC,
    ins::GENERAL_AUTHENTICATE,
    ins::SET_MANAGEMENT_KEY,
    ins::RESET,
    ins::SET_PIN_RETRIES,
    ins::MOVE_KEY,
    ins::IMPORT_KEY,
];

/// A PIN-field value to send: the model's current one, the factory one, or fuzzer bytes.
#[derive(Debug, Clone, Copy)]
enum Guess {
    Current,
    Factory,
    Bytes([u8; PIN_FIELD_LEN]),
}

/// A management key to authenticate with.
#[derive(Debug, Clone)]
enum KeyChoice {
    Current,
    Factory,
    Other(ManagementAlgorithm, Vec<u8>),
}

#[derive(Debug, Clone)]
enum Op {
    /// An arbitrary APDU (never a state-changing instruction, see [`STATE_CHANGING`]).
    Raw(Vec<u8>),
    Verify(PinReference, Guess),
    Status(PinReference),
    LogOut(PinReference),
    Change {
        reference: PinReference,
        old: Guess,
        new: [u8; PIN_FIELD_LEN],
    },
    Unblock {
        puk: Guess,
        new_pin: [u8; PIN_FIELD_LEN],
    },
    Authenticate(KeyChoice),
    SetManagementKey {
        algorithm: ManagementAlgorithm,
        key: Vec<u8>,
        touch: bool,
    },
    /// An empty value deletes the object.
    PutData(ObjectId, Vec<u8>),
    GetData(ObjectId),
    Generate {
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        pin: PinPolicy,
        touch: TouchPolicy,
    },
    Import {
        slot: KeySlot,
        algorithm: KeyAlgorithm,
        /// The scalar, of the algorithm's length.
        scalar: Vec<u8>,
        pin: PinPolicy,
    },
    /// A hash of the algorithm's length (32 or 48 bytes), signed with the algorithm named in P1 —
    /// which need not be the key's.
    Sign(KeySlot, KeyAlgorithm, Vec<u8>),
    Move {
        from: KeySlot,
        to: Option<KeySlot>,
    },
    SetPinRetries(u8, u8),
    ResetApplication,
    Metadata(u8),
    WarmReset,
    /// Cut power at a persistent write of the next operation.
    Cut(FaultPlan),
}

/// The fuzzer's bytes, read front to back; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((first, rest)) => {
                self.0 = rest;
                *first
            }
            None => 0,
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head.to_vec()
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for (dst, src) in out.iter_mut().zip(self.take(N)) {
            *dst = src;
        }
        out
    }

    fn reference(&mut self) -> PinReference {
        if self.byte().is_multiple_of(2) {
            PinReference::Pin
        } else {
            PinReference::Puk
        }
    }

    fn guess(&mut self) -> Guess {
        match self.byte() % 4 {
            0 | 1 => Guess::Current,
            2 => Guess::Factory,
            _ => Guess::Bytes(self.array()),
        }
    }

    /// A new PIN or PUK: digits of a length from 5 to 8 (5 is refused), or any 8 bytes.
    fn new_value(&mut self) -> [u8; PIN_FIELD_LEN] {
        let kind = self.byte();
        if kind % 4 == 3 {
            return self.array();
        }
        let len = 5 + usize::from(kind / 4 % 4);
        let mut field = [0xFF; PIN_FIELD_LEN];
        for digit in field.iter_mut().take(len) {
            *digit = b'0' + self.byte() % 10;
        }
        field
    }

    /// One of `choices`, by the next byte.
    fn pick<T: Copy>(&mut self, choices: &[T]) -> T {
        choices[usize::from(self.byte()) % choices.len()]
    }

    fn management_algorithm(&mut self) -> ManagementAlgorithm {
        self.pick(&[
            ManagementAlgorithm::TripleDes,
            ManagementAlgorithm::Aes128,
            ManagementAlgorithm::Aes192,
            ManagementAlgorithm::Aes256,
        ])
    }

    fn slot(&mut self) -> KeySlot {
        let reference = self.pick(&SLOTS);
        KeySlot::from_reference(reference).expect("a key slot")
    }

    fn object(&mut self) -> ObjectId {
        self.pick(&OBJECTS)
    }

    fn curve(&mut self) -> KeyAlgorithm {
        self.pick(&[KeyAlgorithm::EccP256, KeyAlgorithm::EccP384])
    }

    /// `n` bytes (zeros once the input runs out).
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut out = self.take(n);
        out.resize(n, 0);
        out
    }

    fn pin_policy(&mut self) -> PinPolicy {
        self.pick(&[
            PinPolicy::Default,
            PinPolicy::Never,
            PinPolicy::Once,
            PinPolicy::Always,
        ])
    }

    fn value(&mut self) -> Vec<u8> {
        let len = match self.byte() % 8 {
            0 => 0,
            7 => MAX_VALUE_LEN - usize::from(self.byte() % 16),
            n => usize::from(n) * usize::from(self.byte()),
        };
        let fill = self.byte();
        let mut value = self.take(len);
        value.resize(len, fill);
        value
    }
}

/// The operations an input stands for.
fn decode(data: &[u8]) -> Vec<Op> {
    let mut input = Input(data);
    let mut ops = Vec::new();
    while !input.0.is_empty() && ops.len() < MAX_OPS {
        let op = match input.byte() % 20 {
            0 | 1 => {
                let mut header = input.array::<4>();
                if STATE_CHANGING.contains(&header[1]) {
                    header[1] = ins::GET_DATA;
                }
                let body_len = usize::from(input.byte() % 64);
                let mut apdu = header.to_vec();
                apdu.extend(input.take(body_len));
                Op::Raw(apdu)
            }
            2 | 3 => Op::Verify(input.reference(), input.guess()),
            4 => Op::Status(input.reference()),
            5 => Op::LogOut(input.reference()),
            6 => Op::Change {
                reference: input.reference(),
                old: input.guess(),
                new: input.new_value(),
            },
            7 => Op::Unblock {
                puk: input.guess(),
                new_pin: input.new_value(),
            },
            8 => Op::Authenticate(match input.byte() % 4 {
                0 | 1 => KeyChoice::Current,
                2 => KeyChoice::Factory,
                _ => {
                    let algorithm = input.management_algorithm();
                    KeyChoice::Other(
                        algorithm,
                        input.array::<32>()[..algorithm.key_len()].to_vec(),
                    )
                }
            }),
            9 => {
                let algorithm = input.management_algorithm();
                Op::SetManagementKey {
                    algorithm,
                    key: input.array::<32>()[..algorithm.key_len()].to_vec(),
                    touch: input.byte().is_multiple_of(4),
                }
            }
            10 => Op::PutData(input.object(), input.value()),
            11 => Op::GetData(input.object()),
            12 => Op::Generate {
                slot: input.slot(),
                algorithm: input.curve(),
                pin: input.pin_policy(),
                touch: input.pick(&[
                    TouchPolicy::Default,
                    TouchPolicy::Never,
                    TouchPolicy::Always,
                    TouchPolicy::Cached,
                ]),
            },
            13 => {
                let slot = input.slot();
                let algorithm = input.curve();
                let len = algorithm.scalar_len().unwrap_or(32);
                Op::Import {
                    slot,
                    algorithm,
                    scalar: match input.byte() % 8 {
                        0 => vec![0; len],
                        1 => vec![0xFF; len],
                        _ => input.bytes(len),
                    },
                    pin: input.pin_policy(),
                }
            }
            14 => {
                let slot = input.slot();
                let algorithm = input.curve();
                let len = algorithm.scalar_len().unwrap_or(32);
                Op::Sign(slot, algorithm, input.bytes(len))
            }
            15 => Op::Move {
                from: input.slot(),
                to: (input.byte() % 3 != 0).then(|| input.slot()),
            },
            16 => Op::SetPinRetries(1 + input.byte() % 15, 1 + input.byte() % 15),
            17 => match input.byte() % 4 {
                0 => Op::ResetApplication,
                1 => Op::WarmReset,
                _ => Op::Metadata(match input.byte() % 3 {
                    0 => 0x80,
                    1 => 0x81,
                    _ => 0x9B,
                }),
            },
            18 => Op::Metadata(input.slot().reference()),
            _ => Op::Cut(FaultPlan {
                at_write: 1 + u32::from(input.byte() % 8),
                torn: input.byte().is_multiple_of(2),
            }),
        };
        ops.push(op);
    }
    ops
}

fn pad(value: &str) -> [u8; PIN_FIELD_LEN] {
    let mut field = [0xFF; PIN_FIELD_LEN];
    for (dst, src) in field.iter_mut().zip(value.bytes()) {
        *dst = src;
    }
    field
}

/// Whether a PIN or PUK may be set to this field: 6 to 8 non-`FF` bytes, then only `FF`.
fn well_formed(field: &[u8; PIN_FIELD_LEN]) -> bool {
    let len = field
        .iter()
        .position(|b| *b == 0xFF)
        .unwrap_or(PIN_FIELD_LEN);
    len >= 6 && field[len..].iter().all(|b| *b == 0xFF)
}

/// A PIN or PUK as the card must hold it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Secret {
    value: [u8; PIN_FIELD_LEN],
    limit: u8,
    left: u8,
}

/// A key in a slot. `point: None` after a cut GENERATE: learnt from GET METADATA at power-up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct KeyModel {
    algorithm: KeyAlgorithm,
    pin: PinPolicy,
    touch: TouchPolicy,
    origin: u8,
    point: Option<Vec<u8>>,
}

/// An object: `None` absent. Unknown values (a new CHUID after RESET) are `Some(None)`.
type ObjectModel = Option<Option<Vec<u8>>>;

/// What a PIV card holds, durable and transient.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Model {
    pin: Secret,
    puk: Secret,
    mgmt_algorithm: ManagementAlgorithm,
    mgmt_key: Vec<u8>,
    mgmt_touch: bool,
    objects: BTreeMap<u32, ObjectModel>,
    keys: BTreeMap<u8, KeyModel>,
    pin_verified: bool,
    /// A verification not yet used by a PIN-always key.
    pin_fresh: bool,
    puk_verified: bool,
    mgmt_authenticated: bool,
}

/// What the card must answer.
#[derive(Debug)]
struct Expected {
    sw: u16,
    /// The response data, where the model determines it.
    data: Option<Vec<u8>>,
}

impl Expected {
    fn sw(sw: u16) -> Self {
        Self { sw, data: None }
    }

    fn data(data: Vec<u8>) -> Self {
        Self {
            sw: SW_OK,
            data: Some(data),
        }
    }
}

/// Whether two management keys are the same cipher. For AES that is the same bytes; Triple DES ignores
/// each byte's parity bit, and EDE with two equal halves collapses to single DES — so `K1 K1 K3` is the
/// key `K3 K3 K3` (the factory key is such a single-DES key). Two test blocks decide it; a chance
/// agreement of different ciphers on both is negligible.
fn same_key(algorithm: ManagementAlgorithm, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    if algorithm != ManagementAlgorithm::TripleDes || a.len() != b.len() {
        return false;
    }
    let encrypt = |key: &[u8]| {
        [[0u8; 8], [0x5A; 8]].map(|block| {
            card_os::crypto::Crypto::block_encrypt(
                card_os::crypto::BlockCipher::TripleDes,
                key,
                &block,
            )
            .expect("a Triple DES key encrypts")
        })
    };
    encrypt(a) == encrypt(b)
}

/// The uncompressed public point of a private scalar on the curve, `None` if it is no valid key.
fn public_point(algorithm: KeyAlgorithm, scalar: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        KeyAlgorithm::EccP256 => {
            use p256::elliptic_curve::sec1::ToSec1Point;
            let secret = p256::SecretKey::from_slice(scalar).ok()?;
            Some(secret.public_key().to_sec1_point(false).as_bytes().to_vec())
        }
        KeyAlgorithm::EccP384 => {
            use p384::elliptic_curve::sec1::ToSec1Point;
            let secret = p384::SecretKey::from_slice(scalar).ok()?;
            Some(secret.public_key().to_sec1_point(false).as_bytes().to_vec())
        }
        _ => None,
    }
}

/// Whether `der` is a valid ECDSA signature of `hash` by the key at `point`.
fn verifies(algorithm: KeyAlgorithm, point: &[u8], hash: &[u8], der: &[u8]) -> bool {
    match algorithm {
        KeyAlgorithm::EccP256 => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier;
            let (Ok(key), Ok(signature)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p256::ecdsa::DerSignature::from_bytes(der),
            ) else {
                return false;
            };
            key.verify_prehash(hash, &signature).is_ok()
        }
        KeyAlgorithm::EccP384 => {
            use p384::ecdsa::signature::hazmat::PrehashVerifier;
            let (Ok(key), Ok(signature)) = (
                p384::ecdsa::VerifyingKey::from_sec1_bytes(point),
                p384::ecdsa::DerSignature::from_bytes(der),
            ) else {
                return false;
            };
            key.verify_prehash(hash, &signature).is_ok()
        }
        _ => false,
    }
}

fn tlv(tag: u32, value: &[u8]) -> Vec<u8> {
    apdu::tlv::encode(tag, value)
}

impl Model {
    fn secret(&mut self, reference: PinReference) -> &mut Secret {
        match reference {
            PinReference::Pin => &mut self.pin,
            PinReference::Puk => &mut self.puk,
        }
    }

    fn field(&mut self, reference: PinReference, guess: Guess) -> [u8; PIN_FIELD_LEN] {
        match guess {
            Guess::Current => self.secret(reference).value,
            Guess::Factory => match reference {
                PinReference::Pin => pad(DEFAULT_PIN),
                PinReference::Puk => pad(DEFAULT_PUK),
            },
            Guess::Bytes(bytes) => bytes,
        }
    }

    fn verified(&mut self, reference: PinReference) -> &mut bool {
        match reference {
            PinReference::Pin => &mut self.pin_verified,
            PinReference::Puk => &mut self.puk_verified,
        }
    }

    /// OwnerPin's check: the flag drops, a try is spent, then given back on a match.
    fn check(&mut self, reference: PinReference, candidate: &[u8; PIN_FIELD_LEN]) -> u16 {
        *self.verified(reference) = false;
        let secret = self.secret(reference);
        if secret.left == 0 {
            return SW_BLOCKED;
        }
        if *candidate != secret.value {
            secret.left -= 1;
            return SW_WRONG_PIN | u16::from(secret.left);
        }
        secret.left = secret.limit;
        *self.verified(reference) = true;
        SW_OK
    }

    fn factory_reset_secrets(&mut self, pin_limit: u8, puk_limit: u8) {
        self.pin = Secret {
            value: pad(DEFAULT_PIN),
            limit: pin_limit,
            left: pin_limit,
        };
        self.puk = Secret {
            value: pad(DEFAULT_PUK),
            limit: puk_limit,
            left: puk_limit,
        };
        self.pin_verified = false;
        self.pin_fresh = false;
        self.puk_verified = false;
    }

    fn forget_transient(&mut self) {
        self.pin_verified = false;
        self.pin_fresh = false;
        self.puk_verified = false;
        self.mgmt_authenticated = false;
    }

    fn management_key(&self, choice: &KeyChoice) -> (ManagementAlgorithm, Vec<u8>) {
        match choice {
            KeyChoice::Current => (self.mgmt_algorithm, self.mgmt_key.clone()),
            KeyChoice::Factory => (
                ManagementAlgorithm::TripleDes,
                DEFAULT_MANAGEMENT_KEY.to_vec(),
            ),
            KeyChoice::Other(algorithm, key) => (*algorithm, key.clone()),
        }
    }

    /// Applies `op` as the card must and says what it must answer. `Raw` is answered by the card alone.
    fn apply(&mut self, op: &Op) -> Expected {
        match op {
            Op::Raw(_) | Op::WarmReset | Op::Cut(_) => Expected::sw(SW_OK),
            Op::Verify(reference, guess) => {
                let candidate = self.field(*reference, *guess);
                if *reference == PinReference::Pin {
                    self.pin_fresh = false;
                }
                let sw = self.check(*reference, &candidate);
                if sw == SW_OK && *reference == PinReference::Pin {
                    self.pin_fresh = true;
                }
                Expected::sw(sw)
            }
            Op::Status(reference) => {
                let verified = *self.verified(*reference);
                let left = self.secret(*reference).left;
                Expected::sw(match left {
                    0 => SW_BLOCKED,
                    _ if verified => SW_OK,
                    left => SW_WRONG_PIN | u16::from(left),
                })
            }
            Op::LogOut(reference) => {
                *self.verified(*reference) = false;
                if *reference == PinReference::Pin {
                    self.pin_fresh = false;
                }
                Expected::sw(SW_OK)
            }
            Op::Change {
                reference,
                old,
                new,
            } => {
                let old = self.field(*reference, *old);
                match self.check(*reference, &old) {
                    SW_OK if !well_formed(new) => Expected::sw(SW_INVALID_DATA),
                    SW_OK => {
                        self.secret(*reference).value = *new;
                        Expected::sw(SW_OK)
                    }
                    refused => Expected::sw(refused),
                }
            }
            Op::Unblock { puk, new_pin } => {
                let puk = self.field(PinReference::Puk, *puk);
                match self.check(PinReference::Puk, &puk) {
                    SW_OK if !well_formed(new_pin) => Expected::sw(SW_INVALID_DATA),
                    SW_OK => {
                        self.pin.value = *new_pin;
                        self.pin.left = self.pin.limit;
                        Expected::sw(SW_OK)
                    }
                    refused => Expected::sw(refused),
                }
            }
            Op::Authenticate(choice) => {
                let (algorithm, key) = self.management_key(choice);
                if algorithm != self.mgmt_algorithm {
                    return Expected::sw(SW_WRONG_P1P2);
                }
                // The witness request drops the old authentication; the answer decides the new one.
                self.mgmt_authenticated = same_key(algorithm, &key, &self.mgmt_key);
                Expected::sw(if self.mgmt_authenticated {
                    SW_OK
                } else {
                    SW_SECURITY
                })
            }
            Op::SetManagementKey {
                algorithm,
                key,
                touch,
            } => {
                if !self.mgmt_authenticated {
                    return Expected::sw(SW_SECURITY);
                }
                self.mgmt_algorithm = *algorithm;
                self.mgmt_key = key.clone();
                self.mgmt_touch = *touch;
                Expected::sw(SW_OK)
            }
            Op::PutData(object, value) => {
                if *object == ObjectId::DISCOVERY {
                    return Expected::sw(SW_INVALID_DATA);
                }
                if !self.mgmt_authenticated {
                    return Expected::sw(SW_SECURITY);
                }
                if value.len() > piv_applet::MAX_OBJECT_LEN {
                    return Expected::sw(SW_NO_MEMORY);
                }
                let stored = (!value.is_empty()).then(|| Some(value.clone()));
                self.objects.insert(object.tag(), stored);
                Expected::sw(SW_OK)
            }
            Op::GetData(object) => {
                if *object == ObjectId::PRINTED_INFO && !self.pin_verified {
                    return Expected::sw(SW_SECURITY);
                }
                match self.objects.get(&object.tag()).cloned().flatten() {
                    None => Expected::sw(SW_NOT_FOUND),
                    Some(None) => Expected::sw(SW_OK),
                    Some(Some(value)) => {
                        let tag = if *object == ObjectId::DISCOVERY {
                            tag::DISCOVERY
                        } else {
                            tag::DATA
                        };
                        Expected::data(tlv(tag, &value))
                    }
                }
            }
            Op::Generate {
                slot,
                algorithm,
                pin,
                touch,
            } => {
                if !self.mgmt_authenticated {
                    return Expected::sw(SW_SECURITY);
                }
                self.keys.insert(
                    slot.reference(),
                    KeyModel {
                        algorithm: *algorithm,
                        pin: pin.resolve(*slot),
                        touch: touch.resolve(),
                        origin: 0x01,
                        point: None,
                    },
                );
                Expected::sw(SW_OK)
            }
            Op::Import {
                slot,
                algorithm,
                scalar,
                pin,
            } => {
                if !self.mgmt_authenticated {
                    return Expected::sw(SW_SECURITY);
                }
                let Some(point) = public_point(*algorithm, scalar) else {
                    return Expected::sw(SW_INVALID_DATA);
                };
                self.keys.insert(
                    slot.reference(),
                    KeyModel {
                        algorithm: *algorithm,
                        pin: pin.resolve(*slot),
                        touch: TouchPolicy::Never,
                        origin: 0x02,
                        point: Some(point),
                    },
                );
                Expected::sw(SW_OK)
            }
            Op::Sign(slot, algorithm, _) => {
                let Some(key) = self.keys.get(&slot.reference()) else {
                    return Expected::sw(SW_REFERENCE_NOT_FOUND);
                };
                if key.algorithm != *algorithm {
                    return Expected::sw(SW_WRONG_P1P2);
                }
                match key.pin {
                    PinPolicy::Once if !self.pin_verified => Expected::sw(SW_SECURITY),
                    PinPolicy::Always if !(self.pin_verified && self.pin_fresh) => {
                        Expected::sw(SW_SECURITY)
                    }
                    policy => {
                        if policy == PinPolicy::Always {
                            self.pin_fresh = false;
                        }
                        Expected::sw(SW_OK)
                    }
                }
            }
            Op::Move { from, to } => {
                if !self.mgmt_authenticated {
                    return Expected::sw(SW_SECURITY);
                }
                let Some(key) = self.keys.get(&from.reference()).cloned() else {
                    return Expected::sw(SW_REFERENCE_NOT_FOUND);
                };
                match to {
                    None => {
                        self.keys.remove(&from.reference());
                    }
                    Some(to) if to == from => {}
                    Some(to) => {
                        if self.keys.contains_key(&to.reference()) {
                            return Expected::sw(SW_CONDITIONS);
                        }
                        self.keys.remove(&from.reference());
                        self.keys.insert(to.reference(), key);
                    }
                }
                Expected::sw(SW_OK)
            }
            Op::SetPinRetries(pin, puk) => {
                if !(self.mgmt_authenticated && self.pin_verified) {
                    return Expected::sw(SW_SECURITY);
                }
                self.factory_reset_secrets(*pin, *puk);
                Expected::sw(SW_OK)
            }
            Op::ResetApplication => {
                if !(self.pin.left == 0 && self.puk.left == 0) {
                    return Expected::sw(SW_CONDITIONS);
                }
                self.factory_reset_secrets(
                    piv_applet::DEFAULT_RETRIES,
                    piv_applet::DEFAULT_RETRIES,
                );
                self.mgmt_algorithm = ManagementAlgorithm::TripleDes;
                self.mgmt_key = DEFAULT_MANAGEMENT_KEY.to_vec();
                self.mgmt_touch = false;
                self.keys.clear();
                for (tag, value) in self.objects.iter_mut() {
                    let kept = [ObjectId::ATTESTATION_CERT, ObjectId::DISCOVERY];
                    if [ObjectId::CHUID, ObjectId::CCC]
                        .iter()
                        .any(|o| o.tag() == *tag)
                    {
                        // A fresh GUID and card identifier: learnt at the next read.
                        *value = Some(None);
                    } else if !kept.iter().any(|o| o.tag() == *tag) {
                        *value = None;
                    }
                }
                self.forget_transient();
                Expected::sw(SW_OK)
            }
            Op::Metadata(reference) => self.metadata(*reference),
        }
    }

    /// GET METADATA's answer for a reference, byte for byte.
    fn metadata(&self, reference: u8) -> Expected {
        let mut out = Vec::new();
        let pin = |out: &mut Vec<u8>, secret: &Secret, factory: &str| {
            out.extend(tlv(tag::META_ALGORITHM, &[0xFF]));
            out.extend(tlv(
                tag::META_IS_DEFAULT,
                &[u8::from(secret.value == pad(factory))],
            ));
            out.extend(tlv(tag::META_RETRIES, &[secret.limit, secret.left]));
        };
        match reference {
            0x80 => pin(&mut out, &self.pin, DEFAULT_PIN),
            0x81 => pin(&mut out, &self.puk, DEFAULT_PUK),
            0x9B => {
                out.extend(tlv(tag::META_ALGORITHM, &[self.mgmt_algorithm.id()]));
                let touch = if self.mgmt_touch {
                    TouchPolicy::Always
                } else {
                    TouchPolicy::Never
                };
                out.extend(tlv(tag::META_POLICY, &[0x00, touch.byte()]));
                out.extend(tlv(
                    tag::META_IS_DEFAULT,
                    &[u8::from(self.mgmt_key == DEFAULT_MANAGEMENT_KEY)],
                ));
            }
            slot => {
                let Some(key) = self.keys.get(&slot) else {
                    return Expected::sw(SW_REFERENCE_NOT_FOUND);
                };
                let Some(point) = &key.point else {
                    return Expected::sw(SW_OK);
                };
                out.extend(tlv(tag::META_ALGORITHM, &[key.algorithm.id()]));
                out.extend(tlv(tag::META_POLICY, &[key.pin.byte(), key.touch.byte()]));
                out.extend(tlv(tag::META_ORIGIN, &[key.origin]));
                out.extend(tlv(tag::META_PUBLIC_KEY, &tlv(tag::EC_POINT, point)));
            }
        }
        Expected::data(out)
    }

    /// The durable states a cut `op` may leave besides before and after: PIV spends a try (durably)
    /// before it compares, and gives it back (durably) before it writes a new value.
    fn cut_intermediates(&self, op: &Op) -> Vec<Model> {
        let reference = match op {
            Op::Verify(reference, _) | Op::Change { reference, .. } => *reference,
            Op::Unblock { .. } => PinReference::Puk,
            _ => return Vec::new(),
        };
        let mut spent = self.clone();
        let secret = spent.secret(reference);
        if secret.left == 0 {
            return Vec::new();
        }
        secret.left -= 1;
        let mut given_back = self.clone();
        let secret = given_back.secret(reference);
        secret.left = secret.limit;
        vec![spent, given_back]
    }
}

/// One command and its whole answer (`61 xx` followed), chained when long; `None`: the card went mute.
fn exchange(card: &mut Card, command: &Command, cut: Option<FaultPlan>) -> Option<Response> {
    let links = card_transport::chain_links(command);
    let (last, first) = links.split_last()?;
    let mut reader = DirectReader::new(card);
    for link in first {
        let response = reader.transmit(link).expect("a chain link is answered");
        if response.sw.to_u16() != SW_OK {
            return Some(response);
        }
    }
    if let Some(plan) = cut {
        card.arm_power_cut(plan);
    }
    match DirectReader::new(card).exchange(last) {
        Ok(response) => Some(response),
        Err(TransportError::Mute) => None,
        Err(error) => panic!("{error}"),
    }
}

/// The card in its state right after installation (made once per process), and the model of it.
fn template() -> &'static (CardSnapshot, Model) {
    static TEMPLATE: OnceLock<(CardSnapshot, Model)> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let mut card = new_card();
        // Printed information is read under the PIN.
        select(&mut card);
        let verify = pin_command(ins::VERIFY, 0, PinReference::Pin, &pad(DEFAULT_PIN));
        let verified = exchange(&mut card, &verify, None).expect("VERIFY is answered");
        assert_eq!(verified.sw.to_u16(), SW_OK, "the factory PIN");
        let mut objects = BTreeMap::new();
        for object in OBJECTS {
            let value = read_object(&mut card, object).map(Some);
            objects.insert(object.tag(), value);
        }
        // The snapshot is taken after the reads: the first read of `5FFF01` made the attestation
        // identity (applets/piv/tests/attestation_identity.rs covers its making, cut at every write),
        // which every input would otherwise pay for again at its final observation.
        card.reset();
        let snapshot = card.snapshot();
        let model = Model {
            pin: Secret {
                value: pad(DEFAULT_PIN),
                limit: piv_applet::DEFAULT_RETRIES,
                left: piv_applet::DEFAULT_RETRIES,
            },
            puk: Secret {
                value: pad(DEFAULT_PUK),
                limit: piv_applet::DEFAULT_RETRIES,
                left: piv_applet::DEFAULT_RETRIES,
            },
            mgmt_algorithm: ManagementAlgorithm::TripleDes,
            mgmt_key: DEFAULT_MANAGEMENT_KEY.to_vec(),
            mgmt_touch: false,
            objects,
            keys: BTreeMap::new(),
            pin_verified: false,
            pin_fresh: false,
            puk_verified: false,
            mgmt_authenticated: false,
        };
        (snapshot, model)
    })
}

fn new_card() -> Card {
    let config = CardConfig {
        clock: Clock::Fixed(1_700_000_000),
        seed: Some(11),
        ..CardConfig::default()
    };
    let registry = AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory);
    let installation = Installation {
        aid: piv_applet::aid(),
        params: Vec::new(),
        default_selected: false,
    };
    Card::create(config, &registry, &[installation], Storage::Memory).expect("a PIV card")
}

fn select(card: &mut Card) -> Response {
    let bytes = card.transmit(&SELECT_PIV).expect("a powered card answers");
    Response::from_bytes(&bytes).expect("a status word")
}

/// An object's value read on the card; `None` when absent (any refusal but `69 82` is a failure).
fn read_object(card: &mut Card, object: ObjectId) -> Option<Vec<u8>> {
    select(card);
    let response = exchange(card, &get_data(object), None).expect("GET DATA is answered");
    match response.sw.to_u16() {
        SW_OK => {
            let outer = if object == ObjectId::DISCOVERY {
                tag::DISCOVERY
            } else {
                tag::DATA
            };
            Some(
                apdu::tlv::expect(&response.data, outer)
                    .expect("53 or 7E")
                    .to_vec(),
            )
        }
        SW_NOT_FOUND => None,
        sw => panic!("GET DATA {:06X}: {sw:04X}", object.tag()),
    }
}

fn get_data(object: ObjectId) -> Command {
    let tag_bytes =
        &object.tag().to_be_bytes()[if object == ObjectId::DISCOVERY { 3 } else { 1 }..];
    Command::new(0x00, ins::GET_DATA, 0x3F, 0xFF)
        .with_data(tlv(tag::TAG_LIST, tag_bytes))
        .with_le(256)
        .expect("Le 256")
}

fn pin_command(ins: u8, p1: u8, reference: PinReference, data: &[u8]) -> Command {
    Command::new(0x00, ins, p1, reference.reference()).with_data(data.to_vec())
}

/// The command `op` sends (for the model's state before it).
fn command(model: &mut Model, op: &Op) -> Option<Command> {
    let command = match op {
        Op::Verify(reference, guess) => {
            pin_command(ins::VERIFY, 0, *reference, &model.field(*reference, *guess))
        }
        Op::Status(reference) => pin_command(ins::VERIFY, 0, *reference, &[]),
        Op::LogOut(reference) => pin_command(ins::VERIFY, 0xFF, *reference, &[]),
        Op::Change {
            reference,
            old,
            new,
        } => {
            let mut data = model.field(*reference, *old).to_vec();
            data.extend_from_slice(new);
            pin_command(ins::CHANGE_REFERENCE, 0, *reference, &data)
        }
        Op::Unblock { puk, new_pin } => {
            let mut data = model.field(PinReference::Puk, *puk).to_vec();
            data.extend_from_slice(new_pin);
            pin_command(ins::RESET_RETRY_COUNTER, 0, PinReference::Pin, &data)
        }
        Op::SetManagementKey {
            algorithm,
            key,
            touch,
        } => {
            let mut data = vec![algorithm.id(), 0x9B, key.len() as u8];
            data.extend_from_slice(key);
            Command::new(
                0x00,
                ins::SET_MANAGEMENT_KEY,
                0xFF,
                if *touch { 0xFE } else { 0xFF },
            )
            .with_data(data)
        }
        Op::PutData(object, value) => {
            let tag_bytes = &object.tag().to_be_bytes()[1..];
            let mut data = tlv(tag::TAG_LIST, tag_bytes);
            data.extend(tlv(tag::DATA, value));
            Command::new(0x00, ins::PUT_DATA, 0x3F, 0xFF).with_data(data)
        }
        Op::GetData(object) => get_data(*object),
        Op::Generate {
            slot,
            algorithm,
            pin,
            touch,
        } => {
            let mut control = tlv(tag::ALGORITHM, &[algorithm.id()]);
            if *pin != PinPolicy::Default {
                control.extend(tlv(tag::PIN_POLICY, &[pin.byte()]));
            }
            if *touch != TouchPolicy::Default {
                control.extend(tlv(tag::TOUCH_POLICY, &[touch.byte()]));
            }
            Command::new(0x00, ins::GENERATE_ASYMMETRIC, 0x00, slot.reference())
                .with_data(tlv(tag::GENERATE_CONTROL, &control))
                .with_le(256)
                .expect("Le 256")
        }
        Op::Import {
            slot,
            algorithm,
            scalar,
            pin,
        } => {
            let mut data = tlv(tag::EC_PRIVATE, scalar);
            if *pin != PinPolicy::Default {
                data.extend(tlv(tag::PIN_POLICY, &[pin.byte()]));
            }
            Command::new(0x00, ins::IMPORT_KEY, algorithm.id(), slot.reference()).with_data(data)
        }
        Op::Sign(slot, algorithm, hash) => piv_host::sign_command(*slot, *algorithm, hash),
        Op::Move { from, to } => Command::new(
            0x00,
            ins::MOVE_KEY,
            to.map_or(0xFF, KeySlot::reference),
            from.reference(),
        ),
        Op::SetPinRetries(pin, puk) => Command::new(0x00, ins::SET_PIN_RETRIES, *pin, *puk),
        Op::ResetApplication => Command::new(0x00, ins::RESET, 0, 0),
        Op::Metadata(reference) => Command::new(0x00, ins::GET_METADATA, 0, *reference)
            .with_le(256)
            .expect("Le 256"),
        Op::Raw(_) | Op::Authenticate(_) | Op::WarmReset | Op::Cut(_) => return None,
    };
    Some(command)
}

/// Whether a cut may be armed for `op`: printed information cannot be read back without the PIN, so a
/// cut write of it could not be judged.
fn may_cut(op: &Op) -> bool {
    !matches!(op, Op::PutData(ObjectId::PRINTED_INFO, _))
}

struct Session {
    card: Card,
    model: Model,
    /// A raw APDU or a reset may have left another selection or a chain behind.
    needs_select: bool,
    armed: Option<FaultPlan>,
}

impl Session {
    fn run(&mut self, op: &Op, index: usize) {
        if let Op::Cut(plan) = op {
            self.armed = Some(*plan);
            return;
        }
        let cut = self.armed.take().filter(|_| may_cut(op));
        match op {
            Op::Raw(apdu) => return self.raw(apdu),
            Op::WarmReset => {
                self.card.reset();
                self.model.forget_transient();
                self.needs_select = true;
                return;
            }
            _ => {}
        }
        if self.needs_select {
            self.reselect();
        }
        let before = self.model.clone();
        let mut after = before.clone();
        let expected = after.apply(op);
        let answer = match op {
            Op::Authenticate(choice) => Some(self.authenticate(&before.management_key(choice))),
            _ => {
                let mut model = before.clone();
                let command = command(&mut model, op).expect("every other op is one command");
                exchange(&mut self.card, &command, cut)
            }
        };
        match answer {
            Some(response) => {
                self.check(op, index, &expected, &response, &mut after);
                self.model = after;
            }
            None => {
                assert!(cut.is_some(), "op {index} {op:?}: the card went mute uncut");
                let mut candidates = vec![before.clone()];
                candidates.extend(before.cut_intermediates(op));
                candidates.push(after);
                self.card.power_on();
                self.needs_select = true;
                self.model = self.resolve(candidates, &format!("op {index} {op:?}, cut {cut:?}"));
            }
        }
    }

    fn raw(&mut self, apdu: &[u8]) {
        self.needs_select = true;
        let answer = self.card.transmit(apdu).expect("a powered card answers");
        assert!(answer.len() >= 2, "{apdu:02X?}: {answer:02X?}");
        let sw = u16::from_be_bytes([answer[answer.len() - 2], answer[answer.len() - 1]]);
        assert_ne!(sw, SW_UNKNOWN, "{apdu:02X?}: the card failed on its own");
    }

    /// SELECT PIV on the basic channel; a chain left pending is interrupted first (`68 83`).
    fn reselect(&mut self) {
        let mut response = select(&mut self.card);
        if response.sw.to_u16() == SW_CHAIN_INTERRUPTED {
            response = select(&mut self.card);
        }
        assert_eq!(response.sw.to_u16(), SW_OK, "SELECT PIV");
        assert_eq!(response.data, piv_applet::SELECT_RESPONSE, "SELECT PIV");
        self.needs_select = false;
    }

    fn authenticate(&mut self, (algorithm, key): &(ManagementAlgorithm, Vec<u8>)) -> Response {
        let key = ManagementKey::new(*algorithm, key).expect("a key of the algorithm's length");
        let mut reader = DirectReader::new(&mut self.card);
        match PivSession::attach(&mut reader).authenticate(&key) {
            Ok(()) => Response::new(Vec::new(), StatusWord::SUCCESS),
            Err(error) => Response::new(
                Vec::new(),
                error.status_word().unwrap_or_else(|| panic!("{error}")),
            ),
        }
    }

    /// Compares an answer with the prediction; learns what only the card decides (a generated key).
    fn check(
        &self,
        op: &Op,
        index: usize,
        expected: &Expected,
        response: &Response,
        after: &mut Model,
    ) {
        let sw = response.sw.to_u16();
        assert_eq!(
            sw, expected.sw,
            "op {index} {op:?}: status word {sw:04X}, model {:04X}",
            expected.sw
        );
        if let Some(data) = &expected.data {
            assert_eq!(&response.data, data, "op {index} {op:?}: data");
        }
        if sw != SW_OK {
            assert!(
                response.data.is_empty(),
                "op {index} {op:?}: data with a refusal"
            );
            return;
        }
        match op {
            Op::Generate {
                slot, algorithm, ..
            } => {
                let template = apdu::tlv::expect(&response.data, tag::PUBLIC_KEY).expect("7F49");
                let point = apdu::tlv::expect(template, tag::EC_POINT).expect("86");
                let on_curve = match algorithm {
                    KeyAlgorithm::EccP384 => p384::PublicKey::from_sec1_bytes(point).is_ok(),
                    _ => p256::PublicKey::from_sec1_bytes(point).is_ok(),
                };
                assert!(
                    on_curve,
                    "op {index}: a point on the curve of {algorithm:?}"
                );
                if let Some(key) = after.keys.get_mut(&slot.reference()) {
                    key.point = Some(point.to_vec());
                }
            }
            Op::Sign(slot, algorithm, hash) => {
                let template = apdu::tlv::expect(&response.data, tag::DYNAMIC_AUTH).expect("7C");
                let der = apdu::tlv::expect(template, tag::RESPONSE).expect("82");
                let point = after.keys[&slot.reference()]
                    .point
                    .clone()
                    .expect("a known key");
                assert!(
                    verifies(*algorithm, &point, hash, der),
                    "op {index}: the signature does not verify"
                );
            }
            Op::GetData(object) => {
                if let Some(slot @ Some(None)) = after.objects.get_mut(&object.tag()) {
                    let value = apdu::tlv::expect(&response.data, tag::DATA).expect("53");
                    *slot = Some(Some(value.to_vec()));
                }
            }
            _ => {}
        }
    }

    /// The card's observable durable state: GET METADATA of PIN, PUK, management key and every slot, and
    /// GET DATA of every object readable without the PIN. The card is reset first.
    fn observe(&mut self) -> Vec<(u8, Response)> {
        self.card.reset();
        self.reselect();
        let mut seen = Vec::new();
        let references = [0x80, 0x81, 0x9B].into_iter().chain(SLOTS);
        for reference in references {
            let response = exchange(
                &mut self.card,
                &command(&mut self.model.clone(), &Op::Metadata(reference)).expect("a command"),
                None,
            )
            .expect("GET METADATA is answered");
            seen.push((reference, response));
        }
        for (n, object) in OBJECTS.iter().enumerate() {
            if *object != ObjectId::PRINTED_INFO {
                let response = exchange(&mut self.card, &get_data(*object), None)
                    .expect("GET DATA is answered");
                seen.push((n as u8, response));
            }
        }
        seen
    }

    /// Whether `model` (transient state forgotten) shows as `seen`; learns unknown points and values.
    fn matches(model: &mut Model, seen: &[(u8, Response)]) -> bool {
        let metadata = seen.iter().take(3 + SLOTS.len());
        for (reference, response) in metadata {
            let expected = model.metadata(*reference);
            if response.sw.to_u16() != expected.sw {
                return false;
            }
            match expected.data {
                Some(data) if data != response.data => return false,
                Some(_) => {}
                None if expected.sw == SW_OK => {
                    // A key generated by a cut GENERATE: its point is the card's.
                    let Ok(Some(inner)) = apdu::tlv::find(&response.data, tag::META_PUBLIC_KEY)
                    else {
                        return false;
                    };
                    let Ok(Some(point)) = apdu::tlv::find(inner, tag::EC_POINT) else {
                        return false;
                    };
                    let key = model.keys.get_mut(reference).expect("a key");
                    key.point = Some(point.to_vec());
                    if model.metadata(*reference).data.as_ref() != Some(&response.data) {
                        return false;
                    }
                }
                None => {}
            }
        }
        for (n, response) in seen.iter().skip(3 + SLOTS.len()) {
            let object = OBJECTS[usize::from(*n)];
            let expected = model.apply(&Op::GetData(object));
            if response.sw.to_u16() != expected.sw {
                return false;
            }
            match expected.data {
                Some(data) if data != response.data => return false,
                Some(_) => {}
                None if expected.sw == SW_OK => {
                    let Ok(value) = apdu::tlv::expect(&response.data, tag::DATA) else {
                        return false;
                    };
                    model
                        .objects
                        .insert(object.tag(), Some(Some(value.to_vec())));
                }
                None => {}
            }
        }
        true
    }

    /// Which candidate the card is in after a cut (or at the end: the one model), its transient state
    /// gone. Panics if none fits.
    fn resolve(&mut self, candidates: Vec<Model>, context: &str) -> Model {
        let seen = self.observe();
        let fitting: Vec<Model> = candidates
            .into_iter()
            .filter_map(|mut model| {
                model.forget_transient();
                Self::matches(&mut model, &seen).then_some(model)
            })
            .collect();
        let fitting = unique(fitting);
        assert!(
            !fitting.is_empty(),
            "{context}: the card is in none of the states the model allows; it shows {seen:02X?}"
        );
        let mut fitting = fitting;
        // Same metadata, different secrets: ask the card the way a host would.
        let first_key = (fitting[0].mgmt_algorithm, fitting[0].mgmt_key.clone());
        let same_as_first = |m: &Model| {
            m.mgmt_algorithm == first_key.0 && same_key(first_key.0, &m.mgmt_key, &first_key.1)
        };
        if !fitting.iter().all(same_as_first) {
            let accepted = self.authenticate(&first_key).sw.to_u16() == SW_OK;
            fitting.retain(|m| same_as_first(m) == accepted);
            self.card.reset();
            self.needs_select = true;
        }
        for reference in [PinReference::Pin, PinReference::Puk] {
            let first = fitting[0].clone().secret(reference).clone();
            if fitting.iter_mut().all(|m| *m.secret(reference) == first) || first.left == 0 {
                continue;
            }
            if self.needs_select {
                self.reselect();
            }
            let response = exchange(
                &mut self.card,
                &pin_command(ins::VERIFY, 0, reference, &first.value),
                None,
            )
            .expect("VERIFY is answered");
            let right = response.sw.to_u16() == SW_OK;
            fitting.retain_mut(|m| {
                let secret = m.secret(reference);
                if right {
                    secret.left = secret.limit;
                    secret.value == first.value
                } else {
                    secret.left -= 1;
                    secret.value != first.value
                }
            });
            self.card.reset();
            self.needs_select = true;
        }
        // Keys that are the same cipher and equally (non-)default cannot be told apart by anyone: the
        // card behaves the same either way.
        let mut fitting = unique(fitting);
        let first = fitting[0].clone();
        fitting.retain(|m| {
            let mut m = m.clone();
            if same_key(m.mgmt_algorithm, &m.mgmt_key, &first.mgmt_key)
                && (m.mgmt_key == DEFAULT_MANAGEMENT_KEY)
                    == (first.mgmt_key == DEFAULT_MANAGEMENT_KEY)
            {
                m.mgmt_key = first.mgmt_key.clone();
            }
            m != first
        });
        fitting.insert(0, first);
        assert!(
            fitting.len() == 1,
            "{context}: {} states fit and the card cannot tell them apart: {fitting:?}",
            fitting.len()
        );
        fitting.remove(0)
    }
}

/// Runs one input: decoded operations, each answer checked against the model, then the whole state.
pub fn piv_session(data: &[u8]) {
    thread_local! {
        /// Cards are cheap to restore and costly to create (installation makes the attestation key):
        /// each thread keeps one, and every input starts from the template's snapshot.
        static SPARE: std::cell::RefCell<Option<Card>> = const { std::cell::RefCell::new(None) };
    }
    let (snapshot, model) = template();
    let mut card = SPARE
        .with(|spare| spare.borrow_mut().take())
        .unwrap_or_else(new_card);
    card.restore(snapshot).expect("a snapshot restores");
    let mut session = Session {
        card,
        model: model.clone(),
        needs_select: true,
        armed: None,
    };
    for (index, op) in decode(data).iter().enumerate() {
        session.run(op, index);
    }
    let model = session.model.clone();
    session.resolve(vec![model], "at the end");
    SPARE.with(|spare| *spare.borrow_mut() = Some(session.card));
}

/// The distinct models of a list, in order.
fn unique(models: Vec<Model>) -> Vec<Model> {
    let mut out: Vec<Model> = Vec::new();
    for model in models {
        if !out.contains(&model) {
            out.push(model);
        }
    }
    out
}
