//! Who may come in: a TLS client certificate checked against the staging CA and the batch registry,
//! the way the real system admits a workstation and then an operator's card. Every "no" is a
//! [`Refusal`] with one sentence a person can act on and a stable code a script can match.

use std::time::SystemTime;

use der::Decode as _;
use personalization::ca::{Issuing, StagingCa};
use personalization::census::Profile;
use personalization::registry::{CardRow, CardState, Registry, RegistryError};
use personalization::workstation::{self, WorkstationState};
use serde::Serialize;

/// Why the lab said no. Each is answered with HTTP 403, a page saying [`Refusal::reason`] and, on
/// the JSON API, `{"error": code, "reason": …}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("this computer offered no workstation certificate: install its PKCS#12 (from `tessera bureau workstation download-all`) in the browser")]
    NoWorkstationCertificate,
    #[error("the {0} certificate offered was not issued by this lab's staging CA")]
    NotFromStagingCa(&'static str),
    #[error("the certificate offered is a {offered} certificate where a {wanted} certificate is wanted: let the browser choose the {wanted} certificate for this address")]
    WrongKindOfCertificate {
        offered: &'static str,
        wanted: &'static str,
    },
    #[error("the {0} certificate offered is outside its validity period")]
    CertificateNotValidNow(&'static str),
    #[error("workstation certificate {0:?} is not one this batch issued")]
    UnknownWorkstation(String),
    #[error("workstation {0} is blocked: its certificate was revoked")]
    WorkstationBlocked(String),
    #[error(
        "workstation {0}'s certificate has expired: request a new one from the security console"
    )]
    WorkstationExpired(String),
    #[error("workstation {0}'s certificate is requested but not issued")]
    WorkstationNotIssued(String),
    #[error("no card certificate was offered: insert your card and let the browser use it (it asks for the PIN)")]
    NoCardCertificate,
    #[error("the card certificate offered is not one this batch issued")]
    UnknownCard,
    #[error("card {card} is {state}: its delivery must be registered by the mayor or an ALS before it can log in")]
    CardNotRegistered { card: String, state: CardState },
    #[error("card {0} is blocked (a new card was requested): use the new card")]
    CardBlocked(String),
    #[error("card {0} has expired")]
    CardExpired(String),
    #[error(
        "{person} is not censused in entity {entity}, which workstation {workstation} belongs to"
    )]
    NotInWorkstationEntity {
        person: String,
        entity: String,
        workstation: String,
    },
    #[error(
        "the card login link has expired or was already used: start again from the login page"
    )]
    BadTicket,
    #[error("the codice fiscale or the access password is wrong")]
    WrongPassword,
    #[error("you are not logged in")]
    NotLoggedIn,
    #[error("this session was opened from workstation {opened}, not from {now}")]
    OtherWorkstation { opened: String, now: String },
    #[error("only the mayor or an ALS of {0} may use the security console")]
    NotSecurityOfficer(String),
}

impl Refusal {
    /// A stable machine-readable name (kebab-case) for the JSON API and for tests.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoWorkstationCertificate => "no-workstation-certificate",
            Refusal::NotFromStagingCa(_) => "not-from-staging-ca",
            Refusal::WrongKindOfCertificate { .. } => "wrong-kind-of-certificate",
            Refusal::CertificateNotValidNow(_) => "certificate-not-valid-now",
            Refusal::UnknownWorkstation(_) => "unknown-workstation",
            Refusal::WorkstationBlocked(_) => "workstation-blocked",
            Refusal::WorkstationExpired(_) => "workstation-expired",
            Refusal::WorkstationNotIssued(_) => "workstation-not-issued",
            Refusal::NoCardCertificate => "no-card-certificate",
            Refusal::UnknownCard => "unknown-card",
            Refusal::CardNotRegistered { .. } => "card-not-registered",
            Refusal::CardBlocked(_) => "card-blocked",
            Refusal::CardExpired(_) => "card-expired",
            Refusal::NotInWorkstationEntity { .. } => "not-in-workstation-entity",
            Refusal::BadTicket => "bad-ticket",
            Refusal::WrongPassword => "wrong-password",
            Refusal::NotLoggedIn => "not-logged-in",
            Refusal::OtherWorkstation { .. } => "other-workstation",
            Refusal::NotSecurityOfficer(_) => "not-security-officer",
        }
    }
}

