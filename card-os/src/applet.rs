//! What an applet sees of the card: the [`Applet`] trait, the per-command [`Context`] (its own slice of
//! persistent and transient memory, crypto, clock) and the [`Reply`] buffer. Nothing else.
//!
//! # Lifecycle rules
//! - An applet instance keeps **no state of its own**: everything that must survive a command goes in
//!   [`Context::store`] (persistent) or [`Context::transient`] (RAM). The card may drop and re-create the
//!   instance at any power-up or snapshot restore.
//! - `install` runs once, when the card is created.
//! - `select` runs when SELECT picks the applet on a channel (also on re-SELECT of the same applet, after
//!   `deselect`). `deselect` runs when another applet is selected on that channel or the channel closes.
//! - Power-off and reset clear **all** transient memory; deselect clears the applet's
//!   [`Lifetime::ClearOnDeselect`] entries. (Both are tested in `tests/runtime.rs`.)
//! - The OS handles chaining, `61 xx` / GET RESPONSE, SELECT and MANAGE CHANNEL: `process` receives one
//!   whole, parsed command, its CLA stripped of the logical-channel bits ([`Context::channel`] has them).
//! - A transaction left open when `process` returns is aborted by the OS.

use apdu::Command;

use crate::crypto::Crypto;
use crate::platform::Platform;
use crate::store::{Owner, RecordKey, StoreError};
use crate::transient::Lifetime;
use crate::{CardError, Clock, Warning};

/// An application identifier (5 to 16 bytes).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Aid(Vec<u8>);

impl Aid {
    /// `None` unless 5 ≤ length ≤ 16 (ISO 7816-5).
    pub fn new(bytes: &[u8]) -> Option<Self> {
        (5..=16).contains(&bytes.len()).then(|| Aid(bytes.to_vec()))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Aid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Aid({})", apdu::hex_spaced(&self.0))
    }
}

/// A card application.
pub trait Applet: Send {
    /// Creates the applet's persistent objects. `params` are the installation parameters.
    fn install(&mut self, ctx: &mut Context<'_>, params: &[u8]) -> Result<(), CardError>;

    /// The applet was selected; write the SELECT response (FCI or application template) into `reply`.
    fn select(&mut self, ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError>;

    /// The applet is no longer selected on this channel.
    fn deselect(&mut self, _ctx: &mut Context<'_>) {}

    /// Processes one command addressed to this applet.
    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError>;

    /// Whether the OS should reassemble chained commands before `process` (the default), or pass each
    /// link through with the chaining bit set.
    fn reassembles_chains(&self) -> bool {
        true
    }

    /// Commands whose data must never appear in a trace (PIN verification, key import…): the card's trace
    /// prints `<redacted>` instead. The default redacts nothing.
    fn is_sensitive(&self, _command: &Command) -> bool {
        false
    }
}

/// Makes a fresh, stateless applet instance.
pub type AppletFactory = fn() -> Box<dyn Applet>;

/// The applets this build can run, by AID.
#[derive(Default, Clone)]
pub struct AppletRegistry {
    entries: Vec<(Aid, AppletFactory)>,
}

impl AppletRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(mut self, aid: Aid, factory: AppletFactory) -> Self {
        self.entries.push((aid, factory));
        self
    }

    pub fn factory(&self, aid: &[u8]) -> Option<AppletFactory> {
        self.entries
            .iter()
            .find(|(a, _)| a.as_bytes() == aid)
            .map(|(_, f)| *f)
    }

    pub fn aids(&self) -> impl Iterator<Item = &Aid> {
        self.entries.iter().map(|(aid, _)| aid)
    }
}

/// The response being built for the host: data, and at most one [`Warning`]. Refusals are not set here;
/// they are returned as `Err(CardError)` (see the crate docs).
#[derive(Debug)]
pub struct Reply {
    data: Vec<u8>,
    warning: Option<Warning>,
    limit: usize,
}

impl Reply {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            data: Vec::new(),
            warning: None,
            limit,
        }
    }

