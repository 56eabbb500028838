//! A card's life after personalization: delivery to the entity, registration of the delivery to the
//! holder (which releases the second halves by e-mail), re-sending them, and replacement (which blocks
//! the current card at once and revokes its certificate).

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use thiserror::Error;

use crate::batch::{self, BatchError, BatchOptions};
use crate::ca::StagingCa;
use crate::census::Profile;
use crate::dates;
use crate::issuer::Issuer;
use crate::mail::{self, MailError, Release, SmtpConfig};
use crate::registry::{self, append_event, CardRow, CardState, EventKind, Registry, RegistryError};
use crate::secrets::{self, MasterKey};

pub use crate::dates::{unix, ymd};

#[derive(Debug, Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error(transparent)]
    Secrets(#[from] secrets::SecretsError),
    #[error("card {0} is not in this batch")]
    UnknownCard(String),
    #[error("entity {0} is not in this batch's census")]
    UnknownEntity(String),
    #[error("card {0} has no escrowed halves")]
    NoEscrowedHalves(String),
    #[error("no census e-mail for {0}")]
    NoCensusEmail(String),
    #[error("{person} is not censused in entity {entity}: the parcel goes to the mayor or a censused delegate")]
    NotCensusedIn { person: String, entity: String },
    #[error("entity {0} has no personalized cards waiting for delivery")]
    NothingToDeliver(String),
    #[error("card {0} has not been delivered to its entity yet")]
    NotDelivered(String),
    #[error("card {0} is already registered")]
    AlreadyRegistered(String),
    #[error("card {card} is {state} and cannot be registered")]
    CannotRegister { card: String, state: CardState },
    #[error("card {card} is {state}: the halves can be re-sent only for registered cards")]
    NotRegistered { card: String, state: CardState },
    #[error("{person} is a mayor or ALS of {entity} but has no active card to act with")]
    NoActiveCard { person: String, entity: String },
    #[error("{person} is neither the mayor nor an ALS of an entity of card {card}")]
    NotMayorOrAls { person: String, card: String },
    #[error("card {0} is already blocked")]
    AlreadyBlocked(String),
    #[error("replacing card {card} would leave entity {entity} with no active mayor or ALS card; use --force to do it anyway")]
    LastMayorOrAls { card: String, entity: String },
}

impl From<rusqlite::Error> for LifecycleError {
    fn from(error: rusqlite::Error) -> Self {
        LifecycleError::Registry(RegistryError::Sql(error))
    }
}

/// Where released second halves go: `.eml` files in the outbox, or a real SMTP server.
pub struct Mailer {
    pub outbox: PathBuf,
    pub smtp: Option<SmtpConfig>,
    pub from: String,
}

impl Mailer {
    /// The batch's outbox, with SMTP if configured.
    pub fn for_batch(batch_dir: &Path, smtp: Option<SmtpConfig>) -> Self {
        let from = smtp
            .as_ref()
            .map(|c| c.from.clone())
            .unwrap_or_else(|| "tessera-staging-bureau@staging.invalid".to_string());
        Self {
            outbox: batch_dir.join("outbox"),
            smtp,
            from,
        }
    }
}

/// The context every lifecycle operation needs.
pub struct Batch<'a> {
    pub dir: &'a Path,
    pub registry: Registry,
    pub master: MasterKey,
    pub now: SystemTime,
}

impl<'a> Batch<'a> {
    pub fn open(
        dir: &'a Path,
        master_key: Option<&Path>,
        now: SystemTime,
    ) -> Result<Self, LifecycleError> {
        let registry = Registry::open_existing(dir)?;
        let master = batch::master_key(dir, master_key)?;
        Ok(Self {
            dir,
            registry,
            master,
            now,
        })
    }

    fn now(&self) -> i64 {
        dates::unix(self.now)
    }

    fn card(&self, number: &str) -> Result<CardRow, LifecycleError> {
        self.registry
            .card(number)?
            .ok_or_else(|| LifecycleError::UnknownCard(number.to_string()))
    }

    fn profiles(&self, entity: &str, codice_fiscale: &str) -> Result<Vec<Profile>, LifecycleError> {
        Ok(self
            .registry
            .membership(entity, codice_fiscale)?
            .map(|(_, profiles)| profiles)
            .unwrap_or_default())
    }

    fn is_mayor_or_als(&self, entity: &str, codice_fiscale: &str) -> Result<bool, LifecycleError> {
        Ok(self
            .profiles(entity, codice_fiscale)?
            .iter()
            .any(|p| matches!(p, Profile::Sindaco | Profile::Als)))
    }

    fn has_active_card(&self, codice_fiscale: &str) -> Result<bool, LifecycleError> {
        let now = self.now();
        Ok(self
            .registry
            .current_card(codice_fiscale)?
            .is_some_and(|c| c.effective_state(now) == CardState::Active))
    }