/// A workstation admitted by its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workstation {
    pub name: String,
    pub entity: String,
}

/// An operator admitted by their card (or by the fallback password), at a workstation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operator {
    pub codice_fiscale: String,
    pub name: String,
    /// The entity the operator acts for: the workstation's.
    pub entity: String,
    pub entity_name: String,
    pub profiles: Vec<Profile>,
    pub card_number: String,
}

impl Operator {
    /// The mayor (`SINDACO`) and the ALS run the entity's security console.
    pub fn is_security_officer(&self) -> bool {
        self.profiles
            .iter()
            .any(|p| matches!(p, Profile::Sindaco | Profile::Als))
    }
}

/// Either a refusal to show the person, or a fault of the lab itself.
#[derive(Debug)]
pub enum Denied {
    Refused(Refusal),
    Fault(String),
}

impl From<Refusal> for Denied {
    fn from(refusal: Refusal) -> Self {
        Denied::Refused(refusal)
    }
}

impl From<RegistryError> for Denied {
    fn from(error: RegistryError) -> Self {
        Denied::Fault(error.to_string())
    }
}

/// `(not_before, not_after)` of a certificate, in Unix seconds.
fn validity(certificate_der: &[u8]) -> Option<(i64, i64)> {
    let certificate = x509_cert::Certificate::from_der(certificate_der).ok()?;
    let validity = certificate.tbs_certificate().validity();
    let seconds = |t: &x509_cert::time::Time| i64::try_from(t.to_unix_duration().as_secs()).ok();
    Some((
        seconds(&validity.not_before)?,
        seconds(&validity.not_after)?,
    ))
}

fn unix(now: SystemTime) -> i64 {
    personalization::lifecycle::unix(now)
}

/// The checks every certificate passes first: issued by our CA, and valid now.
fn from_our_ca(
    ca: &StagingCa,
    certificate_der: &[u8],
    issuing: Issuing,
    kind: &'static str,
    now: SystemTime,
) -> Result<(), Refusal> {
    if !ca.issued(issuing, certificate_der) {
        return Err(Refusal::NotFromStagingCa(kind));
    }
    let now = unix(now);
    match validity(certificate_der) {
        Some((from, until)) if from <= now && now < until => Ok(()),
        _ => Err(Refusal::CertificateNotValidNow(kind)),
    }
}

fn kind_name(kind: Issuing) -> &'static str {
    match kind {
        Issuing::Cards => "card",
        Issuing::Hosts => "workstation",
    }
}

/// Why a certificate that is not a `wanted` one of ours is refused: ours of the other kind (the
/// browser chose the wrong certificate), or not ours at all.
fn refuse_kind(ca: &StagingCa, der: &[u8], wanted: Issuing) -> Refusal {
    let other = match wanted {
        Issuing::Cards => Issuing::Hosts,
        Issuing::Hosts => Issuing::Cards,
    };
    if ca.issued(other, der) {
        Refusal::WrongKindOfCertificate {
            offered: kind_name(other),
            wanted: kind_name(wanted),
        }
    } else {
        Refusal::NotFromStagingCa(kind_name(wanted))
    }
}

