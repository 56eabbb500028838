//! Attestation certificates: the card's self-signed F9 certificate and the per-slot certificates F9
//! ATTEST returns, with Yubico's extensions (firmware version `41482.3.3`, serial `41482.3.7`, PIN/touch
//! policy `41482.3.8`). Built with x509-cert's builder and a small profile.
//!
//! The card's attestation identity (the F9 key and its certificate in `5FFF01`) is a pure function of
//! a seed drawn at installation and the installation time ([`plant_attestation_seed`]), made at its
//! first use ([`ensure_attestation_identity`]: GET DATA or PUT DATA of `5FFF01`, GET METADATA of F9,
//! ATTEST). A host cannot tell when that was — the bytes are the same whenever it happens — while a
//! card that is never asked (every card of a personalization line) does not pay a key generation and
//! a signature at installation.

use std::str::FromStr;
use std::time::Duration;

use card_os::apdu::tlv;
use card_os::{CardError, Context};
use cert_profile::FixedProfile;
use der::asn1::OctetString;
use der::oid::AssociatedOid;
use der::{DateTime, Decode, Encode};
use p256::ecdsa::signature::Keypair;
use piv_types::{tag, KeyAlgorithm, KeySlot, ObjectId, PinPolicy, TouchPolicy};
use spki::{ObjectIdentifier, SignatureAlgorithmIdentifier};
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};
use zeroize::Zeroizing;

use crate::keys::{self, PublicKey, StoredKey};
use crate::objects;
use crate::state;

/// The subject of the card's attestation certificate (RFC 4514 form: the comma is escaped, so the CN
/// reads "tessera PIV Attestation (staging, not a Yubico device)").
pub const ATTESTATION_SUBJECT: &str = "CN=tessera PIV Attestation (staging\\, not a Yubico device)";

const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");

/// Any builder failure is a card-internal failure (`6F 00`), never detail for the host.
fn internal<E: std::fmt::Debug>(error: E) -> CardError {
    tracing::error!(?error, "attestation certificate");
    CardError::Internal("attestation certificate")
}

