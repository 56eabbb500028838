//! An HTTPS client for the lab whose identities are real: a workstation's PKCS#12 (a software key,
//! as the browser holds it) and a card, whose key never leaves it — every TLS handshake signature is
//! a card command (PIV GENERAL AUTHENTICATE, CNS PSO COMPUTE DIGITAL SIGNATURE) over a `Transport`.
//! `tessera demo` logs in with it when no browser is there, and the tests log in with it.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use card_transport::Transport;
use der::Decode as _;
use piv_types::{KeyAlgorithm, KeySlot};
use rustls::client::ResolvesClientCert;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::sign::{CertifiedKey, Signer, SigningKey};
use rustls::{SignatureAlgorithm, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::http;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the card refused the PIN ({0})")]
    PinRefused(String),
    #[error("the card: {0}")]
    Card(String),
    #[error("the card's certificate: {0}")]
    Certificate(String),
    #[error("the workstation's PKCS#12: {0}")]
    Pkcs12(String),
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("talking to the lab: {0}")]
    Io(#[from] std::io::Error),
    #[error("the lab's answer: {0}")]
    Reply(String),
}

/// A TLS client identity: certificate chain, key, and the TLS versions its key can sign for.
#[derive(Clone, Debug)]
pub struct Identity {
    key: Arc<CertifiedKey>,
    /// An RSA card signs PKCS#1 v1.5 only (the CNS card pads on the card), which TLS 1.3 forbids
    /// for handshake signatures: such a card logs in over TLS 1.2, as browsers do with it.
    tls12_only: bool,
}

impl Identity {
    pub fn certificate_der(&self) -> &[u8] {
        self.key.cert.first().map_or(&[], |c| c.as_ref())
    }

    /// A workstation certificate from its PKCS#12 bundle and installation password.
    pub fn from_pkcs12(pkcs12: &[u8], password: &str) -> Result<Self, ClientError> {
        let store = p12_keystore::KeyStore::from_pkcs12(
            pkcs12,
            password,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .map_err(|e| ClientError::Pkcs12(e.to_string()))?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| ClientError::Pkcs12("no key in the bundle".into()))?;
        let certificates: Vec<CertificateDer<'static>> = chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
        let signing = rustls::crypto::ring::default_provider()
            .key_provider
            .load_private_key(key)?;
        Ok(Self {
            key: Arc::new(CertifiedKey::new(certificates, signing)),
            tls12_only: false,
        })
    }

    /// The card in `transport`: PIV (its 9A authentication key) when the card answers SELECT PIV,
    /// else a CNS card. The PIN is verified once here, as middleware does before the first
    /// signature; a wrong PIN is [`ClientError::PinRefused`] with the tries left.
    pub fn from_card(
        mut transport: Box<dyn Transport + Send>,
        pin: &str,
    ) -> Result<Self, ClientError> {
        let is_piv = piv_host::PivSession::open(&mut *transport).is_ok();
        let (certificate, kind) = if is_piv {
            let mut piv = piv_host::PivSession::attach(&mut *transport);
            let value =
                piv_host::PinValue::new(pin).map_err(|e| ClientError::Card(e.to_string()))?;
            match piv
                .verify_pin(&value)
                .map_err(|e| ClientError::Card(e.to_string()))?
            {
                piv_host::PinOutcome::Verified => {}
                other => return Err(ClientError::PinRefused(format!("{other:?}"))),
            }
            let certificate = piv
                .read_certificate(KeySlot::Authentication)
                .map_err(|e| ClientError::Card(e.to_string()))?
                .ok_or_else(|| ClientError::Card("no certificate in slot 9A".into()))?;
            let kind = match public_key_kind(&certificate)? {
                KeyKind::P256 => CardKind::PivP256,
                KeyKind::Rsa { modulus_len } => CardKind::PivRsa { modulus_len },
            };
            (certificate, kind)
        } else {
            let mut cns = cns_host::CnsSession::new(&mut *transport);
            match cns
                .verify(cns_host::Secret::Pin, pin)
                .map_err(|e| ClientError::Card(e.to_string()))?
            {
                cns_host::PinOutcome::Verified => {}
                other => return Err(ClientError::PinRefused(format!("{other:?}"))),
            }
            let certificate = cns
                .read_file(cns_host::path::CERTIFICATE)
                .map_err(|e| ClientError::Card(e.to_string()))?;
            match public_key_kind(&certificate)? {
                KeyKind::Rsa { .. } => (certificate, CardKind::Cns),
                KeyKind::P256 => {
                    return Err(ClientError::Certificate(
                        "a CNS card with a P-256 certificate".into(),
                    ))
                }
            }
        };
        let signing = Arc::new(CardSigningKey {
            card: Arc::new(Mutex::new(transport)),
            kind,
        });
        Ok(Self {
            key: Arc::new(CertifiedKey::new(
                vec![CertificateDer::from(certificate)],
                signing,
            )),
            tls12_only: kind != CardKind::PivP256,
        })
    }
}

enum KeyKind {
    P256,
    Rsa { modulus_len: usize },
}

