//! The issuance line: a card made in memory, from a blank chip to a personalized card with its
//! envelope and sealed second halves, then its files written (unsynced). No database is touched here,
//! so the cards of a group are made on every core at once ([`Line::make_group`]) and committed
//! together (`commit`): they count only after the group's barrier and registry commit.

use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use card_os::{AppletRegistry, Card, CardConfig, Installation, Storage};
use card_transport::{InProcessReader, SharedCard, Transport};
use piv_host::{GenerateOptions, ManagementKey, PinValue, PivError, PivSession};
use piv_types::{tag, KeyAlgorithm, KeySlot, ManagementAlgorithm, ObjectId, PinReference};

use super::BatchError;
use crate::ca::{Holder, StagingCa};
use crate::census::{Census, Person};
use crate::dates;
use crate::envelope::{self, EnvelopeContent};
use crate::registry::{NewCard, Registry};
use crate::secrets::{self, CardSecrets, MasterKey};

/// Everything the line needs to make one card, read from the registry and the issuance index
/// beforehand (so making it needs neither).
pub(crate) struct CardOrder {
    pub codice_fiscale: String,
    pub surname: String,
    pub name: String,
    pub issuer_entity: String,
    /// Entity codes the holder works for, and their names (same order).
    pub entities: Vec<String>,
    pub entity_names: Vec<String>,
    pub card_number: String,
    pub serial: [u8; 16],
    /// The card this one replaces, if any.
    pub replaces: Option<String>,
}

impl CardOrder {
    /// The order for `codice_fiscale`'s card `card_number`, with the holder's data from the registry.
    pub fn from_registry(
        registry: &Registry,
        codice_fiscale: &str,
        issuer_entity: &str,
        card_number: String,
        serial: [u8; 16],
        replaces: Option<String>,
    ) -> Result<Self, BatchError> {
        let (surname, name) = registry
            .person(codice_fiscale)?
            .ok_or_else(|| BatchError::NotInCensus(codice_fiscale.to_string()))?;
        let entities = registry.entities_of(codice_fiscale)?;
        let entity_names = entities
            .iter()
            .map(|code| {
                registry
                    .entity_name(code)
                    .map(|n| n.unwrap_or_else(|| code.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            codice_fiscale: codice_fiscale.to_string(),
            surname,
            name,
            issuer_entity: issuer_entity.to_string(),
            entities,
            entity_names,
            card_number,
            serial,
            replaces,
        })
    }

    /// The order for `person`'s first card `card_number`, with the holder's data from the census the
    /// batch imported (the same the registry holds, without a query per card).
    pub fn from_census(
        census: &Census,
        person: &Person,
        issuer_entity: &str,
        card_number: String,
        serial: [u8; 16],
    ) -> Self {
        let entities: Vec<String> = person
            .registrations
            .iter()
            .map(|r| r.entity.clone())
            .collect();
        let entity_names = entities
            .iter()
            .map(|code| {
                census
                    .entity(code)
                    .map_or_else(|| code.clone(), |e| e.name.clone())
            })
            .collect();
        Self {
            codice_fiscale: person.codice_fiscale.clone(),
            surname: person.surname.clone(),
            name: person.name.clone(),
            issuer_entity: issuer_entity.to_string(),
            entities,
            entity_names,
            card_number,
            serial,
            replaces: None,
        }
    }

    /// Where the card's image lives, relative to the batch directory.
    pub fn card_file(&self) -> String {
        format!("cards/{}.img", self.card_number)
    }
}

/// A finished card, in memory: what the group commit writes and records.
pub(crate) struct MadeCard {
    pub order: CardOrder,
    /// The card's whole state, as an image file's bytes.
    pub image: Vec<u8>,
    pub envelope: envelope::Rendered,
    pub sealed_second_halves: Vec<u8>,
    pub password_verifier: [u8; 32],
    pub certificate_der: Vec<u8>,
    /// Relative to the batch directory.
    pub card_file: String,
    /// The CHUID GUID and the certificate serial, in hex as the registry keeps them.
    pub guid_hex: String,
    pub serial_hex: String,
    /// Unix seconds.
    pub not_after: i64,
}

impl MadeCard {
    /// The registry rows of this card, to commit at `now` (unix seconds).
    pub fn registry_rows(&self, now: i64) -> NewCard<'_> {
        NewCard {
            card_number: &self.order.card_number,
            codice_fiscale: &self.order.codice_fiscale,
            issuer_entity: &self.order.issuer_entity,
            entities: &self.order.entities,
            card_file: &self.card_file,
            certificate_serial: &self.serial_hex,
            certificate_der: &self.certificate_der,
            not_before: now,
            not_after: self.not_after,
            sealed_second_halves: &self.sealed_second_halves,
            password_verifier: &self.password_verifier,
            guid: &self.guid_hex,
            replaces: self.order.replaces.as_deref(),
            now,
        }
    }
}

/// What every card of a run shares.
pub(crate) struct Line<'a> {
    /// Where the cards' files go.
    pub batch_dir: &'a Path,
    pub ca: &'a StagingCa,
    pub master: &'a MasterKey,
    pub profile: super::CardProfile,
    pub pin_length: usize,
    pub now: SystemTime,
}

