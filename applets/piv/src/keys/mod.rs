//! Asymmetric key slots (P-256 and P-384): GENERATE, IMPORT, sign / ECDH through GENERAL AUTHENTICATE,
//! MOVE / DELETE, and the slot part of GET METADATA.
//!
//! A key record (`REC_KEY_BASE + slot`) is `alg, pin policy, touch policy, origin, d[n], point[2n+1]`,
//! `n` the curve's scalar length (32 for P-256, 48 for P-384).

use card_os::apdu::tlv;
use card_os::crypto::{hazmat, Crypto, CryptoError, P256KeyPair, P384KeyPair};
use card_os::Secret;
use card_os::{CardError, Context, Reply, Requirement};
use piv_types::{tag, KeyAlgorithm, KeySlot, PinPolicy, TouchPolicy};
use zeroize::Zeroizing;

use crate::commands::SlotOp;
use crate::state::{self, PIN, REC_KEY_BASE, TR_PIN_FRESH};

/// Where a key came from (metadata tag `03`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Generated = 0x01,
    Imported = 0x02,
}

impl Origin {
    fn from_byte(byte: u8) -> Option<Self> {
        [Origin::Generated, Origin::Imported]
            .into_iter()
            .find(|origin| *origin as u8 == byte)
    }
}

/// A key pair on one of the curves this card implements.
pub enum KeyPair {
    P256(P256KeyPair),
    P384(P384KeyPair),
}

impl KeyPair {
    fn generate(crypto: &mut Crypto, algorithm: KeyAlgorithm) -> Result<Self, CardError> {
        Ok(match algorithm {
            KeyAlgorithm::EccP256 => KeyPair::P256(crypto.generate_p256()?),
            KeyAlgorithm::EccP384 => KeyPair::P384(crypto.generate_p384()?),
            other => return Err(not_implemented(other)),
        })
    }

    fn from_private(algorithm: KeyAlgorithm, private: &[u8]) -> Result<Self, CryptoError> {
        match algorithm {
            KeyAlgorithm::EccP256 => Crypto::p256_from_private(private).map(KeyPair::P256),
            KeyAlgorithm::EccP384 => Crypto::p384_from_private(private).map(KeyPair::P384),
            _ => Err(CryptoError::InvalidKey),
        }
    }

    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            KeyPair::P256(_) => KeyAlgorithm::EccP256,
            KeyPair::P384(_) => KeyAlgorithm::EccP384,
        }
    }

    fn private_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            KeyPair::P256(pair) => Zeroizing::new(pair.private_bytes().to_vec()),
            KeyPair::P384(pair) => Zeroizing::new(pair.private_bytes().to_vec()),
        }
    }

    fn public_point(&self) -> Vec<u8> {
        match self {
            KeyPair::P256(pair) => pair.public_point(),
            KeyPair::P384(pair) => pair.public_point(),
        }
    }

    /// ECDSA over a hash the host computed (of up to the curve's scalar length).
    pub fn sign_prehash(&self, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            KeyPair::P256(pair) => hazmat::sign_prehash(pair, hash),
            KeyPair::P384(pair) => hazmat::sign_prehash_p384(pair, hash),
        }
    }

    fn ecdh(&self, point: &[u8]) -> Result<Secret, CryptoError> {
        match self {
            KeyPair::P256(pair) => Crypto::ecdh(pair, point),
            KeyPair::P384(pair) => Crypto::ecdh_p384(pair, point),
        }
    }
}

/// A stored key, private part zeroized on drop.
pub struct StoredKey {
    pub algorithm: KeyAlgorithm,
    pub pin_policy: PinPolicy,
    pub touch_policy: TouchPolicy,
    pub origin: Origin,
    private: Zeroizing<Vec<u8>>,
    pub public_point: Vec<u8>,
}

