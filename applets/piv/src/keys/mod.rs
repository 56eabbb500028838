//! Asymmetric key slots (RSA 1024–4096, P-256 and P-384): GENERATE, IMPORT, sign / decrypt / ECDH
//! through GENERAL AUTHENTICATE, MOVE / DELETE, and the slot part of GET METADATA.
//!
//! A key record (`REC_KEY_BASE + slot`) is `alg, pin policy, touch policy, origin`, then
//! - for a curve: `d[n] ‖ point[2n+1]`, `n` the scalar length (32 for P-256, 48 for P-384);
//! - for RSA: card-os's stored form `e[4] ‖ p[k/2] ‖ q[k/2] ‖ d[k]`, then the modulus `n[k]`, `k` the
//!   modulus length — kept so GENERATE's answer, metadata and attestation need no key rebuild.

use card_os::apdu::tlv;
use card_os::crypto::{
    hazmat, Crypto, CryptoError, Ed25519KeyPair, P256KeyPair, P384KeyPair, RsaBits, RsaKeyPair,
    X25519KeyPair,
};
use card_os::Secret;
use card_os::{CardError, Context, Reply, Requirement};
use piv_types::{tag, KeyAlgorithm, KeySlot, PinPolicy, TouchPolicy};
use zeroize::Zeroizing;

use crate::commands::{PrivateKeyImport, SlotOp};
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

/// The RSA modulus size of a PIV RSA algorithm, `None` for the curves.
fn rsa_bits(algorithm: KeyAlgorithm) -> Option<RsaBits> {
    match algorithm {
        KeyAlgorithm::Rsa1024 => Some(RsaBits::Rsa1024),
        KeyAlgorithm::Rsa2048 => Some(RsaBits::Rsa2048),
        KeyAlgorithm::Rsa3072 => Some(RsaBits::Rsa3072),
        KeyAlgorithm::Rsa4096 => Some(RsaBits::Rsa4096),
        _ => None,
    }
}

/// A key pair of one of the algorithms this card implements.
pub enum KeyPair {
    P256(P256KeyPair),
    P384(P384KeyPair),
    /// Boxed: an RSA key is several times the size of an EC one, and a card holds few.
    Rsa(Box<RsaKeyPair>),
    Ed25519(Ed25519KeyPair),
    X25519(X25519KeyPair),
}

impl KeyPair {
    fn generate(crypto: &mut Crypto, algorithm: KeyAlgorithm) -> Result<Self, CardError> {
        Ok(match (algorithm, rsa_bits(algorithm)) {
            (KeyAlgorithm::EccP256, _) => KeyPair::P256(crypto.generate_p256()?),
            (KeyAlgorithm::EccP384, _) => KeyPair::P384(crypto.generate_p384()?),
            (KeyAlgorithm::Ed25519, _) => KeyPair::Ed25519(crypto.generate_ed25519()?),
            (KeyAlgorithm::X25519, _) => KeyPair::X25519(crypto.generate_x25519()?),
            (_, Some(bits)) => KeyPair::Rsa(Box::new(crypto.generate_rsa(bits)?)),
            (other, None) => return Err(not_implemented(other)),
        })
    }

    fn from_private(algorithm: KeyAlgorithm, private: &[u8]) -> Result<Self, CryptoError> {
        match algorithm {
            KeyAlgorithm::EccP256 => Crypto::p256_from_private(private).map(KeyPair::P256),
            KeyAlgorithm::EccP384 => Crypto::p384_from_private(private).map(KeyPair::P384),
            KeyAlgorithm::Ed25519 => Crypto::ed25519_from_private(private).map(KeyPair::Ed25519),
            KeyAlgorithm::X25519 => Crypto::x25519_from_private(private).map(KeyPair::X25519),
            other if rsa_bits(other).is_some() => {
                let pair = Crypto::rsa_from_private(private)?;
                if Some(pair.size()) != rsa_bits(other) {
                    return Err(CryptoError::InvalidKey);
                }
                Ok(KeyPair::Rsa(Box::new(pair)))
            }
            _ => Err(CryptoError::InvalidKey),
        }
    }

    /// The key an IMPORT KEY carries (its lengths already checked by the parser).
    fn import(algorithm: KeyAlgorithm, private: &PrivateKeyImport) -> Result<Self, CryptoError> {
        match (private, rsa_bits(algorithm)) {
            (PrivateKeyImport::Ec(scalar), None) => Self::from_private(algorithm, scalar.expose()),
            (PrivateKeyImport::Rsa(crt), Some(bits)) => Crypto::rsa_from_crt(
                bits,
                crt.p.expose(),
                crt.q.expose(),
                crt.dp.expose(),
                crt.dq.expose(),
                crt.qinv.expose(),
            )
            .map(|pair| KeyPair::Rsa(Box::new(pair))),
            _ => Err(CryptoError::InvalidKey),
        }
    }

