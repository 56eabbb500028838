//! The card: creation, power and ATR, snapshots. The dispatcher (`dispatch`: OS-level commands, routing to
//! applets, the rule that state is durable before any answer leaves the card) is its submodule.

use std::path::{Path, PathBuf};

mod dispatch;

use apdu::{Command, CommandChain};
use thiserror::Error;

use crate::applet::{Aid, Applet, AppletRegistry, Context, Reply};
use crate::channel::{channel_of, Channels, BASIC_CHANNEL};
use crate::crypto::{CardRng, Crypto};
use crate::platform::Platform;
#[cfg(any(test, feature = "testing"))]
use crate::store::FaultPlan;
use crate::store::{CardImage, Durability, Eeprom, ImageError, ImageFile, Owner};
use crate::transient::TransientMemory;
use crate::{CardError, Clock};
use dispatch::Pending;

/// The recommended default ATR: T=1, historical bytes that OpenSC classifies as a PIV card.
pub const DEFAULT_ATR: &[u8] = &[
    0x3B, 0xFB, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0xF9, 0xA0, 0x00, 0x00, 0x03, 0x08,
    0x00, 0x00, 0x10, 0x00, 0x71,
];

/// Largest response an applet may build (the OS hands it out in pieces).
pub const MAX_RESPONSE_LEN: usize = 65536;

/// Settings fixed when a card is made.
#[derive(Debug, Clone)]
pub struct CardConfig {
    pub atr: Vec<u8>,
    /// Persistent memory in bytes.
    pub capacity: usize,
    /// Largest command a chain may reassemble to.
    pub max_chain_len: usize,
    pub clock: Clock,
    /// Seed for a deterministic card; `None` draws from the operating system.
    pub seed: Option<u64>,
}

impl Default for CardConfig {
    fn default() -> Self {
        Self {
            atr: DEFAULT_ATR.to_vec(),
            capacity: 128 * 1024,
            max_chain_len: 16 * 1024,
            clock: Clock::System,
            seed: None,
        }
    }
}

/// An applet to install on a new card.
#[derive(Debug, Clone)]
pub struct Installation {
    pub aid: Aid,
    pub params: Vec<u8>,
    /// Selected on the basic channel at power-up.
    pub default_selected: bool,
}

/// Where a card's image lives.
#[derive(Debug, Clone, Copy)]
pub enum Storage<'a> {
    /// In memory only (tests, throwaway cards).
    Memory,
    File {
        path: &'a Path,
        durability: Durability,
    },
}

/// Errors creating or opening a card.
#[derive(Debug, Error)]
pub enum CardOsError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("the card holds applet {aid} which this build of tessera does not have")]
    UnknownApplet { aid: String },
    /// Opening a file: the same refusal, naming the file (it may be a crafted or foreign image).
    #[error("card image {path} holds applet {aid} which this build of tessera does not have")]
    UnknownAppletInImage { path: PathBuf, aid: String },
    #[error("installing applet {aid} failed: {error}")]
    Install { aid: String, error: CardError },
    #[error("a card holds at most 254 applets")]
    TooManyApplets,
}

/// Why the card gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum Silence {
    #[error("the card is not powered")]
    NotPowered,
    #[error("power was cut during the command")]
    PowerLost,
}

/// A copy of a card's whole durable state.
#[derive(Clone)]
pub struct CardSnapshot {
    eeprom: Eeprom,
    rng: Option<(u64, u128)>,
}

/// A smart card.
pub struct Card {
    platform: Platform,
    applets: Vec<Box<dyn Applet>>,
    powered: bool,
    channels: Channels,
    pending: Option<Pending>,
    chain: CommandChain,
    #[cfg(any(test, feature = "testing"))]
    armed_fault: Option<FaultPlan>,
}