fn public_key_kind(certificate_der: &[u8]) -> Result<KeyKind, ClientError> {
    const RSA: der::oid::ObjectIdentifier =
        der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
    const EC: der::oid::ObjectIdentifier =
        der::oid::ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
    let certificate = x509_cert::Certificate::from_der(certificate_der)
        .map_err(|e| ClientError::Certificate(e.to_string()))?;
    let spki = certificate.tbs_certificate().subject_public_key_info();
    let key = spki.subject_public_key.raw_bytes();
    if spki.algorithm.oid == EC && key.len() == 65 {
        return Ok(KeyKind::P256);
    }
    if spki.algorithm.oid == RSA {
        // RSAPublicKey ::= SEQUENCE { modulus INTEGER, … }: the modulus length without its sign byte.
        let mut reader =
            der::SliceReader::new(key).map_err(|e| ClientError::Certificate(e.to_string()))?;
        let modulus_len = der::Reader::sequence(&mut reader, |inner| {
            let modulus = der::asn1::UintRef::decode(inner)?;
            let _exponent = der::asn1::UintRef::decode(inner)?;
            Ok(modulus.as_bytes().len())
        })
        .map_err(|e: der::Error| ClientError::Certificate(e.to_string()))?;
        return Ok(KeyKind::Rsa { modulus_len });
    }
    Err(ClientError::Certificate(
        "the key is neither P-256 nor RSA".into(),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CardKind {
    PivP256,
    PivRsa { modulus_len: usize },
    Cns,
}

/// rustls's signing key, backed by the card.
struct CardSigningKey {
    card: Arc<Mutex<Box<dyn Transport + Send>>>,
    kind: CardKind,
}

impl std::fmt::Debug for CardSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSigningKey")
            .field("kind", &self.kind)
            .finish()
    }
}

impl SigningKey for CardSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        let scheme = match self.kind {
            CardKind::PivP256 => SignatureScheme::ECDSA_NISTP256_SHA256,
            CardKind::PivRsa { .. } | CardKind::Cns => SignatureScheme::RSA_PKCS1_SHA256,
        };
        offered.contains(&scheme).then(|| {
            Box::new(CardSigner {
                card: Arc::clone(&self.card),
                kind: self.kind,
                scheme,
            }) as Box<dyn Signer>
        })
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.kind {
            CardKind::PivP256 => SignatureAlgorithm::ECDSA,
            CardKind::PivRsa { .. } | CardKind::Cns => SignatureAlgorithm::RSA,
        }
    }
}

struct CardSigner {
    card: Arc<Mutex<Box<dyn Transport + Send>>>,
    kind: CardKind,
    scheme: SignatureScheme,
}

impl std::fmt::Debug for CardSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardSigner")
            .field("scheme", &self.scheme)
            .finish()
    }
}

/// DER of `DigestInfo { sha256, digest }` without the digest (RFC 8017 §9.2 note 1).
const SHA256_DIGEST_INFO_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

impl Signer for CardSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let digest = Sha256::digest(message);
        let digest_info = [SHA256_DIGEST_INFO_PREFIX.as_slice(), digest.as_slice()].concat();
        let mut card = self.card.lock().map_err(|_| {
            rustls::Error::General("the card is unusable after a failed signature".into())
        })?;
        let card_error = |e: &dyn std::fmt::Display| {
            rustls::Error::General(format!("the card did not sign: {e}"))
        };
        match self.kind {
            CardKind::PivP256 => piv_host::PivSession::attach(&mut **card)
                .sign(KeySlot::Authentication, KeyAlgorithm::EccP256, &digest)
                .map_err(|e| card_error(&e)),
            CardKind::PivRsa { modulus_len } => {
                // EMSA-PKCS1-v1_5: 00 01 FF… 00 DigestInfo, built here because the PIV card's RSA
                // operation is raw.
                let padding = modulus_len
                    .checked_sub(digest_info.len() + 3)
                    .filter(|n| *n >= 8)
                    .ok_or_else(|| card_error(&"the RSA key is too short for SHA-256"))?;
                let block = [
                    &[0x00, 0x01][..],
                    &vec![0xFF; padding],
                    &[0x00],
                    &digest_info,
                ]
                .concat();
                let algorithm = match modulus_len {
                    128 => KeyAlgorithm::Rsa1024,
                    256 => KeyAlgorithm::Rsa2048,
                    384 => KeyAlgorithm::Rsa3072,
                    512 => KeyAlgorithm::Rsa4096,
                    _ => return Err(card_error(&"an RSA key of unusual length")),
                };
                piv_host::PivSession::attach(&mut **card)
                    .sign(KeySlot::Authentication, algorithm, &block)
                    .map_err(|e| card_error(&e))
            }
            CardKind::Cns => cns_host::CnsSession::new(&mut **card)
                .sign_digest_info(&digest_info)
                .map_err(|e| card_error(&e)),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

#[derive(Debug)]
struct Fixed(Option<Arc<CertifiedKey>>);

impl ResolvesClientCert for Fixed {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.0.clone()
    }

    fn has_certs(&self) -> bool {
        self.0.is_some()
    }
}