    fn algorithm(&self) -> KeyAlgorithm {
        match self {
            KeyPair::P256(_) => KeyAlgorithm::EccP256,
            KeyPair::P384(_) => KeyAlgorithm::EccP384,
            KeyPair::Ed25519(_) => KeyAlgorithm::Ed25519,
            KeyPair::X25519(_) => KeyAlgorithm::X25519,
            KeyPair::Rsa(pair) => match pair.size() {
                RsaBits::Rsa1024 => KeyAlgorithm::Rsa1024,
                RsaBits::Rsa2048 => KeyAlgorithm::Rsa2048,
                RsaBits::Rsa3072 => KeyAlgorithm::Rsa3072,
                RsaBits::Rsa4096 => KeyAlgorithm::Rsa4096,
            },
        }
    }

    fn private_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            KeyPair::P256(pair) => Zeroizing::new(pair.private_bytes().to_vec()),
            KeyPair::P384(pair) => Zeroizing::new(pair.private_bytes().to_vec()),
            KeyPair::Rsa(pair) => pair.private_bytes(),
            KeyPair::Ed25519(pair) => Zeroizing::new(pair.private_bytes().to_vec()),
            KeyPair::X25519(pair) => Zeroizing::new(pair.private_bytes().to_vec()),
        }
    }

    fn public_key(&self) -> PublicKey {
        match self {
            KeyPair::P256(pair) => PublicKey::Ec(pair.public_point()),
            KeyPair::P384(pair) => PublicKey::Ec(pair.public_point()),
            KeyPair::Ed25519(pair) => PublicKey::Ec(pair.public_key().to_vec()),
            KeyPair::X25519(pair) => PublicKey::Ec(pair.public_key().to_vec()),
            KeyPair::Rsa(pair) => PublicKey::Rsa {
                modulus: pair.modulus(),
                exponent: pair.public_exponent(),
            },
        }
    }

    /// ECDSA over a hash the host computed (of up to the curve's scalar length). RSA keys do not
    /// sign hashes: the host pads, the card applies the raw private operation ([`Self::private_op`]).
    pub fn sign_prehash(&self, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
        match self {
            KeyPair::P256(pair) => hazmat::sign_prehash(pair, hash),
            KeyPair::P384(pair) => hazmat::sign_prehash_p384(pair, hash),
            _ => Err(CryptoError::SignatureFailed),
        }
    }

    /// What GENERAL AUTHENTICATE's `81` item asks of this key: ECDSA of a hash; Ed25519 of the whole
    /// message; or for RSA the raw private operation on one modulus-sized block — a PKCS#1 signature
    /// block the host padded, or a ciphertext to decrypt (the host strips the padding). The result
    /// may be a plaintext.
    fn private_op(
        &self,
        crypto: &mut Crypto,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CardError> {
        match self {
            KeyPair::Rsa(pair) => {
                hazmat::rsa_private(crypto, pair, input).map_err(|error| match error {
                    // A block not below the modulus: the host's input, not the card's fault.
                    CryptoError::BadBlockLength => CardError::InvalidData,
                    other => other.into(),
                })
            }
            KeyPair::Ed25519(pair) => Ok(Zeroizing::new(pair.sign(input).to_vec())),
            _ => Ok(Zeroizing::new(self.sign_prehash(input)?)),
        }
    }

    fn ecdh(&self, point: &[u8]) -> Result<Secret, CryptoError> {
        match self {
            KeyPair::P256(pair) => Crypto::ecdh(pair, point),
            KeyPair::P384(pair) => Crypto::ecdh_p384(pair, point),
            KeyPair::X25519(pair) => pair.agree(point),
            KeyPair::Rsa(_) | KeyPair::Ed25519(_) => Err(CryptoError::InvalidKey),
        }
    }
}

/// The public half of a stored key, as GENERATE and GET METADATA present it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// The `86` value: SEC1 uncompressed point `04 ‖ X ‖ Y` on P-256 and P-384, the raw 32-byte key
    /// for Ed25519 and X25519 (as YubiKey 5.7 answers).
    Ec(Vec<u8>),
    /// Big-endian modulus (exactly the modulus length) and public exponent (no leading zeros).
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
}

