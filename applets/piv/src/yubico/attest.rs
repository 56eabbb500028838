//! Attestation certificates: the card's self-signed F9 certificate (made at install) and the per-slot
//! certificates F9 ATTEST returns, with Yubico's extensions (firmware version `41482.3.3`, serial
//! `41482.3.7`, PIN/touch policy `41482.3.8`). Built with x509-cert's builder and a small profile.

use std::str::FromStr;
use std::time::Duration;

use card_os::apdu::tlv;
use card_os::crypto::hazmat;
use card_os::{CardError, Context};
use der::asn1::OctetString;
use der::{DateTime, Decode, Encode};
use p256::ecdsa::signature::Keypair;
use piv_types::{tag, KeyAlgorithm, KeySlot, ObjectId, PinPolicy, TouchPolicy};
use spki::{ObjectIdentifier, SignatureAlgorithmIdentifier};
use x509_cert::builder::profile::BuilderProfile;
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::{Certificate, TbsCertificate};
use x509_cert::ext::pkix::{BasicConstraints, KeyUsage, KeyUsages};
use x509_cert::ext::Extension;
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::keys::{self, StoredKey};
use crate::objects;
use crate::state;

/// The subject of the card's attestation certificate (RFC 4514 form: the comma is escaped, so the CN
/// reads "tessera PIV Attestation (staging, not a Yubico device)").
pub const ATTESTATION_SUBJECT: &str = "CN=tessera PIV Attestation (staging\\, not a Yubico device)";

const OID_FIRMWARE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.3");
const OID_SERIAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.7");
const OID_POLICY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.41482.3.8");
const OID_BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");

/// Any builder failure is a card-internal failure (`6F 00`), never detail for the host.
fn internal<E: std::fmt::Debug>(error: E) -> CardError {
    tracing::error!(?error, "attestation certificate");
    CardError::Internal("attestation certificate")
}

/// A profile that sets exactly the subject, issuer and extensions it is given.
struct FixedProfile {
    subject: Name,
    issuer: Name,
    extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
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

fn validity(ctx: &mut Context<'_>) -> Result<Validity, CardError> {
    let now = DateTime::from_unix_duration(Duration::from_secs(ctx.clock().unix_seconds()))
        .map_err(internal)?;
    Ok(Validity::new(Time::from(now), Time::INFINITY))
}

fn serial_number(ctx: &mut Context<'_>) -> Result<SerialNumber, CardError> {
    let mut bytes = ctx.crypto().random_vec(16)?;
    if let Some(first) = bytes.first_mut() {
        // Positive and non-zero leading byte: a minimal DER INTEGER of 16 bytes.
        *first = (*first & 0x7F) | 0x40;
    }
    SerialNumber::new(&bytes).map_err(internal)
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
    ctx: &mut Context<'_>,
    profile: FixedProfile,
    subject_key: &[u8],
    signer: &StoredKey,
) -> Result<Vec<u8>, CardError> {
    let spki = spki::SubjectPublicKeyInfoOwned::from_key(
        &p256::PublicKey::from_sec1_bytes(subject_key).map_err(internal)?,
    )
    .map_err(internal)?;
    let serial = serial_number(ctx)?;
    let validity = validity(ctx)?;
    let mut builder = CertificateBuilder::new(profile, serial, validity, spki).map_err(internal)?;
    let stored = StoredSigner {
        verifying_key: p256::ecdsa::VerifyingKey::from_sec1_bytes(&signer.public_point)
            .map_err(internal)?,
    };
    let tbs = builder.finalize(&stored).map_err(internal)?;
    let hash = card_os::crypto::Crypto::sha256(&tbs);
    let signature = hazmat::sign_prehash(&signer.key_pair()?, &hash).map_err(internal)?;
    let certificate = builder
        .assemble(
            der::asn1::BitString::from_bytes(&signature).map_err(internal)?,
            &stored,
        )
        .map_err(internal)?;
    certificate.to_der().map_err(internal)
}

/// Makes the card's attestation key (F9) and its self-signed certificate in `5FFF01`.
pub fn create_attestation_identity(ctx: &mut Context<'_>) -> Result<(), CardError> {
    let key = keys::generate_into(
        ctx,
        KeySlot::Attestation,
        KeyAlgorithm::EccP256,
        PinPolicy::Never,
        TouchPolicy::Never,
    )?;
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
                OID_BASIC_CONSTRAINTS,
                true,
                basic.to_der().map_err(internal)?,
            )?,
            extension(OID_KEY_USAGE, true, usage.to_der().map_err(internal)?)?,
        ],
    };
    let der = build(ctx, profile, &key.public_point, &key)?;
    objects::write(
        ctx,
        ObjectId::ATTESTATION_CERT,
        &objects::certificate_value(&der),
    )
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
    build(ctx, profile, &key.public_point, &signer)
}
