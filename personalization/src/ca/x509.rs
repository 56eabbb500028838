//! Certificate assembly on x509-cert's builder: names, extensions and a profile that sets exactly
//! what it is given (the CA/B Forum profiles want subjects this CA does not have).

use std::time::SystemTime;

use cert_profile::FixedProfile;
use der::asn1::{Any, Ia5String, OctetString};
use der::oid::AssociatedOid;
use der::{DateTime, Decode, Encode, Tag};
use sha2::{Digest, Sha256};
use spki::{ObjectIdentifier, SubjectPublicKeyInfoOwned};
use x509_cert::builder::{Builder, CertificateBuilder};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAltName,
    SubjectKeyIdentifier,
};
use x509_cert::ext::{Extension, ToExtension};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use super::CaError;

pub const OID_COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
pub const OID_ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
pub const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
pub const OID_SURNAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.4");
pub const OID_GIVEN_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.42");
pub const OID_SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
pub const OID_KP_SERVER_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.1");
pub const OID_KP_CLIENT_AUTH: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.2");

pub fn build_error(what: &str, error: impl std::fmt::Display) -> CaError {
    CaError::Build(format!("{what}: {error}"))
}

/// One attribute of a distinguished name, in the string type RFC 5280 expects for it.
pub struct Attr<'a> {
    pub oid: ObjectIdentifier,
    pub value: &'a str,
}

/// A name built attribute by attribute (no RFC 4514 parsing, so commas and accents need no escaping).
pub fn name(attrs: &[Attr<'_>]) -> Result<Name, CaError> {
    let mut sequence = RdnSequence::default();
    for attr in attrs {
        let tag = if attr.oid == OID_COUNTRY || attr.oid == OID_SERIAL_NUMBER {
            if !attr.value.bytes().all(is_printable) {
                return Err(CaError::InvalidName(format!(
                    "{:?} is not a PrintableString",
                    attr.value
                )));
            }
            Tag::PrintableString
        } else {
            Tag::Utf8String
        };
        if attr.value.is_empty() || attr.value.chars().any(char::is_control) {
            return Err(CaError::InvalidName(format!(
                "{:?} is empty or holds control characters",
                attr.value
            )));
        }
        let value = Any::new(tag, attr.value.as_bytes()).map_err(|e| build_error("name", e))?;
        let atv = x509_cert::attr::AttributeTypeAndValue {
            oid: attr.oid,
            value,
        };
        sequence.push(
            RelativeDistinguishedName::try_from(vec![atv]).map_err(|e| build_error("name", e))?,
        );
    }
    let der = sequence.to_der().map_err(|e| build_error("name", e))?;
    Name::from_der(&der).map_err(|e| build_error("name", e))
}

fn is_printable(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b)
}

/// SHA-256 of the subjectPublicKey bits, truncated to 160 bits (RFC 7093 method 1).
pub fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    digest[..20].to_vec()
}

pub fn spki_of(public: &p256::PublicKey) -> Result<SubjectPublicKeyInfoOwned, CaError> {
    SubjectPublicKeyInfoOwned::from_key(public).map_err(|e| build_error("public key", e))
}

fn to_time(instant: SystemTime) -> Result<Time, CaError> {
    DateTime::from_system_time(instant)
        .map(Time::from)
        .map_err(|e| CaError::Time(format!("{instant:?} cannot be encoded: {e}")))
}

pub fn validity(not_before: SystemTime, not_after: SystemTime) -> Result<Validity, CaError> {
    Ok(Validity::new(to_time(not_before)?, to_time(not_after)?))
}

/// Typed extensions in the order they appear in the certificate.
#[derive(Default)]
pub struct Extensions {
    list: Vec<Extension>,
}

impl Extensions {
    /// Each extension's identifier is its type's (`AssociatedOid`), as x509-cert defines it.
    fn push<T: der::Encode + AssociatedOid>(
        &mut self,
        critical: bool,
        value: &T,
    ) -> Result<(), CaError> {
        let extension = (T::OID, critical, value)
            .to_extension(&Name::default(), &[])
            .map_err(|e| build_error("extension", e))?;
        self.list.push(extension);
        Ok(())
    }

    pub fn basic_constraints(&mut self, ca: bool, path_len: Option<u8>) -> Result<(), CaError> {
        let value = BasicConstraints {
            ca,
            path_len_constraint: path_len,
        };
        self.push(true, &value)
    }