/// One HTTP reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Result<serde_json::Value, ClientError> {
        serde_json::from_slice(&self.body)
            .map_err(|e| ClientError::Reply(format!("status {}, not JSON: {e}", self.status)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One request over a fresh TLS connection to `addr` (server name `localhost`), trusting only the
/// staging CA, offering `identity` if the server asks.
pub fn request(
    addr: SocketAddr,
    ca_der: &[u8],
    identity: Option<&Identity>,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Reply, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca_der.to_vec()))?;
    let versions: &[&rustls::SupportedProtocolVersion] = if identity.is_some_and(|i| i.tls12_only) {
        &[&rustls::version::TLS12]
    } else {
        rustls::DEFAULT_VERSIONS
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)?
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Fixed(identity.map(|i| Arc::clone(&i.key)))));
    let name = ServerName::try_from("localhost").map_err(|e| ClientError::Reply(e.to_string()))?;
    let connection = rustls::ClientConnection::new(Arc::new(config), name)?;
    let socket = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|source| ClientError::Connect { addr, source })?;
    socket.set_read_timeout(Some(Duration::from_secs(60)))?;
    socket.set_nodelay(true)?;
    let mut tls = rustls::StreamOwned::new(connection, socket);
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
        addr.port(),
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes())?;
    tls.write_all(body)?;
    tls.flush()?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closed without close_notify after a complete answer is tolerated.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e.into()),
    }
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Result<Reply, ClientError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ClientError::Reply("no end of head".into()))?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| ClientError::Reply("no status line".into()))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    })
}

/// A person at a certified workstation: the workstation's identity on every request, a session
/// cookie once logged in.
pub struct LabClient {
    pub workstation_door: SocketAddr,
    ca_der: Vec<u8>,
    workstation: Identity,
    session: Option<String>,
}

impl LabClient {
    pub fn new(workstation_door: SocketAddr, ca_der: Vec<u8>, workstation: Identity) -> Self {
        Self {
            workstation_door,
            ca_der,
            workstation,
            session: None,
        }
    }

    fn cookie(&self) -> Option<String> {
        self.session
            .as_ref()
            .map(|s| format!("{}={s}", crate::server::SESSION_COOKIE))
    }

    pub fn get(&self, path: &str) -> Result<Reply, ClientError> {
        let cookie = self.cookie();
        let mut headers = vec![];
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        request(
            self.workstation_door,
            &self.ca_der,
            Some(&self.workstation),
            "GET",
            path,
            &headers,
            b"",
        )
    }

    pub fn post(&self, path: &str, fields: &[(&str, &str)]) -> Result<Reply, ClientError> {
        let cookie = self.cookie();
        let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
        if let Some(cookie) = &cookie {
            headers.push(("Cookie", cookie.as_str()));
        }
        let body = fields
            .iter()
            .map(|(n, v)| {
                format!(
                    "{}={}",
                    http::encode_component(n),
                    http::encode_component(v)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        request(
            self.workstation_door,
            &self.ca_der,
            Some(&self.workstation),
            "POST",
            path,
            &headers,
            body.as_bytes(),
        )
    }

    /// The card login: a ticket from the workstation door, then the card door with the card as the
    /// TLS client identity. Returns the lab's answer (whoami and session on success, the refusal
    /// otherwise) and keeps the session.
    pub fn login_with_card(&mut self, card: &Identity) -> Result<Reply, ClientError> {
        let ticket = self.get("/api/login")?;
        if ticket.status != 200 {
            return Ok(ticket);
        }
        let ticket = ticket.json()?;
        let url = ticket["card_login"]
            .as_str()
            .ok_or_else(|| ClientError::Reply("no card_login in /api/login".into()))?;
        let (port, path) = door_of(url)?;
        let door = SocketAddr::new(self.workstation_door.ip(), port);
        let reply = request(door, &self.ca_der, Some(card), "GET", &path, &[], b"")?;
        self.keep_session(&reply)?;
        Ok(reply)
    }

    pub fn login_with_password(
        &mut self,
        codice_fiscale: &str,
        password: &str,
    ) -> Result<Reply, ClientError> {
        let reply = self.post(
            "/api/login/password",
            &[("codice_fiscale", codice_fiscale), ("password", password)],
        )?;
        self.keep_session(&reply)?;
        Ok(reply)
    }

    fn keep_session(&mut self, reply: &Reply) -> Result<(), ClientError> {
        if reply.status == 200 {
            self.session = reply.json()?["session"].as_str().map(str::to_string);
        }
        Ok(())
    }
}

/// `(port, path?query)` of an `https://host:port/path` URL.
fn door_of(url: &str) -> Result<(u16, String), ClientError> {
    let bad = || ClientError::Reply(format!("not an https://host:port/ URL: {url}"));
    let rest = url.strip_prefix("https://").ok_or_else(bad)?;
    let (authority, path) = rest.split_once('/').ok_or_else(bad)?;
    let port = authority
        .rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .ok_or_else(bad)?;
    Ok((port, format!("/{path}")))
}