impl std::fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredKey")
            .field("algorithm", &self.algorithm)
            .field("pin_policy", &self.pin_policy)
            .field("touch_policy", &self.touch_policy)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl StoredKey {
    pub fn key_pair(&self) -> Result<KeyPair, CardError> {
        Ok(KeyPair::from_private(self.algorithm, &self.private)?)
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            4 + self.private.len() + self.public_point.len(),
        ));
        out.extend_from_slice(&[
            self.algorithm.id(),
            self.pin_policy.byte(),
            self.touch_policy.byte(),
            self.origin as u8,
        ]);
        out.extend_from_slice(&self.private);
        out.extend_from_slice(&self.public_point);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let [alg, pin, touch, origin, rest @ ..] = bytes else {
            return None;
        };
        let algorithm = KeyAlgorithm::from_id(*alg)
            .filter(|a| crate::commands::SUPPORTED_KEY_ALGORITHMS.contains(a))?;
        let scalar_len = algorithm.scalar_len()?;
        if rest.len() != scalar_len + 1 + 2 * scalar_len {
            return None;
        }
        let (private, public) = rest.split_at(scalar_len);
        Some(Self {
            algorithm,
            pin_policy: PinPolicy::from_byte(*pin)?,
            touch_policy: TouchPolicy::from_byte(*touch)?,
            origin: Origin::from_byte(*origin)?,
            private: Zeroizing::new(private.to_vec()),
            public_point: public.to_vec(),
        })
    }

    fn from_pair(
        pair: &KeyPair,
        pin_policy: PinPolicy,
        touch_policy: TouchPolicy,
        origin: Origin,
    ) -> Self {
        Self {
            algorithm: pair.algorithm(),
            pin_policy,
            touch_policy,
            origin,
            private: pair.private_bytes(),
            public_point: pair.public_point(),
        }
    }
}

fn record(slot: KeySlot) -> u16 {
    REC_KEY_BASE + u16::from(slot.reference())
}

/// The key in a slot, if any.
pub fn load(ctx: &mut Context<'_>, slot: KeySlot) -> Option<StoredKey> {
    ctx.store().get(record(slot)).and_then(StoredKey::decode)
}

pub fn store(ctx: &mut Context<'_>, slot: KeySlot, key: &StoredKey) -> Result<(), CardError> {
    ctx.store().put(record(slot), &key.encode())?;
    Ok(())
}

pub fn delete(ctx: &mut Context<'_>, slot: KeySlot) -> Result<(), CardError> {
    ctx.store().remove(record(slot))?;
    Ok(())
}

/// `86 41 04‖X‖Y`, the public key as GENERATE and metadata present it.
pub fn point_tlv(point: &[u8]) -> Vec<u8> {
    tlv::encode(tag::EC_POINT, point)
}

/// The refusal for an algorithm the parser accepted but this module cannot run: a card bug, so opaque.
fn not_implemented(algorithm: KeyAlgorithm) -> CardError {
    tracing::error!(
        ?algorithm,
        "key algorithm accepted by the parser has no implementation"
    );
    CardError::Internal("key algorithm without an implementation")
}

/// Stores a key pair made elsewhere on the card (the attestation key, derived from its seed).
pub fn store_pair(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    pair: &KeyPair,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
) -> Result<StoredKey, CardError> {
    let key = StoredKey::from_pair(pair, pin_policy, touch_policy, Origin::Generated);
    store(ctx, slot, &key)?;
    Ok(key)
}

/// Generates a key on the card (policies already resolved).
pub fn generate_into(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    algorithm: KeyAlgorithm,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
) -> Result<StoredKey, CardError> {
    let pair = KeyPair::generate(ctx.crypto(), algorithm)?;
    store_pair(ctx, slot, &pair, pin_policy, touch_policy)
}

/// GENERATE: answers `7F 49 43 86 41 04‖X‖Y`.
pub fn generate(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    algorithm: KeyAlgorithm,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
    reply: &mut Reply,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    let key = generate_into(ctx, slot, algorithm, pin_policy, touch_policy)?;
    reply.push(&tlv::encode(tag::PUBLIC_KEY, &point_tlv(&key.public_point)))
}

/// IMPORT KEY: the scalar has the algorithm's length (parser); here it must be a valid key (`6A 80`).
pub fn import(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    algorithm: KeyAlgorithm,
    private: &[u8],
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    let pair = KeyPair::from_private(algorithm, private).map_err(|_| CardError::InvalidData)?;
    let key = StoredKey::from_pair(&pair, pin_policy, touch_policy, Origin::Imported);
    store(ctx, slot, &key)
}