fn extension(
    oid: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, CardError> {
    Ok(Extension {
        extn_id: oid,
        critical,
        extn_value: OctetString::new(value).map_err(internal)?,
    })
}

/// Valid from `unix_seconds`, forever.
fn validity(unix_seconds: u64) -> Result<Validity, CardError> {
    let from = DateTime::from_unix_duration(Duration::from_secs(unix_seconds)).map_err(internal)?;
    Ok(Validity::new(Time::from(from), Time::INFINITY))
}

/// A certificate serial of 16 bytes.
fn serial_number(mut bytes: [u8; 16]) -> Result<SerialNumber, CardError> {
    // Positive and non-zero leading byte: a minimal DER INTEGER of 16 bytes.
    bytes[0] = (bytes[0] & 0x7F) | 0x40;
    SerialNumber::new(&bytes).map_err(internal)
}

fn random_serial(ctx: &mut Context<'_>) -> Result<SerialNumber, CardError> {
    let mut bytes = [0u8; 16];
    ctx.crypto().fill_random(&mut bytes)?;
    serial_number(bytes)
}

/// The signing key as the certificate builder sees it: its public half, already stored with the key.
/// (An `ecdsa::SigningKey` would derive it from the scalar again — a scalar multiplication per
/// certificate, as much as the key generation itself.) The signature is made by card-os from the
/// scalar, over the SHA-256 of the to-be-signed certificate.
struct StoredSigner {
    verifying_key: p256::ecdsa::VerifyingKey,
}

impl Keypair for StoredSigner {
    type VerifyingKey = p256::ecdsa::VerifyingKey;

    fn verifying_key(&self) -> Self::VerifyingKey {
        self.verifying_key
    }
}

impl SignatureAlgorithmIdentifier for StoredSigner {
    type Params = <p256::ecdsa::VerifyingKey as SignatureAlgorithmIdentifier>::Params;

    const SIGNATURE_ALGORITHM_IDENTIFIER: spki::AlgorithmIdentifier<Self::Params> =
        <p256::ecdsa::VerifyingKey as SignatureAlgorithmIdentifier>::SIGNATURE_ALGORITHM_IDENTIFIER;
}

fn build(
    profile: FixedProfile,
    serial: SerialNumber,
    validity: Validity,
    subject: &StoredKey,
    signer: &StoredKey,
) -> Result<Vec<u8>, CardError> {
    let spki = match (&subject.public, subject.algorithm) {
        (PublicKey::Ec(point), KeyAlgorithm::EccP256) => spki::SubjectPublicKeyInfoOwned::from_key(
            &p256::PublicKey::from_sec1_bytes(point).map_err(internal)?,
        )
        .map_err(internal)?,
        (PublicKey::Ec(point), KeyAlgorithm::EccP384) => spki::SubjectPublicKeyInfoOwned::from_key(
            &p384::PublicKey::from_sec1_bytes(point).map_err(internal)?,
        )
        .map_err(internal)?,
        (PublicKey::Ec(key), KeyAlgorithm::Ed25519 | KeyAlgorithm::X25519) => {
            let key: &[u8; card_os::crypto::CURVE25519_KEY_LEN] =
                key.as_slice().try_into().map_err(internal)?;
            let der = card_os::crypto::curve25519_public_key_der(
                key,
                subject.algorithm == KeyAlgorithm::Ed25519,
            );
            spki::SubjectPublicKeyInfoOwned::from_der(&der).map_err(internal)?
        }
        (PublicKey::Rsa { modulus, exponent }, _) => {
            let der = card_os::crypto::rsa_public_key_der(modulus, exponent)?;
            spki::SubjectPublicKeyInfoOwned::from_der(&der).map_err(internal)?
        }
        _ => {
            return Err(CardError::Internal(
                "attestation of a key this card cannot hold",
            ))
        }
    };
    let mut builder = CertificateBuilder::new(profile, serial, validity, spki).map_err(internal)?;
    let stored = StoredSigner {
        verifying_key: match &signer.public {
            PublicKey::Ec(point) => {
                p256::ecdsa::VerifyingKey::from_sec1_bytes(point).map_err(internal)?
            }
            PublicKey::Rsa { .. } => {
                return Err(CardError::Internal("the attestation key is not P-256"))
            }
        },
    };
    let tbs = builder.finalize(&stored).map_err(internal)?;
    let hash = card_os::crypto::Crypto::sha256(&tbs);
    let signature = signer.key_pair()?.sign_prehash(&hash).map_err(internal)?;
    let certificate = builder
        .assemble(
            der::asn1::BitString::from_bytes(&signature).map_err(internal)?,
            &stored,
        )
        .map_err(internal)?;
    certificate.to_der().map_err(internal)
}

/// Length of the attestation seed.
const SEED_LEN: usize = 32;
/// What each derivation from the seed is for (domain separation).
const DERIVE_KEY: &[u8] = b"tessera attestation key";
const DERIVE_SERIAL: &[u8] = b"tessera attestation serial";

/// At installation: draws the seed of the card's attestation identity and records the time its
/// certificate will be valid from.
pub fn plant_attestation_seed(ctx: &mut Context<'_>) -> Result<(), CardError> {
    let mut record = ctx.crypto().random_vec(SEED_LEN)?;
    record.extend_from_slice(&ctx.clock().unix_seconds().to_be_bytes());
    ctx.store().put(state::REC_ATTESTATION_SEED, &record)?;
    Ok(())
}

fn derive(seed: &[u8], purpose: &[u8], counter: u8) -> [u8; 32] {
    let mut input = Zeroizing::new(Vec::with_capacity(seed.len() + purpose.len() + 1));
    input.extend_from_slice(seed);
    input.extend_from_slice(purpose);
    input.push(counter);
    card_os::crypto::Crypto::sha256(&input)
}

/// Makes the attestation key (F9) and its self-signed certificate in `5FFF01` from the seed, unless
/// the key exists. Without a seed (an image from before seeds) there is nothing to make, and the
/// callers answer as for a card without an attestation key.
pub fn ensure_attestation_identity(ctx: &mut Context<'_>) -> Result<(), CardError> {
    if keys::load(ctx, KeySlot::Attestation).is_some() {
        return Ok(());
    }
    let Some(record) = ctx
        .store()
        .get(state::REC_ATTESTATION_SEED)
        .map(|r| Zeroizing::new(r.to_vec()))
    else {
        return Ok(());
    };
    let Some((seed, time)) = record.split_at_checked(SEED_LEN) else {
        return Ok(());
    };
    let Ok(time) = <[u8; 8]>::try_from(time) else {
        return Ok(());
    };
    // A hash is a valid P-256 scalar but for a chance of about 2^-32; the counter covers that.
    let pair = (0..=u8::MAX)
        .find_map(|counter| {
            let scalar = Zeroizing::new(derive(seed, DERIVE_KEY, counter));
            card_os::crypto::Crypto::p256_from_private(scalar.as_slice()).ok()
        })
        .ok_or(CardError::Internal("no attestation key from the seed"))?;
    let mut serial = [0u8; 16];
    serial.copy_from_slice(&derive(seed, DERIVE_SERIAL, 0)[..16]);

    let name = Name::from_str(ATTESTATION_SUBJECT).map_err(internal)?;
    let basic = BasicConstraints {
        ca: true,
        path_len_constraint: None,
    };
    let usage = KeyUsage(KeyUsages::KeyCertSign.into());
    let profile = FixedProfile {
        subject: name.clone(),
        issuer: name,
        extensions: vec![
            extension(
                BasicConstraints::OID,
                true,
                basic.to_der().map_err(internal)?,
            )?,
            extension(KeyUsage::OID, true, usage.to_der().map_err(internal)?)?,
        ],
    };
    // INVARIANT: key and certificate appear together or not at all (a cut in between would leave a
    // key that `ensure` takes for a finished identity, with no certificate).
    ctx.store().begin_transaction()?;
    let key = keys::store_pair(
        ctx,
        KeySlot::Attestation,
        &keys::KeyPair::P256(pair),
        PinPolicy::Never,
        TouchPolicy::Never,
    )?;
    let der = build(
        profile,
        serial_number(serial)?,
        validity(u64::from_be_bytes(time))?,
        &key,
        &key,
    )?;
    objects::write(
        ctx,
        ObjectId::ATTESTATION_CERT,
        &objects::certificate_value(&der),
    )?;
    ctx.store().commit_transaction()?;
    Ok(())
}

/// The subject of the certificate in `5FFF01` (the issuer of every slot attestation).
fn attestation_issuer(ctx: &mut Context<'_>) -> Result<Name, CardError> {
    let stored = objects::read(ctx, ObjectId::ATTESTATION_CERT);
    let from_object = stored.as_deref().and_then(|value| {
        let der = tlv::find(value, tag::CERTIFICATE).ok().flatten()?;
        Certificate::from_der(der).ok()
    });
    match from_object {
        Some(cert) => Ok(cert.tbs_certificate().subject().clone()),
        None => Name::from_str(ATTESTATION_SUBJECT).map_err(internal),
    }
}

/// ATTEST: a certificate for the slot's public key, signed by the F9 key, naming `firmware` as the
/// version. Only for generated keys.
pub fn attest(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    firmware: [u8; 3],
) -> Result<Vec<u8>, CardError> {
    let key = keys::load(ctx, slot).ok_or(CardError::ReferenceNotFound)?;
    if key.origin != keys::Origin::Generated {
        return Err(CardError::InvalidData);
    }
    let signer = keys::load(ctx, KeySlot::Attestation).ok_or(CardError::ReferenceNotFound)?;
    let issuer = attestation_issuer(ctx)?;
    let subject = Name::from_str(&format!(
        "CN=tessera PIV Attestation {:02x}",
        slot.reference()
    ))
    .map_err(internal)?;
    let serial = state::serial(ctx);
    let serial_der = der::asn1::Uint::new(&serial.to_be_bytes())
        .and_then(|u| u.to_der())
        .map_err(internal)?;
    let profile = FixedProfile {
        subject,
        issuer,
        extensions: vec![
            extension(OID_FIRMWARE, false, firmware.to_vec())?,
            extension(OID_SERIAL, false, serial_der)?,
            extension(
                OID_POLICY,
                false,
                vec![key.pin_policy.byte(), key.touch_policy.byte()],
            )?,
        ],
    };
    let now = ctx.clock().unix_seconds();
    build(profile, random_serial(ctx)?, validity(now)?, &key, &signer)
}