/// Admits a workstation by the certificate it offered: from our CA, issued by this batch (byte for
/// byte), active and unexpired.
pub fn workstation(
    ca: &StagingCa,
    registry: &Registry,
    certificate_der: Option<&[u8]>,
    now: SystemTime,
) -> Result<Workstation, Denied> {
    let der = certificate_der.ok_or(Refusal::NoWorkstationCertificate)?;
    if !ca.issued(Issuing::Hosts, der) {
        return Err(refuse_kind(ca, der, Issuing::Hosts).into());
    }
    let row = workstation::by_certificate(registry, der, unix(now))?
        .ok_or_else(|| Refusal::UnknownWorkstation(common_name(der).unwrap_or_default()))?;
    match row.state {
        WorkstationState::Active => {}
        WorkstationState::Blocked => return Err(Refusal::WorkstationBlocked(row.name).into()),
        WorkstationState::Expired => return Err(Refusal::WorkstationExpired(row.name).into()),
        WorkstationState::Requested => return Err(Refusal::WorkstationNotIssued(row.name).into()),
    }
    if let Err(Refusal::CertificateNotValidNow(_)) =
        from_our_ca(ca, der, Issuing::Hosts, "workstation", now)
    {
        return Err(Refusal::WorkstationExpired(row.name).into());
    }
    Ok(Workstation {
        name: row.name,
        entity: row.entity,
    })
}

/// Admits an operator by the card certificate the card signed the handshake with, at `at`.
pub fn card(
    ca: &StagingCa,
    registry: &Registry,
    certificate_der: Option<&[u8]>,
    at: &Workstation,
    now: SystemTime,
) -> Result<Operator, Denied> {
    let der = certificate_der.ok_or(Refusal::NoCardCertificate)?;
    if !ca.issued(Issuing::Cards, der) {
        return Err(refuse_kind(ca, der, Issuing::Cards).into());
    }
    let card = registry
        .card_by_certificate(der)?
        .ok_or(Refusal::UnknownCard)?;
    check_card_state(&card, now)?;
    if from_our_ca(ca, der, Issuing::Cards, "card", now).is_err() {
        return Err(Refusal::CardExpired(card.card_number).into());
    }
    operator(registry, &card, at)
}

/// The state a card must be in to log in: active (registered and not blocked or expired).
pub fn check_card_state(card: &CardRow, now: SystemTime) -> Result<(), Refusal> {
    match card.effective_state(unix(now)) {
        CardState::Active => Ok(()),
        CardState::Blocked => Err(Refusal::CardBlocked(card.card_number.clone())),
        CardState::Expired => Err(Refusal::CardExpired(card.card_number.clone())),
        state @ (CardState::Personalized | CardState::Delivered) => {
            Err(Refusal::CardNotRegistered {
                card: card.card_number.clone(),
                state,
            })
        }
    }
}

/// The operator a card belongs to, acting for the workstation's entity.
pub fn operator(registry: &Registry, card: &CardRow, at: &Workstation) -> Result<Operator, Denied> {
    let Some((_, profiles)) = registry.membership(&at.entity, &card.codice_fiscale)? else {
        return Err(Refusal::NotInWorkstationEntity {
            person: card.codice_fiscale.clone(),
            entity: at.entity.clone(),
            workstation: at.name.clone(),
        }
        .into());
    };
    let entity_name = registry.entity_name(&at.entity)?.unwrap_or_default();
    Ok(Operator {
        codice_fiscale: card.codice_fiscale.clone(),
        name: card.holder.clone(),
        entity: at.entity.clone(),
        entity_name,
        profiles,
        card_number: card.card_number.clone(),
    })
}

/// The subject CN of a certificate, for messages.
fn common_name(certificate_der: &[u8]) -> Option<String> {
    const OID_COMMON_NAME: der::oid::ObjectIdentifier =
        der::oid::ObjectIdentifier::new_unwrap("2.5.4.3");
    let certificate = x509_cert::Certificate::from_der(certificate_der).ok()?;
    let subject = certificate.tbs_certificate().subject();
    let name = subject
        .iter()
        .find(|attribute| attribute.oid == OID_COMMON_NAME)
        .and_then(|attribute| {
            der::asn1::Utf8StringRef::try_from(&attribute.value)
                .map(|s| s.as_str().to_string())
                .or_else(|_| {
                    der::asn1::PrintableStringRef::try_from(&attribute.value)
                        .map(|s| s.as_str().to_string())
                })
                .ok()
        });
    name
}