impl Line<'_> {
    /// Makes every card of a group, on `workers` threads (each a contiguous share of the group), and
    /// returns them in the order given: numbering and output do not depend on which core made what.
    /// The first failure, in group order, is the group's.
    pub fn make_group(
        &self,
        orders: Vec<CardOrder>,
        workers: NonZeroUsize,
    ) -> Result<Vec<(MadeCard, [PathBuf; 3])>, BatchError> {
        let workers = workers.get().min(orders.len()).max(1);
        if workers == 1 {
            return orders
                .into_iter()
                .map(|order| self.make_and_write(order))
                .collect();
        }
        let share = orders.len().div_ceil(workers);
        let mut shares: Vec<Vec<CardOrder>> = Vec::with_capacity(workers);
        let mut orders = orders.into_iter().peekable();
        while orders.peek().is_some() {
            shares.push(orders.by_ref().take(share).collect());
        }
        type Share = Result<Vec<(MadeCard, [PathBuf; 3])>, BatchError>;
        let results: Vec<Share> = std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    scope.spawn(move || {
                        share
                            .into_iter()
                            .map(|order| self.make_and_write(order))
                            .collect()
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|handle| {
                    handle
                        .join()
                        .unwrap_or_else(|_| Err(BatchError::LinePanicked("a worker")))
                })
                .collect()
        });
        let mut made = Vec::new();
        for share in results {
            made.extend(share?);
        }
        Ok(made)
    }

    fn make_and_write(&self, order: CardOrder) -> Result<(MadeCard, [PathBuf; 3]), BatchError> {
        let card = self.make(order)?;
        let written = super::commit::write_files(self.batch_dir, &card)?;
        Ok((card, written))
    }

    /// Makes one card: a blank chip of the batch's profile, personalized through APDUs, its envelope
    /// rendered, its second halves sealed.
    pub fn make(&self, order: CardOrder) -> Result<MadeCard, BatchError> {
        let secrets = CardSecrets::generate(self.pin_length)?;
        let holder = Holder {
            codice_fiscale: order.codice_fiscale.clone(),
            surname: order.surname.clone(),
            given_name: order.name.clone(),
        };
        let (image, personalized) = match self.profile {
            super::CardProfile::Piv => self.make_piv(&order, &holder, &secrets)?,
            super::CardProfile::Cns => self.make_cns(&order, &holder, &secrets)?,
        };
        let halves = secrets.split();
        let content = EnvelopeContent {
            card_number: order.card_number.clone(),
            codice_fiscale: order.codice_fiscale.clone(),
            holder_name: format!("{} {}", order.surname, order.name),
            entities: order.entity_names.clone(),
            expiry: dates::ymd(personalized.not_after),
            card_file: order.card_file(),
            pin_first_half: halves.pin.0.expose().to_string(),
            puk_first_half: halves.puk.0.expose().to_string(),
            password_first_half: halves.password.0.expose().to_string(),
        };
        let envelope = envelope::render(&content)?;
        let sealed_second_halves =
            secrets::seal_second_halves(self.master, &order.card_number, &halves)?;
        let password_verifier = self
            .master
            .password_verifier(&order.card_number, secrets.password.expose());
        Ok(MadeCard {
            card_file: order.card_file(),
            guid_hex: hex::encode(personalized.guid),
            serial_hex: hex::encode(order.serial),
            order,
            image,
            envelope,
            sealed_second_halves,
            password_verifier,
            certificate_der: personalized.certificate_der,
            not_after: personalized.not_after,
        })
    }
}