/// MOVE KEY (`to = None`: delete). The destination must be empty.
pub fn move_key(
    ctx: &mut Context<'_>,
    to: Option<KeySlot>,
    from: KeySlot,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    let key = load(ctx, from).ok_or(CardError::ReferenceNotFound)?;
    match to {
        None => delete(ctx, from),
        Some(to) if to == from => Ok(()),
        Some(to) => {
            if load(ctx, to).is_some() {
                return Err(CardError::ConditionsNotSatisfied);
            }
            ctx.store().begin_transaction()?;
            store(ctx, to, &key)?;
            delete(ctx, from)?;
            ctx.store().commit_transaction()?;
            Ok(())
        }
    }
}

/// The PIN policy gate before a private-key operation. PIN-always keys consume the fresh verification.
fn authorize(ctx: &mut Context<'_>, key: &StoredKey) -> Result<(), CardError> {
    match key.pin_policy {
        PinPolicy::Never | PinPolicy::Default => Ok(()),
        PinPolicy::Once => state::require_pin(ctx),
        PinPolicy::Always => {
            let fresh = ctx.transient().get(TR_PIN_FRESH).is_some();
            if !(fresh && PIN.is_validated(ctx)) {
                return Err(CardError::SecurityStatusNotSatisfied(
                    Requirement::PinForEachUse,
                ));
            }
            ctx.transient().clear(TR_PIN_FRESH);
            Ok(())
        }
    }
}

/// GENERAL AUTHENTICATE with an asymmetric key: sign a hash or do ECDH. The operation's input already
/// fits the algorithm in P1; here the slot must hold a key (`6A 88`) of that algorithm (`6A 86`), and
/// its PIN policy must be met (`69 82`).
pub fn authenticate(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    algorithm: KeyAlgorithm,
    op: SlotOp,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let key = load(ctx, slot).ok_or(CardError::ReferenceNotFound)?;
    if key.algorithm != algorithm {
        return Err(CardError::IncorrectP1P2);
    }
    authorize(ctx, &key)?;
    let pair = key.key_pair()?;
    let value = match op {
        SlotOp::Sign { message } => pair.sign_prehash(&message)?,
        SlotOp::Ecdh { point } => {
            // The length is the curve's (parser); whether the point is on the curve only ECDH knows.
            let shared = pair.ecdh(&point).map_err(|_| CardError::InvalidData)?;
            shared.expose().to_vec()
        }
    };
    reply.push(&tlv::encode(
        tag::DYNAMIC_AUTH,
        &tlv::encode(tag::RESPONSE, &value),
    ))
}

/// GET METADATA of a key slot: `01 alg`, `02 pin touch`, `03 origin`, `04 { 86 41 04… }`.
pub fn metadata(ctx: &mut Context<'_>, slot: KeySlot, reply: &mut Reply) -> Result<(), CardError> {
    let key = load(ctx, slot).ok_or(CardError::ReferenceNotFound)?;
    let mut out = Vec::new();
    tlv::write(&mut out, tag::META_ALGORITHM, &[key.algorithm.id()]);
    tlv::write(
        &mut out,
        tag::META_POLICY,
        &[key.pin_policy.byte(), key.touch_policy.byte()],
    );
    tlv::write(&mut out, tag::META_ORIGIN, &[key.origin as u8]);
    tlv::write(
        &mut out,
        tag::META_PUBLIC_KEY,
        &point_tlv(&key.public_point),
    );
    reply.push(&out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn record_round_trip_and_debug_hides_private() {
        let mut crypto = Crypto::new(card_os::crypto::CardRng::seeded(3, 0));
        let pair = KeyPair::P256(crypto.generate_p256().unwrap());
        let key =
            StoredKey::from_pair(&pair, PinPolicy::Once, TouchPolicy::Never, Origin::Imported);
        let back = StoredKey::decode(&key.encode()).unwrap();
        assert_eq!(back.public_point, pair.public_point());
        assert_eq!(back.origin, Origin::Imported);
        assert_eq!(back.pin_policy, PinPolicy::Once);
        assert!(!format!("{back:?}").contains("private"));
        assert!(StoredKey::decode(&key.encode()[1..]).is_none());
    }
}