impl Card {
    /// Makes a new card with these applets installed.
    pub fn create(
        config: CardConfig,
        registry: &AppletRegistry,
        installations: &[Installation],
        storage: Storage<'_>,
    ) -> Result<Card, CardOsError> {
        if installations.len() > 254 {
            return Err(CardOsError::TooManyApplets);
        }
        let mut applets = Vec::new();
        for inst in installations {
            let factory = registry
                .factory(inst.aid.as_bytes())
                .ok_or_else(|| unknown(inst.aid.as_bytes()))?;
            applets.push(factory());
        }
        let image = CardImage {
            atr: config.atr,
            max_chain_len: config.max_chain_len,
            clock: config.clock,
            rng: config.seed.map(|seed| (seed, 0)),
            applets: installations
                .iter()
                .map(|i| i.aid.as_bytes().to_vec())
                .collect(),
            default_applet: installations
                .iter()
                .position(|i| i.default_selected)
                .map(|i| i as Owner),
            eeprom: Eeprom::new(config.capacity),
        };
        let mut card = Card::assemble(image, None, applets);
        for (owner, inst) in installations.iter().enumerate() {
            let (applet, platform) = (&mut card.applets[owner], &mut card.platform);
            let mut ctx = Context {
                platform,
                owner: owner as Owner,
                channel: BASIC_CHANNEL,
            };
            applet
                .install(&mut ctx, &inst.params)
                .map_err(|error| CardOsError::Install {
                    aid: apdu::hex_spaced(inst.aid.as_bytes()),
                    error,
                })?;
        }
        if let Storage::File { path, durability } = storage {
            card.platform.image.rng = card.platform.crypto.rng_state();
            card.platform.file = Some(ImageFile::create(path, durability, &card.platform.image)?);
        }
        card.platform.image.eeprom.mark_clean();
        card.power_on_internal();
        Ok(card)
    }

    /// Opens a card image file and powers the card on (recovering an interrupted write if there was one).
    pub fn open(
        path: &Path,
        registry: &AppletRegistry,
        durability: Durability,
    ) -> Result<Card, CardOsError> {
        let (file, image) = ImageFile::open(path, durability)?;
        let mut applets = Vec::new();
        for aid in &image.applets {
            let factory =
                registry
                    .factory(aid)
                    .ok_or_else(|| CardOsError::UnknownAppletInImage {
                        path: path.to_path_buf(),
                        aid: apdu::hex_spaced(aid),
                    })?;
            applets.push(factory());
        }
        let mut card = Card::assemble(image, Some(file), applets);
        card.power_on_internal();
        Ok(card)
    }

    fn assemble(image: CardImage, file: Option<ImageFile>, applets: Vec<Box<dyn Applet>>) -> Card {
        let rng = match image.rng {
            Some((seed, position)) => CardRng::seeded(seed, position),
            None => CardRng::Os,
        };
        let max_chain = image.max_chain_len;
        Card {
            platform: Platform {
                image,
                transient: TransientMemory::default(),
                crypto: Crypto::new(rng),
                file,
            },
            applets,
            powered: false,
            channels: Channels::default(),
            pending: None,
            chain: CommandChain::new(max_chain),
            #[cfg(any(test, feature = "testing"))]
            armed_fault: None,
        }
    }

    pub fn atr(&self) -> &[u8] {
        &self.platform.image.atr
    }

    pub fn is_powered(&self) -> bool {
        self.powered
    }

    /// The file this card lives in, if any.
    pub fn path(&self) -> Option<&Path> {
        self.platform.file.as_ref().map(ImageFile::path)
    }

    /// AIDs of the installed applets.
    pub fn applet_aids(&self) -> Vec<Vec<u8>> {
        self.platform.image.applets.clone()
    }

    pub fn free_memory(&self) -> usize {
        self.platform.image.eeprom.free()
    }

    /// Powers the card on: recovery, then the default applet is selected on the basic channel.
    pub fn power_on(&mut self) {
        self.power_on_internal();
    }

    fn power_on_internal(&mut self) {
        if self.powered {
            return;
        }
        if self.platform.image.eeprom.recover() {
            tracing::warn!("power-up recovery rolled back an interrupted write");
            if let Err(error) = self.platform.persist() {
                tracing::error!(%error, "could not save the recovered card image");
            }
        }
        self.powered = true;
        self.channels = Channels::default();
        if let Some(owner) = self.platform.image.default_applet {
            // The SELECT response of an implicit selection goes nowhere.
            let mut reply = Reply::new(MAX_RESPONSE_LEN);
            if self.run_select(BASIC_CHANNEL, owner, &mut reply).is_ok() {
                self.channels.select(BASIC_CHANNEL, Some(owner));
            }
        }
    }

