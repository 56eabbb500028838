//! The staging certificate authority, kept in a directory: a self-signed P-256 root (`ca.key`, PKCS#8
//! PEM, mode 0600; `ca.crt`, PEM) and two issuing CAs under it, one per kind of certificate —
//! `cards-ca` issues the card holders' certificates (for keys generated on the card), `hosts-ca` the
//! workstation, server and login-lab certificates (keys generated here, delivered as
//! password-protected PKCS#12 bundles). Every issued certificate is valid [`VALIDITY_YEARS`] years.
//!
//! Why two issuing CAs: a TLS server names the CAs it accepts in its CertificateRequest, and a
//! browser set to choose a client certificate automatically offers the first one issued under those
//! names. The login lab asks for a workstation certificate on one door and for a card certificate on
//! the other; with one issuer for both, the browser could not tell which to send where. A CA made
//! before the split (no `cards-ca.*` / `hosts-ca.*` files) still opens and issues everything from its
//! root.

pub(crate) mod calendar;
mod password;
mod x509;

#[cfg(test)]
mod tests;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use der::pem::LineEnding;
use der::{DecodePem, Encode, EncodePem};
use p256::elliptic_curve::Generate;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey};
use x509_cert::certificate::Certificate;
use x509_cert::ext::pkix::{KeyUsage, KeyUsages, SubjectKeyIdentifier};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

pub use calendar::not_after;
pub use password::{BundlePassword, ALPHABET as PASSWORD_ALPHABET, PASSWORD_LENGTH};

use x509::{Attr, Extensions, Request};

/// Validity of every certificate the CA issues (cards, workstations, servers).
pub const VALIDITY_YEARS: u32 = 6;
/// Validity of the CA certificate itself.
pub const CA_VALIDITY_YEARS: u32 = 10;
/// File names inside the CA directory.
pub const KEY_FILE: &str = "ca.key";
pub const CERT_FILE: &str = "ca.crt";
pub const CARDS_KEY_FILE: &str = "cards-ca.key";
pub const CARDS_CERT_FILE: &str = "cards-ca.crt";
pub const HOSTS_KEY_FILE: &str = "hosts-ca.key";
pub const HOSTS_CERT_FILE: &str = "hosts-ca.crt";

pub const CA_COMMON_NAME: &str = "tessera STAGING CA – not for production";
pub const CARDS_CA_COMMON_NAME: &str = "tessera STAGING operator cards CA – not for production";
pub const HOSTS_CA_COMMON_NAME: &str = "tessera STAGING workstations CA – not for production";
pub const CA_ORGANIZATION: &str = "tessera staging bureau";
pub const COUNTRY: &str = "IT";
/// The DNS suffix of server certificates' subjectAltName.
pub const SERVER_DNS_SUFFIX: &str = ".staging.invalid";

/// Why a CA operation failed. File problems name the file.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: CA directory is not empty; refusing to overwrite an existing CA", .0.display())]
    DirectoryNotEmpty(PathBuf),
    #[error("{}: the CA key file has mode {mode:04o}, broader than 0600 (run chmod 600 on it)", path.display())]
    KeyPermissions { path: PathBuf, mode: u32 },
    #[error("{}: not a PKCS#8 P-256 private key in PEM form ({detail})", path.display())]
    Key { path: PathBuf, detail: String },
    #[error("{}: not a PEM X.509 certificate ({detail})", path.display())]
    Certificate { path: PathBuf, detail: String },
    #[error("{}: the certificate does not belong to the key in {}", cert.display(), key.display())]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("serial {0} must be 16 bytes with a first byte in 01..=7F (positive, minimal DER)")]
    InvalidSerial(String),
    #[error("not an uncompressed SEC1 P-256 point: {0}")]
    InvalidPublicKey(String),
    #[error("invalid name: {0}")]
    InvalidName(String),
    #[error("invalid time: {0}")]
    Time(String),
    #[error("building the certificate failed: {0}")]
    Build(String),
    #[error("building the PKCS#12 bundle failed: {0}")]
    Pkcs12(String),
    #[error("the operating system's random generator failed")]
    Random,
    #[error("the CA's issuance index: {0}")]
    IssuanceIndex(#[source] crate::registry::RegistryError),
}