impl Line<'_> {
    /// A blank chip in memory, as on the line: it becomes a file with its group and counts as
    /// issued only at the registry commit (a crash before that remakes it anyway).
    fn blank_chip(
        &self,
        order: &CardOrder,
        config: CardConfig,
        registry: &AppletRegistry,
        installation: Installation,
    ) -> Result<(Arc<Mutex<Card>>, InProcessReader), BatchError> {
        let card =
            Card::create(config, registry, &[installation], Storage::Memory).map_err(|source| {
                BatchError::CardImage {
                    path: order.card_file().into(),
                    source,
                }
            })?;
        let card = Arc::new(Mutex::new(card));
        let shared: SharedCard = card.clone();
        Ok((card, InProcessReader::new(shared)))
    }

    fn image_of(card: &Arc<Mutex<Card>>) -> Result<Vec<u8>, BatchError> {
        Ok(card
            .lock()
            .map_err(|_| BatchError::LinePanicked("the card runtime"))?
            .image_bytes())
    }

    fn make_piv(
        &self,
        order: &CardOrder,
        holder: &Holder,
        secrets: &CardSecrets,
    ) -> Result<(Vec<u8>, Personalized), BatchError> {
        let card_error = |source| BatchError::Card {
            card_number: order.card_number.clone(),
            source,
        };
        let applets = AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory);
        let installation = Installation {
            aid: piv_applet::aid(),
            params: piv_applet::InstallParams::default().to_bytes(),
            default_selected: true,
        };
        let (card, mut reader) =
            self.blank_chip(order, CardConfig::default(), &applets, installation)?;
        let management_key = ManagementKey::new(
            ManagementAlgorithm::Aes192,
            &self.master.management_key(&order.card_number)[..],
        )
        .map_err(card_error)?;
        let personalized = personalize_card(
            &mut reader,
            self.ca,
            holder,
            order.serial,
            self.now,
            &order.entity_names.first().cloned().unwrap_or_default(),
            &order.card_number,
            secrets,
            &management_key,
        )
        .map_err(card_error)?;
        drop(reader);
        Ok((Self::image_of(&card)?, personalized))
    }

    fn make_cns(
        &self,
        order: &CardOrder,
        holder: &Holder,
        secrets: &CardSecrets,
    ) -> Result<(Vec<u8>, Personalized), BatchError> {
        let applets = AppletRegistry::new().register(cns_applet::aid(), cns_applet::factory);
        let installation = Installation {
            aid: cns_applet::aid(),
            // The factory chip: well-known PIN, PUK and transport key, replaced on the line.
            params: cns_applet::InstallParams::default().to_bytes(),
            default_selected: true,
        };
        let config = CardConfig {
            atr: cns_applet::CNS_ATR.to_vec(),
            ..CardConfig::default()
        };
        let (card, mut reader) = self.blank_chip(order, config, &applets, installation)?;
        let card_key = self.master.cns_personalization_key(&order.card_number);
        let issuer_code = order.entities.first().cloned().unwrap_or_default();
        let personalized = crate::cns::personalize(
            &mut reader,
            self.ca,
            &crate::cns::CnsOrder {
                holder,
                issuer_code: &issuer_code,
                card_number: &order.card_number,
                certificate_serial: order.serial,
                not_before: self.now,
                pin: secrets.pin.expose(),
                puk: secrets.puk.expose(),
                factory_key: &cns_applet::DEFAULT_PERSONALIZATION_KEY,
                card_key: &card_key,
            },
        )
        .map_err(|source| BatchError::CnsCard {
            card_number: order.card_number.clone(),
            source,
        })?;
        drop(reader);
        Ok((
            Self::image_of(&card)?,
            Personalized {
                certificate_der: personalized.certificate_der,
                // A CNS has no CHUID: the registry's card identifier is EF_IDCarta.
                guid: personalized.card_id,
                not_after: dates::unix(personalized.not_after),
            },
        ))
    }
}

/// What personalization put on the card.
pub struct Personalized {
    pub certificate_der: Vec<u8>,
    pub guid: [u8; 16],
    /// Unix seconds.
    pub not_after: i64,
}