    fn set_state(
        &mut self,
        card: &str,
        state: CardState,
        event: EventKind,
        entity: Option<&str>,
        actor: Option<&str>,
    ) -> Result<(), LifecycleError> {
        let now = self.now();
        let tx = self.registry.transaction()?;
        registry::set_card_state(&tx, card, state)?;
        append_event(&tx, now, event, Some(card), entity, actor, "")?;
        tx.commit().map_err(RegistryError::from)?;
        Ok(())
    }

    /// Sends (or writes) the e-mail with a card's second halves to the holder's census address.
    fn release(
        &mut self,
        card: &CardRow,
        resend: bool,
        mailer: &Mailer,
    ) -> Result<PathBuf, LifecycleError> {
        let sealed = self
            .registry
            .sealed_halves(&card.card_number)?
            .ok_or_else(|| LifecycleError::NoEscrowedHalves(card.card_number.clone()))?;
        let (pin, puk, password) =
            secrets::unseal_second_halves(&self.master, &card.card_number, &sealed)?;
        let (email, _) = self
            .registry
            .membership(&card.issuer_entity, &card.codice_fiscale)?
            .ok_or_else(|| LifecycleError::NoCensusEmail(card.codice_fiscale.clone()))?;
        let release = Release {
            card_number: card.card_number.clone(),
            holder_name: card.holder.clone(),
            to: email.clone(),
            pin_second_half: pin.expose().to_string(),
            puk_second_half: puk.expose().to_string(),
            password_second_half: password.expose().to_string(),
            resend,
        };
        let written = match &mailer.smtp {
            None => mail::write_outbox(&mailer.outbox, &release, &mailer.from, self.now)?,
            Some(config) => {
                let message = mail::compose(&release, &mailer.from, self.now)?;
                mail::send(config, &message, &email)?;
                PathBuf::from(format!("smtp://{}:{}", config.host, config.port))
            }
        };
        let now = self.now();
        let tx = self.registry.transaction()?;
        registry::count_release(&tx, &card.card_number)?;
        // The event names the address, never the halves.
        append_event(
            &tx,
            now,
            if resend {
                EventKind::HalvesResent
            } else {
                EventKind::HalvesReleased
            },
            Some(&card.card_number),
            None,
            None,
            &email,
        )?;
        tx.commit().map_err(RegistryError::from)?;
        Ok(written)
    }

    /// The prefecture hands an entity's parcel to its mayor or a censused delegate: every personalized
    /// card the entity issued becomes delivered; the mayor's own card is active at once (halves released).
    /// Returns `(delivered, activated)` card numbers.
    pub fn deliver(
        &mut self,
        entity: &str,
        to: &str,
        mailer: &Mailer,
    ) -> Result<(Vec<String>, Vec<String>), LifecycleError> {
        if self.registry.entity_name(entity)?.is_none() {
            return Err(LifecycleError::UnknownEntity(entity.to_string()));
        }
        if self.registry.membership(entity, to)?.is_none() {
            return Err(LifecycleError::NotCensusedIn {
                person: to.to_string(),
                entity: entity.to_string(),
            });
        }
        let cards: Vec<CardRow> = self
            .registry
            .cards()?
            .into_iter()
            .filter(|c| c.issuer_entity == entity && c.state == CardState::Personalized)
            .collect();
        if cards.is_empty() {
            return Err(LifecycleError::NothingToDeliver(entity.to_string()));
        }
        let now = self.now();
        {
            let tx = self.registry.transaction()?;
            for card in &cards {
                registry::mark_delivered(&tx, &card.card_number, to)?;
                append_event(
                    &tx,
                    now,
                    EventKind::Delivered,
                    Some(&card.card_number),
                    Some(entity),
                    Some(to),
                    "",
                )?;
            }
            tx.commit().map_err(RegistryError::from)?;
        }
        let mut activated = Vec::new();
        for card in &cards {
            if self
                .profiles(entity, &card.codice_fiscale)?
                .contains(&Profile::Sindaco)
            {
                self.set_state(
                    &card.card_number,
                    CardState::Active,
                    EventKind::ActivatedOnDelivery,
                    Some(entity),
                    Some(to),
                )?;
                let card = self.card(&card.card_number)?;
                self.release(&card, false, mailer)?;
                activated.push(card.card_number.clone());
            }
        }
        Ok((
            cards.into_iter().map(|c| c.card_number).collect(),
            activated,
        ))
    }

    /// The mayor or an ALS of one of the card's entities registers its delivery to the holder: the card
    /// becomes active and its second halves are e-mailed.
    pub fn register(
        &mut self,
        card_number: &str,
        by: &str,
        mailer: &Mailer,
    ) -> Result<PathBuf, LifecycleError> {
        let card = self.card(card_number)?;
        match card.effective_state(self.now()) {
            CardState::Delivered => {}
            CardState::Personalized => {
                return Err(LifecycleError::NotDelivered(card_number.to_string()))
            }
            CardState::Active => {
                return Err(LifecycleError::AlreadyRegistered(card_number.to_string()))
            }
            state => {
                return Err(LifecycleError::CannotRegister {
                    card: card_number.to_string(),
                    state,
                })
            }
        }
        let entity = self.authorize(&card, by)?;
        self.set_state(
            card_number,
            CardState::Active,
            EventKind::Registered,
            Some(&entity),
            Some(by),
        )?;
        let card = self.card(card_number)?;
        self.release(&card, false, mailer)
    }