    pub fn key_usage(&mut self, usage: KeyUsage) -> Result<(), CaError> {
        self.push(true, &usage)
    }

    pub fn extended_key_usage(&mut self, purposes: Vec<ObjectIdentifier>) -> Result<(), CaError> {
        self.push(false, &ExtendedKeyUsage(purposes))
    }

    pub fn subject_key_identifier(&mut self, id: &[u8]) -> Result<(), CaError> {
        let value = SubjectKeyIdentifier(OctetString::new(id).map_err(|e| build_error("SKI", e))?);
        self.push(false, &value)
    }

    pub fn authority_key_identifier(&mut self, id: &[u8]) -> Result<(), CaError> {
        let value = AuthorityKeyIdentifier {
            key_identifier: Some(OctetString::new(id).map_err(|e| build_error("AKI", e))?),
            ..Default::default()
        };
        self.push(false, &value)
    }

    pub fn dns_names(&mut self, names: &[String]) -> Result<(), CaError> {
        self.subject_alt_names(names, &[])
    }

    /// subjectAltName with DNS names and IP addresses (a TLS server reached as `localhost` and
    /// `127.0.0.1` needs both: browsers match an address only against an iPAddress entry).
    pub fn subject_alt_names(
        &mut self,
        names: &[String],
        addresses: &[std::net::IpAddr],
    ) -> Result<(), CaError> {
        let mut general = Vec::with_capacity(names.len() + addresses.len());
        for dns in names {
            let ia5 = Ia5String::new(dns).map_err(|e| build_error("SAN", e))?;
            general.push(GeneralName::DnsName(ia5));
        }
        for address in addresses {
            let octets = match address {
                std::net::IpAddr::V4(v4) => v4.octets().to_vec(),
                std::net::IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            let octets = OctetString::new(octets).map_err(|e| build_error("SAN", e))?;
            general.push(GeneralName::IpAddress(octets));
        }
        self.push(false, &SubjectAltName(general))
    }
}

/// Everything that goes into one certificate.
pub struct Request {
    pub subject: Name,
    pub issuer: Name,
    pub serial: SerialNumber,
    pub validity: Validity,
    pub spki: SubjectPublicKeyInfoOwned,
    pub extensions: Extensions,
}

/// Signs the certificate with ECDSA-SHA256 under `signer`.
pub fn sign(request: Request, signer: &p256::ecdsa::SigningKey) -> Result<Certificate, CaError> {
    let profile = FixedProfile {
        subject: request.subject,
        issuer: request.issuer,
        extensions: request.extensions.list,
    };
    let builder = CertificateBuilder::new(profile, request.serial, request.validity, request.spki)
        .map_err(|e| build_error("certificate", e))?;
    builder
        .build::<_, p256::ecdsa::DerSignature>(signer)
        .map_err(|e| build_error("signature", e))
}

/// The serial as a DER INTEGER of exactly these 16 bytes: positive, first byte non-zero.
pub fn serial_number(serial: [u8; 16]) -> Result<SerialNumber, CaError> {
    if serial[0] == 0 || serial[0] & 0x80 != 0 {
        return Err(CaError::InvalidSerial(hex::encode(serial)));
    }
    SerialNumber::new(&serial).map_err(|e| build_error("serial", e))
}

/// ecdsa-with-SHA256, the one signature algorithm this CA uses.
const OID_ECDSA_WITH_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");

/// Whether `certificate_der` names `issuer` as its issuer and carries an ECDSA-SHA256 signature
/// by `key` over its to-be-signed part. Anything that does not decode is simply not signed by us.
pub fn signed_by(certificate_der: &[u8], issuer: &Name, key: &p256::ecdsa::VerifyingKey) -> bool {
    use p256::ecdsa::signature::Verifier as _;
    let Ok(certificate) = Certificate::from_der(certificate_der) else {
        return false;
    };
    if certificate.tbs_certificate().issuer() != issuer
        || certificate.signature_algorithm().oid != OID_ECDSA_WITH_SHA256
    {
        return false;
    }
    let Ok(tbs) = certificate.tbs_certificate().to_der() else {
        return false;
    };
    let Some(signature) = certificate.signature().as_bytes() else {
        return false;
    };
    let Ok(signature) = p256::ecdsa::DerSignature::from_bytes(signature) else {
        return false;
    };
    key.verify(&tbs, &signature).is_ok()
}