    /// Appends response data; the OS splits it into `61 xx` pieces as the host's Le requires.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), CardError> {
        if self.data.len() + bytes.len() > self.limit {
            return Err(CardError::ResponseTooLong { limit: self.limit });
        }
        self.data.extend_from_slice(bytes);
        Ok(())
    }

    /// Answers the data with a warning instead of `90 00` (e.g. [`Warning::EndOfFile`] when READ BINARY
    /// reached the end of the EF before Ne bytes). The last warning set wins.
    pub fn warn(&mut self, warning: Warning) {
        self.warning = Some(warning);
    }

    pub fn len(&self) -> usize {
        self.data.len()
    }

    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Forgets the data (SELECT with P2 `0C` asks for none), keeping the warning.
    pub(crate) fn drop_data(&mut self) {
        self.data.clear();
    }

    pub(crate) fn into_parts(self) -> (Vec<u8>, Option<Warning>) {
        (self.data, self.warning)
    }
}

/// The applet's view of the card during one command.
pub struct Context<'a> {
    pub(crate) platform: &'a mut Platform,
    pub(crate) owner: Owner,
    pub(crate) channel: u8,
}

impl<'a> Context<'a> {
    /// The logical channel the command arrived on.
    pub fn channel(&self) -> u8 {
        self.channel
    }

    /// This applet's persistent records.
    pub fn store(&mut self) -> AppletStore<'_> {
        AppletStore {
            platform: self.platform,
            owner: self.owner,
        }
    }

    /// This applet's transient (RAM) records.
    pub fn transient(&mut self) -> TransientView<'_> {
        TransientView {
            platform: self.platform,
            owner: self.owner,
        }
    }

    pub fn crypto(&mut self) -> &mut Crypto {
        &mut self.platform.crypto
    }

    pub fn clock(&self) -> Clock {
        self.platform.image.clock
    }

    /// Makes everything written so far durable *now*, before the command goes on.
    ///
    /// The OS makes state durable before every answer anyway; this barrier is for the few places where
    /// an effect must be on disk before a *decision* is taken, like a PIN try counter that must be spent
    /// before the comparison.
    pub fn make_durable(&mut self) -> Result<(), CardError> {
        self.platform.persist()
    }
}

/// Persistent records of one applet, keyed by a 16-bit id.
pub struct AppletStore<'a> {
    platform: &'a mut Platform,
    owner: Owner,
}

impl AppletStore<'_> {
    fn key(&self, id: u16) -> RecordKey {
        RecordKey {
            owner: self.owner,
            id,
        }
    }

    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.platform.image.eeprom.get(self.key(id))
    }

    /// Writes a record. Outside a transaction the write is atomic; `6A 84` when memory is full.
    pub fn put(&mut self, id: u16, value: &[u8]) -> Result<(), StoreError> {
        let key = self.key(id);
        self.platform.image.eeprom.write(key, Some(value))
    }

    pub fn remove(&mut self, id: u16) -> Result<(), StoreError> {
        let key = self.key(id);
        if self.platform.image.eeprom.get(key).is_none() {
            return Ok(());
        }
        self.platform.image.eeprom.write(key, None)
    }

    /// Every record id this applet holds.
    pub fn ids(&self) -> Vec<u16> {
        self.platform
            .image
            .eeprom
            .records_of(self.owner)
            .map(|(id, _)| id)
            .collect()
    }

    pub fn begin_transaction(&mut self) -> Result<(), StoreError> {
        self.platform.image.eeprom.begin()
    }

    pub fn commit_transaction(&mut self) -> Result<(), StoreError> {
        self.platform.image.eeprom.commit()
    }

    pub fn abort_transaction(&mut self) -> Result<(), StoreError> {
        self.platform.image.eeprom.abort()
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.platform.image.eeprom.in_transaction()
    }

    /// Persistent bytes still free on the card.
    pub fn free(&self) -> usize {
        self.platform.image.eeprom.free()
    }
}

/// Transient records of one applet.
pub struct TransientView<'a> {
    platform: &'a mut Platform,
    owner: Owner,
}

impl TransientView<'_> {
    pub fn get(&self, id: u16) -> Option<&[u8]> {
        self.platform.transient.get(self.owner, id)
    }

    pub fn set(&mut self, id: u16, value: &[u8], lifetime: Lifetime) {
        self.platform.transient.set(self.owner, id, value, lifetime);
    }

    pub fn clear(&mut self, id: u16) {
        self.platform.transient.clear(self.owner, id);
    }
}