    /// "Invio PIN/PUK": the second halves again, only for registered cards.
    pub fn resend(
        &mut self,
        card_number: &str,
        by: &str,
        mailer: &Mailer,
    ) -> Result<PathBuf, LifecycleError> {
        let card = self.card(card_number)?;
        if card.effective_state(self.now()) != CardState::Active {
            return Err(LifecycleError::NotRegistered {
                card: card_number.to_string(),
                state: card.effective_state(self.now()),
            });
        }
        self.authorize(&card, by)?;
        self.release(&card, true, mailer)
    }

    /// Checks that `by` is a mayor or ALS of one of the card's entities with an active card of their own
    /// (they act from the console, logged in with it). Returns that entity.
    fn authorize(&self, card: &CardRow, by: &str) -> Result<String, LifecycleError> {
        for entity in &card.entities {
            if self.is_mayor_or_als(entity, by)? {
                if !self.has_active_card(by)? {
                    return Err(LifecycleError::NoActiveCard {
                        person: by.to_string(),
                        entity: entity.clone(),
                    });
                }
                return Ok(entity.clone());
            }
        }
        Err(LifecycleError::NotMayorOrAls {
            person: by.to_string(),
            card: card.card_number.clone(),
        })
    }

    /// Requests a new card for the holder: the current card is blocked at once and its certificate
    /// revoked; a new card is personalized. Refused when it would leave an entity with no active mayor or
    /// ALS card, unless `force`. Returns the new card number.
    pub fn replace(
        &mut self,
        card_number: &str,
        by: &str,
        force: bool,
        ca_dir: &Path,
        options: &BatchOptions,
    ) -> Result<String, LifecycleError> {
        let card = self.card(card_number)?;
        if card.state == CardState::Blocked {
            return Err(LifecycleError::AlreadyBlocked(card_number.to_string()));
        }
        let by_holder_himself = by == card.codice_fiscale;
        if !by_holder_himself {
            self.authorize(&card, by)?;
        }
        let now = self.now();
        if !force && card.effective_state(now) == CardState::Active {
            for entity in &card.entities {
                if !self.is_mayor_or_als(entity, &card.codice_fiscale)? {
                    continue;
                }
                let others = self
                    .registry
                    .cards()?
                    .into_iter()
                    .filter(|c| c.card_number != card.card_number && c.entities.contains(entity))
                    .filter(|c| c.effective_state(now) == CardState::Active)
                    .filter(|c| {
                        self.is_mayor_or_als(entity, &c.codice_fiscale)
                            .unwrap_or(false)
                    })
                    .count();
                if others == 0 {
                    return Err(LifecycleError::LastMayorOrAls {
                        card: card_number.to_string(),
                        entity: entity.clone(),
                    });
                }
            }
        }
        {
            let tx = self.registry.transaction()?;
            registry::set_card_state(&tx, card_number, CardState::Blocked)?;
            registry::revoke_certificate(&tx, &card.certificate_serial)?;
            append_event(
                &tx,
                now,
                EventKind::BlockedForReplacement,
                Some(card_number),
                None,
                Some(by),
                if force { "forced" } else { "" },
            )?;
            tx.commit().map_err(RegistryError::from)?;
        }
        let ca = StagingCa::open(ca_dir).map_err(BatchError::from)?;
        let mut issuer = Issuer::open(ca_dir)?;
        let prefix = card_number[..card_number.len().saturating_sub(6)].to_string();
        let steps = batch::DurableSteps::new(options.crash_after_durable_step);
        let new_number = match self.registry.allocation(&card.codice_fiscale)? {
            Some((number, Some(old))) if old == card_number => number,
            _ => {
                let batch_id = self.registry.batch_id()?;
                let number = issuer.claim_card_number(
                    &prefix,
                    &format!("batch {batch_id} replacement of {card_number}"),
                )?;
                steps.took("card number claimed")?;
                self.registry.record_allocation(
                    &card.codice_fiscale,
                    &number,
                    Some(card_number),
                )?;
                steps.took("card number recorded")?;
                number
            }
        };
        batch::replace_card(
            &steps,
            &ca,
            &mut issuer,
            &mut self.registry,
            &self.master,
            self.dir,
            options,
            &card.codice_fiscale,
            &card.issuer_entity,
            &new_number,
            card_number,
        )?;
        Ok(new_number)
    }

    /// Every card with its effective state.
    pub fn status(&self) -> Result<Vec<(CardRow, CardState)>, LifecycleError> {
        let now = self.now();
        Ok(self
            .registry
            .cards()?
            .into_iter()
            .map(|c| {
                let state = c.effective_state(now);
                (c, state)
            })
            .collect())
    }
}