/// The card holder named in the user certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub codice_fiscale: String,
    pub surname: String,
    pub given_name: String,
}

/// The issuing CA of a kind of certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Issuing {
    /// Card holders' certificates (`cards-ca`).
    Cards,
    /// Workstation, server and login-lab certificates (`hosts-ca`).
    Hosts,
}

/// What a host certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkstationKind {
    /// `<ISTAT>-PC-nnnn`: TLS client authentication.
    Workstation,
    /// `<ISTAT>-CO-9999`: TLS server and client authentication, with a DNS subjectAltName.
    Server,
}

/// A host certificate with its key, ready for installation.
#[derive(Debug)]
pub struct IssuedBundle {
    pub certificate_der: Vec<u8>,
    /// PKCS#12: the key, the certificate, its issuing CA and the root (AES-256/PBES2, HMAC-SHA256).
    pub pkcs12: Vec<u8>,
    /// The installation password protecting `pkcs12`.
    pub password: BundlePassword,
    pub not_after: SystemTime,
}

/// One signing authority of the staging CA: its key and certificate.
#[derive(Clone)]
struct Authority {
    key: p256::ecdsa::SigningKey,
    certificate: Certificate,
    certificate_der: Vec<u8>,
    key_id: Vec<u8>,
}

impl Authority {
    fn new(
        key: p256::ecdsa::SigningKey,
        certificate: Certificate,
        cert_path: &Path,
    ) -> Result<Self, CaError> {
        let certificate_der = certificate.to_der().map_err(|e| CaError::Certificate {
            path: cert_path.to_path_buf(),
            detail: e.to_string(),
        })?;
        let tbs = certificate.tbs_certificate();
        let key_id = match tbs.get_extension::<SubjectKeyIdentifier>() {
            Ok(Some((_, ski))) => ski.0.as_bytes().to_vec(),
            _ => x509::key_identifier(tbs.subject_public_key_info()),
        };
        Ok(Self {
            key,
            certificate,
            certificate_der,
            key_id,
        })
    }

    fn subject(&self) -> &x509_cert::name::Name {
        self.certificate.tbs_certificate().subject()
    }

    fn signed(&self, certificate_der: &[u8]) -> bool {
        x509::signed_by(certificate_der, self.subject(), self.key.verifying_key())
    }
}

/// The staging CA: the root and its two issuing CAs.
pub struct StagingCa {
    root: Authority,
    cards: Authority,
    hosts: Authority,
}

impl std::fmt::Debug for StagingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagingCa")
            .field("subject", self.root.subject())
            .field("keys", &"<redacted>")
            .finish()
    }
}