impl PublicKey {
    /// `86 L point`, or `81 L n 82 L e`: the items of the `7F49` template.
    pub fn items(&self) -> Vec<u8> {
        match self {
            PublicKey::Ec(point) => tlv::encode(tag::EC_POINT, point),
            PublicKey::Rsa { modulus, exponent } => {
                let mut out = tlv::encode(tag::RSA_MODULUS, modulus);
                tlv::write(&mut out, tag::RSA_EXPONENT, exponent);
                out
            }
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
    pub public: PublicKey,
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
        let public = match &self.public {
            PublicKey::Ec(point) => point,
            // The exponent is the first field of the private part.
            PublicKey::Rsa { modulus, .. } => modulus,
        };
        let mut out = Zeroizing::new(Vec::with_capacity(4 + self.private.len() + public.len()));
        out.extend_from_slice(&[
            self.algorithm.id(),
            self.pin_policy.byte(),
            self.touch_policy.byte(),
            self.origin as u8,
        ]);
        out.extend_from_slice(&self.private);
        out.extend_from_slice(public);
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let [alg, pin, touch, origin, rest @ ..] = bytes else {
            return None;
        };
        let algorithm = KeyAlgorithm::from_id(*alg)
            .filter(|a| crate::commands::SUPPORTED_KEY_ALGORITHMS.contains(a))?;
        let (private, public) = match (algorithm.scalar_len(), algorithm.rsa_modulus_len()) {
            (Some(n), _) if rest.len() == n + public_point_len(algorithm, n) => {
                let (private, point) = rest.split_at(n);
                (private, PublicKey::Ec(point.to_vec()))
            }
            (_, Some(k)) if rest.len() == 4 + 3 * k => {
                let (private, modulus) = rest.split_at(4 + 2 * k);
                let exponent = &private[..4];
                let exponent = &exponent[exponent.iter().take_while(|&&b| b == 0).count()..];
                (
                    private,
                    PublicKey::Rsa {
                        modulus: modulus.to_vec(),
                        exponent: exponent.to_vec(),
                    },
                )
            }
            _ => return None,
        };
        Some(Self {
            algorithm,
            pin_policy: PinPolicy::from_byte(*pin)?,
            touch_policy: TouchPolicy::from_byte(*touch)?,
            origin: Origin::from_byte(*origin)?,
            private: Zeroizing::new(private.to_vec()),
            public,
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
            public: pair.public_key(),
        }
    }
}

/// The length of a curve key's public value: an uncompressed point, or 32 bytes on Curve25519.
fn public_point_len(algorithm: KeyAlgorithm, scalar_len: usize) -> usize {
    match algorithm {
        KeyAlgorithm::Ed25519 | KeyAlgorithm::X25519 => scalar_len,
        _ => 1 + 2 * scalar_len,
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

/// GENERATE: answers `7F 49 { 86 04‖X‖Y }` for a curve, `7F 49 { 81 n 82 e }` for RSA.
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
    reply.push(&tlv::encode(tag::PUBLIC_KEY, &key.public.items()))
}

/// IMPORT KEY: the parts have the algorithm's lengths (parser); here they must make a valid key —
/// a scalar in range, or RSA primes of the size whose CRT values match (`6A 80`).
pub fn import(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    algorithm: KeyAlgorithm,
    private: &PrivateKeyImport,
    pin_policy: PinPolicy,
    touch_policy: TouchPolicy,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    let pair = KeyPair::import(algorithm, private).map_err(|_| CardError::InvalidData)?;
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

/// GENERAL AUTHENTICATE with an asymmetric key: sign a hash (a curve), the raw private operation
/// (RSA: signature or decryption) or ECDH. The operation's input already fits the algorithm in P1;
/// here the slot must hold a key (`6A 88`) of that algorithm (`6A 86`), and its PIN policy must be
/// met (`69 82`).
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
        SlotOp::Sign { message } => pair.private_op(ctx.crypto(), &message)?,
        SlotOp::Ecdh { point } => {
            // The length is the curve's (parser); whether the point is on the curve only ECDH knows.
            let shared = pair.ecdh(&point).map_err(|_| CardError::InvalidData)?;
            Zeroizing::new(shared.expose().to_vec())
        }
    };
    reply.push(&tlv::encode(
        tag::DYNAMIC_AUTH,
        &tlv::encode(tag::RESPONSE, &value),
    ))
}

/// GET METADATA of a key slot: `01 alg`, `02 pin touch`, `03 origin`, `04 { 86 point }` or
/// `04 { 81 n 82 e }`.
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
    tlv::write(&mut out, tag::META_PUBLIC_KEY, &key.public.items());
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
        assert_eq!(back.public, pair.public_key());
        assert_eq!(back.origin, Origin::Imported);
        assert_eq!(back.pin_policy, PinPolicy::Once);
        assert!(!format!("{back:?}").contains("private"));
        assert!(StoredKey::decode(&key.encode()[1..]).is_none());
    }
}