/// The personalization sequence, APDUs only: factory management key → on-card 9A key → certificate →
/// CHUID with a fresh GUID → printed information → PIN and PUK → per-card management key.
#[allow(clippy::too_many_arguments)]
pub fn personalize_card(
    transport: &mut dyn Transport,
    ca: &StagingCa,
    holder: &Holder,
    serial: [u8; 16],
    now: SystemTime,
    affiliation: &str,
    card_number: &str,
    secrets: &CardSecrets,
    management_key: &ManagementKey,
) -> Result<Personalized, PivError> {
    use apdu::tlv;
    let mut piv = PivSession::open(transport)?;
    piv.authenticate(&ManagementKey::factory())?;
    let public = piv.generate(
        KeySlot::Authentication,
        KeyAlgorithm::EccP256,
        GenerateOptions::default(),
    )?;
    let public_point = public
        .ec_point()
        .map(<[u8]>::to_vec)
        .ok_or_else(|| unexpected("key generation", "not an EC key"))?;
    let certificate_der = ca
        .issue_user(holder, &public_point, serial, now)
        .map_err(|e| unexpected("certificate issuance", e))?;
    piv.put_certificate(KeySlot::Authentication, &certificate_der)?;
    let not_after = dates::unix(crate::ca::not_after(now, crate::ca::VALIDITY_YEARS));

    // CHUID: keep the card's FASC-N, write a fresh GUID and the expiry.
    let mut guid = [0u8; 16];
    getrandom::fill(&mut guid).map_err(|e| unexpected("GUID", e))?;
    let chuid = piv.get_object(ObjectId::CHUID)?;
    let mut new_chuid = Vec::new();
    for item in tlv::iter(&chuid).flatten() {
        match item.tag.0 {
            tag::CHUID_GUID => tlv::write(&mut new_chuid, tag::CHUID_GUID, &guid),
            tag::CHUID_EXPIRY => {
                let (y, m, d) = dates::civil(not_after);
                let expiry = format!("{y:04}{m:02}{d:02}");
                tlv::write(&mut new_chuid, tag::CHUID_EXPIRY, expiry.as_bytes());
            }
            _ => tlv::write(&mut new_chuid, item.tag, item.value),
        }
    }
    piv.put_object(ObjectId::CHUID, &new_chuid)?;

    // Printed information (SP 800-73-4 §3.1.4): name, affiliation, expiry, card serial, issuer.
    let mut printed = Vec::new();
    let name = format!("{} {}", holder.surname, holder.given_name);
    tlv::write(&mut printed, tag::PRINTED_NAME, truncate(&name, 32));
    tlv::write(
        &mut printed,
        tag::PRINTED_AFFILIATION,
        truncate(affiliation, 20),
    );
    tlv::write(
        &mut printed,
        tag::PRINTED_EXPIRY,
        dates::piv_expiry(not_after).as_bytes(),
    );
    tlv::write(&mut printed, tag::PRINTED_SERIAL, card_number.as_bytes());
    tlv::write(&mut printed, tag::PRINTED_ISSUER, b"tessera staging");
    tlv::write(&mut printed, tag::ERROR_DETECTION, &[]);
    piv.put_object(ObjectId::PRINTED_INFO, &printed)?;

    let pin = |value: &str| PinValue::new(value);
    expect_changed(piv.change_reference(
        PinReference::Pin,
        &pin(piv_types::DEFAULT_PIN)?,
        &pin(secrets.pin.expose())?,
    )?)?;
    expect_changed(piv.change_reference(
        PinReference::Puk,
        &pin(piv_types::DEFAULT_PUK)?,
        &pin(secrets.puk.expose())?,
    )?)?;
    piv.set_management_key(management_key, false)?;
    // Prove the new key works before the card leaves the line.
    piv.authenticate(management_key)?;
    Ok(Personalized {
        certificate_der,
        guid,
        not_after,
    })
}

fn unexpected(operation: &'static str, detail: impl std::fmt::Display) -> PivError {
    PivError::Unexpected {
        operation,
        detail: detail.to_string(),
    }
}

/// A factory PIN or PUK that the card does not take back is a card we must not ship.
fn expect_changed(outcome: piv_host::PinOutcome) -> Result<(), PivError> {
    match outcome {
        piv_host::PinOutcome::Verified => Ok(()),
        other => Err(PivError::Refused {
            operation: "CHANGE REFERENCE DATA",
            sw: other.status_word(),
        }),
    }
}

fn truncate(text: &str, max: usize) -> &[u8] {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text.as_bytes()[..end]
}