/// A random 16-byte serial: positive (top bit clear) with a non-zero first byte, so its DER
/// INTEGER is exactly these 16 bytes.
pub fn random_serial() -> [u8; 16] {
    let mut serial = [0u8; 16];
    if getrandom::fill(&mut serial).is_err() {
        // The trait-less signature has no error path; fall back to a hash of the clock and a
        // process-local counter, still unique within this process.
        use sha2::Digest;
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut hasher = sha2::Sha256::new();
        hasher.update(format!("{:?}", SystemTime::now()).as_bytes());
        hasher.update(count.to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        serial.copy_from_slice(&hasher.finalize()[..16]);
    }
    serial[0] &= 0x7F;
    if serial[0] == 0 {
        serial[0] = 0x01 | (serial[1] & 0x7E);
    }
    serial
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a new file (never replacing one) with the given mode, durably.
fn create_file(path: &Path, contents: &[u8], mode: u32) -> Result<(), CaError> {
    crate::private_file::create_new(path, contents, mode).map_err(io(path))
}

impl StagingCa {
    /// Creates `dir` (which must not exist or be empty) with `ca.key` (PKCS#8 PEM, mode 0600) and
    /// `ca.crt` (PEM): a self-signed P-256 root valid 10 years from `now`, basicConstraints CA:true
    /// pathlen 1, keyUsage keyCertSign+cRLSign, subject key identifier; and under it the two issuing
    /// CAs `cards-ca` and `hosts-ca` (pathlen 0, the same validity), each with its key (0600).
    pub fn init(dir: &Path, now: SystemTime) -> Result<Self, CaError> {
        match fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(CaError::DirectoryNotEmpty(dir.to_path_buf()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::private_file::create_dir(dir).map_err(io(dir))?;
            }
            Err(e) => return Err(io(dir)(e)),
        }

        let not_before = calendar::whole_seconds(now);
        let validity = x509::validity(not_before, not_after(not_before, CA_VALIDITY_YEARS))?;
        let (root_secret, root_spki) = new_key()?;
        let root_key = p256::ecdsa::SigningKey::from(&root_secret);
        let root_key_id = x509::key_identifier(&root_spki);
        let subject = bureau_name(CA_COMMON_NAME)?;
        let mut extensions = Extensions::default();
        extensions.basic_constraints(true, Some(1))?;
        extensions.key_usage(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?;
        extensions.subject_key_identifier(&root_key_id)?;
        let root_certificate = x509::sign(
            Request {
                issuer: subject.clone(),
                subject,
                serial: x509::serial_number(random_serial())?,
                validity,
                spki: root_spki,
                extensions,
            },
            &root_key,
        )?;
        write_authority(dir, KEY_FILE, CERT_FILE, &root_secret, &root_certificate)?;
        let root = Authority::new(root_key, root_certificate, &dir.join(CERT_FILE))?;

        let issuing = |common_name: &str, key_file: &str, cert_file: &str| {
            let (secret, spki) = new_key()?;
            let mut extensions = Extensions::default();
            extensions.basic_constraints(true, Some(0))?;
            extensions.key_usage(KeyUsage(KeyUsages::KeyCertSign | KeyUsages::CRLSign))?;
            extensions.subject_key_identifier(&x509::key_identifier(&spki))?;
            extensions.authority_key_identifier(&root.key_id)?;
            let certificate = x509::sign(
                Request {
                    issuer: root.subject().clone(),
                    subject: bureau_name(common_name)?,
                    serial: x509::serial_number(random_serial())?,
                    validity,
                    spki,
                    extensions,
                },
                &root.key,
            )?;
            write_authority(dir, key_file, cert_file, &secret, &certificate)?;
            Authority::new(
                p256::ecdsa::SigningKey::from(&secret),
                certificate,
                &dir.join(cert_file),
            )
        };
        let cards = issuing(CARDS_CA_COMMON_NAME, CARDS_KEY_FILE, CARDS_CERT_FILE)?;
        let hosts = issuing(HOSTS_CA_COMMON_NAME, HOSTS_KEY_FILE, HOSTS_CERT_FILE)?;
        // The index of the numbers and serials this CA hands out is part of the CA: made here, not
        // by the first batch (whose set-up would otherwise pay for creating a database).
        crate::issuer::Issuer::open(dir).map_err(CaError::IssuanceIndex)?;
        Ok(Self { root, cards, hosts })
    }

    /// Loads the CA from `dir`. Refuses a key file readable by group or others, and an issuing CA
    /// the root did not sign. A CA without issuing CAs (made before they existed) issues from its root.
    pub fn open(dir: &Path) -> Result<Self, CaError> {
        let root = load_authority(dir, KEY_FILE, CERT_FILE)?;
        let issuing = |key_file: &str, cert_file: &str| -> Result<Authority, CaError> {
            if !dir.join(cert_file).exists() && !dir.join(key_file).exists() {
                return Ok(root.clone());
            }
            let authority = load_authority(dir, key_file, cert_file)?;
            if !root.signed(&authority.certificate_der) {
                return Err(CaError::Certificate {
                    path: dir.join(cert_file),
                    detail: format!(
                        "not issued by the root in {}",
                        dir.join(CERT_FILE).display()
                    ),
                });
            }
            Ok(authority)
        };
        let cards = issuing(CARDS_KEY_FILE, CARDS_CERT_FILE)?;
        let hosts = issuing(HOSTS_KEY_FILE, HOSTS_CERT_FILE)?;
        Ok(Self { root, cards, hosts })
    }

    /// The root certificate (`ca.crt`): what relying parties and browsers trust.
    pub fn certificate_der(&self) -> Vec<u8> {
        self.root.certificate_der.clone()
    }

    pub fn certificate_pem(&self) -> String {
        // The certificate was decoded or built successfully, so it re-encodes.
        self.root
            .certificate
            .to_pem(LineEnding::LF)
            .unwrap_or_default()
    }

    /// The root's subject key identifier.
    pub fn key_identifier(&self) -> &[u8] {
        &self.root.key_id
    }

    fn authority(&self, kind: Issuing) -> &Authority {
        match kind {
            Issuing::Cards => &self.cards,
            Issuing::Hosts => &self.hosts,
        }
    }

    /// The certificate of the CA that issues `kind` (the root itself for a CA made before the
    /// issuing CAs existed).
    pub fn issuing_certificate_der(&self, kind: Issuing) -> Vec<u8> {
        self.authority(kind).certificate_der.clone()
    }

    /// The issuing CA's subject name, DER-encoded: what a TLS server names in its
    /// CertificateRequest so that clients offer a certificate of that kind.
    pub fn issuing_subject_der(&self, kind: Issuing) -> Vec<u8> {
        self.authority(kind).subject().to_der().unwrap_or_default()
    }

    /// The certificates between a `kind` certificate and the root, nearest first: what a TLS
    /// server or a PKCS#12 bundle sends after its own certificate (empty for a single-tier CA).
    pub fn chain_of(&self, kind: Issuing) -> Vec<Vec<u8>> {
        let authority = self.authority(kind);
        if authority.certificate_der == self.root.certificate_der {
            Vec::new()
        } else {
            vec![authority.certificate_der.clone()]
        }
    }

    fn issue(
        &self,
        kind: Issuing,
        subject: x509_cert::name::Name,
        spki: spki::SubjectPublicKeyInfoOwned,
        serial: [u8; 16],
        not_before: SystemTime,
        mut extensions: Extensions,
    ) -> Result<(Vec<u8>, SystemTime), CaError> {
        let authority = self.authority(kind);
        let not_before = calendar::whole_seconds(not_before);
        let end = not_after(not_before, VALIDITY_YEARS);
        extensions.authority_key_identifier(&authority.key_id)?;
        extensions.subject_key_identifier(&x509::key_identifier(&spki))?;
        let certificate = x509::sign(
            Request {
                subject,
                issuer: authority.subject().clone(),
                serial: x509::serial_number(serial)?,
                validity: x509::validity(not_before, end)?,
                spki,
                extensions,
            },
            &authority.key,
        )?;
        let der = certificate
            .to_der()
            .map_err(|e| x509::build_error("encoding", e))?;
        Ok((der, end))
    }

    /// The card holder's certificate for the on-card key `public_point` (SEC1, uncompressed):
    /// subject C=IT, SN, GN, serialNumber=`TINIT-<codice fiscale>` (ETSI EN 319 412-1 natural
    /// person identifier), CN=<codice fiscale>; keyUsage digitalSignature (critical), EKU
    /// clientAuth, basicConstraints CA:false, AKI/SKI; valid exactly 6 calendar years.
    pub fn issue_user(
        &self,
        holder: &Holder,
        public_point: &[u8],
        serial: [u8; 16],
        not_before: SystemTime,
    ) -> Result<Vec<u8>, CaError> {
        if public_point.len() != 65 || public_point[0] != 0x04 {
            return Err(CaError::InvalidPublicKey(format!(
                "{} bytes, expected 65 starting with 04",
                public_point.len()
            )));
        }
        let public = p256::PublicKey::from_sec1_bytes(public_point)
            .map_err(|_| CaError::InvalidPublicKey("not a point on P-256".into()))?;
        self.issue_user_for(holder, x509::spki_of(&public)?, serial, not_before)
    }

    /// [`StagingCa::issue_user`] for an on-card key given as a DER `SubjectPublicKeyInfo` (the RSA
    /// key of a CNS card): the same subject, extensions and validity.
    pub fn issue_user_spki(
        &self,
        holder: &Holder,
        spki_der: &[u8],
        serial: [u8; 16],
        not_before: SystemTime,
    ) -> Result<Vec<u8>, CaError> {
        use der::Decode as _;
        let spki = SubjectPublicKeyInfoOwned::from_der(spki_der)
            .map_err(|e| CaError::InvalidPublicKey(format!("not a SubjectPublicKeyInfo: {e}")))?;
        self.issue_user_for(holder, spki, serial, not_before)
    }

    fn issue_user_for(
        &self,
        holder: &Holder,
        spki: SubjectPublicKeyInfoOwned,
        serial: [u8; 16],
        not_before: SystemTime,
    ) -> Result<Vec<u8>, CaError> {
        let cf = holder.codice_fiscale.trim();
        if cf.len() != 16 || !cf.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(CaError::InvalidName(format!(
                "codice fiscale {cf:?} must be 16 letters and digits"
            )));
        }
        let cf = cf.to_ascii_uppercase();
        let serial_attr = format!("TINIT-{cf}");
        let subject = x509::name(&[
            Attr {
                oid: x509::OID_COUNTRY,
                value: COUNTRY,
            },
            Attr {
                oid: x509::OID_SURNAME,
                value: holder.surname.trim(),
            },
            Attr {
                oid: x509::OID_GIVEN_NAME,
                value: holder.given_name.trim(),
            },
            Attr {
                oid: x509::OID_SERIAL_NUMBER,
                value: &serial_attr,
            },
            Attr {
                oid: x509::OID_COMMON_NAME,
                value: &cf,
            },
        ])?;
        let mut extensions = Extensions::default();
        extensions.basic_constraints(false, None)?;
        extensions.key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?;
        extensions.extended_key_usage(vec![x509::OID_KP_CLIENT_AUTH])?;
        let (der, _) = self.issue(
            Issuing::Cards,
            subject,
            spki,
            serial,
            not_before,
            extensions,
        )?;
        Ok(der)
    }

    /// A workstation (`<ISTAT>-PC-0001`, EKU clientAuth) or server (`<ISTAT>-CO-9999`, EKU
    /// serverAuth+clientAuth, SAN dNSName `<lower-cased name>.staging.invalid`) certificate for a
    /// P-256 key generated here, bundled with the key and the CA certificate as PKCS#12 under a
    /// fresh random password. Subject CN=<name>, O=tessera staging bureau, C=IT.
    pub fn issue_workstation(
        &self,
        name: &str,
        kind: WorkstationKind,
        serial: [u8; 16],
        not_before: SystemTime,
    ) -> Result<IssuedBundle, CaError> {
        let valid_label = !name.is_empty()
            && name.len() <= 63
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-');
        if !valid_label {
            return Err(CaError::InvalidName(format!(
                "host name {name:?} must be 1-63 letters, digits and inner hyphens"
            )));
        }
        let secret = p256::SecretKey::try_generate().map_err(|_| CaError::Random)?;
        let subject = bureau_name(name)?;
        let mut extensions = Extensions::default();
        extensions.basic_constraints(false, None)?;
        extensions.key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?;
        match kind {
            WorkstationKind::Workstation => {
                extensions.extended_key_usage(vec![x509::OID_KP_CLIENT_AUTH])?;
            }
            WorkstationKind::Server => {
                extensions
                    .extended_key_usage(vec![x509::OID_KP_SERVER_AUTH, x509::OID_KP_CLIENT_AUTH])?;
                extensions
                    .dns_names(&[format!("{}{SERVER_DNS_SUFFIX}", name.to_ascii_lowercase())])?;
            }
        }
        let spki = x509::spki_of(&secret.public_key())?;
        let local_key_id = x509::key_identifier(&spki);
        let (certificate_der, not_after) = self.issue(
            Issuing::Hosts,
            subject,
            spki,
            serial,
            not_before,
            extensions,
        )?;

        let password = BundlePassword::generate()?;
        let key_der = secret
            .to_pkcs8_der()
            .map_err(|e| CaError::Pkcs12(format!("PKCS#8: {e}")))?;
        let mut chain = vec![certificate_der.clone()];
        chain.extend(self.chain_of(Issuing::Hosts));
        chain.push(self.root.certificate_der.clone());
        let pkcs12 = pkcs12_bundle(
            name,
            key_der.as_bytes(),
            &local_key_id,
            &chain,
            password.expose(),
        )?;
        Ok(IssuedBundle {
            certificate_der,
            pkcs12,
            password,
            not_after,
        })
    }
}

/// A TLS server identity: its certificate and its P-256 key (PKCS#8 DER).
pub struct ServerIdentity {
    pub certificate_der: Vec<u8>,
    /// The issuing CA's certificate (empty for a single-tier CA): a TLS server sends it after its own.
    pub chain_der: Vec<Vec<u8>>,
    pub key_pkcs8_der: zeroize::Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ServerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerIdentity")
            .field("certificate", &self.certificate_der.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

impl StagingCa {
    /// The login lab's HTTPS certificate: subject CN=`names[0]`, O=tessera staging bureau, C=IT;
    /// subjectAltName with every DNS name and address given; EKU serverAuth; for a P-256 key
    /// generated here. Browsers that trust `ca.crt` then accept the lab without an exception.
    pub fn issue_tls_server(
        &self,
        names: &[String],
        addresses: &[std::net::IpAddr],
        serial: [u8; 16],
        not_before: SystemTime,
    ) -> Result<ServerIdentity, CaError> {
        let Some(common_name) = names.first() else {
            return Err(CaError::InvalidName(
                "a server certificate needs at least one DNS name".into(),
            ));
        };
        let secret = p256::SecretKey::try_generate().map_err(|_| CaError::Random)?;
        let subject = bureau_name(common_name)?;
        let mut extensions = Extensions::default();
        extensions.basic_constraints(false, None)?;
        extensions.key_usage(KeyUsage(KeyUsages::DigitalSignature.into()))?;
        extensions.extended_key_usage(vec![x509::OID_KP_SERVER_AUTH])?;
        extensions.subject_alt_names(names, addresses)?;
        let spki = x509::spki_of(&secret.public_key())?;
        let (certificate_der, _) = self.issue(
            Issuing::Hosts,
            subject,
            spki,
            serial,
            not_before,
            extensions,
        )?;
        let key = secret
            .to_pkcs8_der()
            .map_err(|e| CaError::Pkcs12(format!("PKCS#8: {e}")))?;
        Ok(ServerIdentity {
            certificate_der,
            chain_der: self.chain_of(Issuing::Hosts),
            key_pkcs8_der: zeroize::Zeroizing::new(key.as_bytes().to_vec()),
        })
    }

    /// Whether `certificate_der` is a `kind` certificate this CA issued: its issuer is that issuing
    /// CA's subject and its signature verifies under that CA's key. Validity dates and revocation
    /// are the caller's.
    pub fn issued(&self, kind: Issuing, certificate_der: &[u8]) -> bool {
        self.authority(kind).signed(certificate_der)
    }
}

/// A new P-256 key and its SubjectPublicKeyInfo.
fn new_key() -> Result<(p256::SecretKey, SubjectPublicKeyInfoOwned), CaError> {
    let secret = p256::SecretKey::try_generate().map_err(|_| CaError::Random)?;
    let spki = x509::spki_of(&secret.public_key())?;
    Ok((secret, spki))
}

/// C=IT, O=tessera staging bureau, CN=`common_name`: the names of the CA, its issuing CAs and the
/// hosts they certify.
fn bureau_name(common_name: &str) -> Result<x509_cert::name::Name, CaError> {
    x509::name(&[
        Attr {
            oid: x509::OID_COUNTRY,
            value: COUNTRY,
        },
        Attr {
            oid: x509::OID_ORGANIZATION,
            value: CA_ORGANIZATION,
        },
        Attr {
            oid: x509::OID_COMMON_NAME,
            value: common_name,
        },
    ])
}

/// Writes an authority's key (PKCS#8 PEM, 0600) and certificate (PEM, 0644) as new files.
fn write_authority(
    dir: &Path,
    key_file: &str,
    cert_file: &str,
    secret: &p256::SecretKey,
    certificate: &Certificate,
) -> Result<(), CaError> {
    let key_pem = secret
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| x509::build_error("PKCS#8", e))?;
    let cert_pem = certificate
        .to_pem(LineEnding::LF)
        .map_err(|e| x509::build_error("PEM", e))?;
    create_file(&dir.join(key_file), key_pem.as_bytes(), 0o600)?;
    create_file(&dir.join(cert_file), cert_pem.as_bytes(), 0o644)
}

/// Reads an authority's key and certificate, refusing a key file broader than 0600 and a
/// certificate that is not the key's.
fn load_authority(dir: &Path, key_file: &str, cert_file: &str) -> Result<Authority, CaError> {
    let key_path = dir.join(key_file);
    let cert_path = dir.join(cert_file);
    let metadata = fs::metadata(&key_path).map_err(io(&key_path))?;
    let mode = metadata.permissions().mode() & 0o7777;
    // Anything beyond owner read/write (group, others, execute, set-id bits) is refused.
    if mode & !0o600 != 0 {
        return Err(CaError::KeyPermissions {
            path: key_path,
            mode,
        });
    }
    let key_pem = zeroize::Zeroizing::new(fs::read_to_string(&key_path).map_err(io(&key_path))?);
    let secret = p256::SecretKey::from_pkcs8_pem(&key_pem).map_err(|e| CaError::Key {
        path: key_path.clone(),
        detail: e.to_string(),
    })?;
    let cert_pem = fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
    let certificate =
        Certificate::from_pem(cert_pem.as_bytes()).map_err(|e| CaError::Certificate {
            path: cert_path.clone(),
            detail: e.to_string(),
        })?;
    let expected = x509::spki_of(&secret.public_key())?;
    if certificate.tbs_certificate().subject_public_key_info() != &expected {
        return Err(CaError::KeyMismatch {
            key: key_path,
            cert: cert_path,
        });
    }
    Authority::new(
        p256::ecdsa::SigningKey::from(&secret),
        certificate,
        &cert_path,
    )
}

/// A PKCS#12 bundle of the key and `chain` (its certificate first, then the CAs up to the root).
fn pkcs12_bundle(
    alias: &str,
    key_pkcs8_der: &[u8],
    local_key_id: &[u8],
    chain: &[Vec<u8>],
    password: &str,
) -> Result<Vec<u8>, CaError> {
    use p12_keystore::{
        Certificate as P12Cert, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain,
    };
    let p12 = |what: &str, e: p12_keystore::error::Error| CaError::Pkcs12(format!("{what}: {e}"));
    let key = PrivateKey::from_der(key_pkcs8_der).map_err(|e| p12("key", e))?;
    let certificates = chain
        .iter()
        .map(|der| P12Cert::from_der(der).map_err(|e| p12("certificate", e)))
        .collect::<Result<Vec<_>, _>>()?;
    let chain = PrivateKeyChain::new(local_key_id, key, certificates);
    let mut store = KeyStore::new();
    store.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .write()
        .map_err(|e| p12("encoding", e))
}