    /// Cuts power: transient memory, selections and pending responses are gone.
    pub fn power_off(&mut self) {
        self.powered = false;
        self.platform.transient.clear_all();
        self.channels = Channels::default();
        self.pending = None;
        self.chain.clear();
    }

    /// Warm reset.
    pub fn reset(&mut self) {
        self.power_off();
        self.power_on_internal();
    }

    /// Cuts power at a persistent write of the next command (feature `testing`; see `tearing`).
    /// The next `transmit` then answers `Err(Silence::PowerLost)` if the command writes that often.
    #[cfg(any(test, feature = "testing"))]
    pub fn arm_power_cut(&mut self, plan: FaultPlan) {
        self.armed_fault = Some(plan);
    }

    /// Persistent writes the last command made (its possible cut points).
    pub fn writes_last_command(&self) -> u32 {
        self.platform.image.eeprom.writes_this_command()
    }

    /// Whether the data of command `bytes` is secret (a PIN, a key) to the applet that would take it now,
    /// so a trace must not show it. Asked before `transmit`; an APDU that does not parse is not.
    pub fn is_sensitive(&self, bytes: &[u8]) -> bool {
        let Ok(mut command) = Command::from_bytes(bytes) else {
            return false;
        };
        let Ok(channel) = channel_of(command.cla) else {
            return false;
        };
        if command.cla < 0x40 || command.cla >= 0x80 {
            command.cla &= !0x03;
        }
        self.channels
            .selected(channel)
            .is_some_and(|owner| self.applets[usize::from(owner)].is_sensitive(&command))
    }

    /// Where the card reads the time from.
    pub fn clock(&self) -> Clock {
        self.platform.image.clock
    }

    /// Sets the card's clock (saved with the image): a fixed time for certificate-expiry tests.
    pub fn set_clock(&mut self, clock: Clock) -> Result<(), CardError> {
        self.platform.image.clock = clock;
        self.platform.persist()
    }

    /// Seed and position of a deterministic card's random generator; `None` if it draws from the OS.
    pub fn random_state(&self) -> Option<(u64, u128)> {
        self.platform.crypto.rng_state()
    }

    /// Writes this card's whole state to a new image file, durably (fsync), refusing to overwrite one —
    /// for a card built in memory, e.g. on a personalization line, that becomes a file once finished.
    /// The card itself stays where it was (in memory, or in its own file).
    pub fn save_new(&mut self, path: &Path) -> Result<(), ImageError> {
        self.platform.image.rng = self.platform.crypto.rng_state();
        ImageFile::create(path, Durability::Full, &self.platform.image).map(drop)
    }

    /// This card's whole state as the bytes of an image file, for a line that writes many cards and
    /// makes them durable together (one barrier for a group) instead of one `save_new` each. Whoever
    /// writes the bytes owns their durability; [`Card::open`] reads them back like any image.
    pub fn image_bytes(&mut self) -> Vec<u8> {
        self.platform.image.rng = self.platform.crypto.rng_state();
        self.platform.image.encode()
    }

    /// A copy of the whole durable state.
    pub fn snapshot(&self) -> CardSnapshot {
        CardSnapshot {
            eeprom: self.platform.image.eeprom.snapshot(),
            rng: self.platform.crypto.rng_state(),
        }
    }

    /// Brings back a snapshot: the card is power-cycled into exactly that state (and saved).
    pub fn restore(&mut self, snapshot: &CardSnapshot) -> Result<(), CardError> {
        self.power_off();
        self.platform.image.eeprom = snapshot.eeprom.snapshot();
        self.platform.crypto = Crypto::new(match snapshot.rng {
            Some((seed, position)) => CardRng::seeded(seed, position),
            None => CardRng::Os,
        });
        self.platform.persist()?;
        self.power_on_internal();
        Ok(())
    }
}

fn unknown(aid: &[u8]) -> CardOsError {
    CardOsError::UnknownApplet {
        aid: apdu::hex_spaced(aid),
    }
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Card")
            .field("atr", &apdu::hex_spaced(self.atr()))
            .field("powered", &self.powered)
            .field("applets", &self.applets.len())
            .field("eeprom", &self.platform.image.eeprom)
            .finish()
    }
}
