//! The card: power and ATR, the OS-level commands (SELECT, MANAGE CHANNEL, GET RESPONSE, chaining), routing
//! to applets, and the rule that state is durable before any answer leaves the card.

use std::path::Path;

use apdu::{Chained, Command, CommandChain, Response, StatusWord};
use thiserror::Error;

use crate::applet::{Aid, Applet, AppletRegistry, Context, Reply};
use crate::channel::{channel_of, Channels, BASIC_CHANNEL};
use crate::crypto::{CardRng, Crypto};
use crate::store::{CardImage, Durability, Eeprom, FaultPlan, ImageError, ImageFile, Owner};
use crate::transient::TransientMemory;
use crate::{CardError, Clock};

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

/// The durable part of the card plus the services applets reach through their [`Context`].
pub(crate) struct Platform {
    pub(crate) image: CardImage,
    pub(crate) transient: TransientMemory,
    pub(crate) crypto: Crypto,
    file: Option<ImageFile>,
}

impl Platform {
    /// Writes the image to its file (if any). Clears the dirty marks.
    pub(crate) fn persist(&mut self) -> Result<(), CardError> {
        self.image.rng = self.crypto.rng_state();
        if let Some(file) = &self.file {
            file.save(&self.image.encode())
                .map_err(|e| CardError::SaveFailed(e.to_string()))?;
        }
        self.image.eeprom.mark_clean();
        self.crypto.take_drew_random();
        Ok(())
    }

    fn needs_persist(&mut self) -> bool {
        let drew = self.crypto.take_drew_random() && self.crypto.rng_state().is_some();
        self.image.eeprom.is_dirty() || drew
    }
}

/// A copy of a card's whole durable state.
#[derive(Clone)]
pub struct CardSnapshot {
    eeprom: Eeprom,
    rng: Option<(u64, u128)>,
}

/// Response data waiting for GET RESPONSE.
struct Pending {
    channel: u8,
    data: Vec<u8>,
    status: StatusWord,
}

/// A smart card.
pub struct Card {
    platform: Platform,
    applets: Vec<Box<dyn Applet>>,
    powered: bool,
    channels: Channels,
    pending: Option<Pending>,
    chain: CommandChain,
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
            let factory = registry.factory(aid).ok_or_else(|| unknown(aid))?;
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

    /// Test hook: cut power at a persistent write of the next command. See [`crate::tearing`].
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

    /// One command APDU in, one response APDU out — or silence if the card is unpowered or loses power.
    pub fn transmit(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Silence> {
        if !self.powered {
            return Err(Silence::NotPowered);
        }
        let plan = self.armed_fault.take();
        self.platform.image.eeprom.begin_command(plan);
        match self.dispatch(bytes) {
            Ok(mut response) => {
                if self.platform.needs_persist() {
                    // INVARIANT: no response before durability.
                    if let Err(error) = self.platform.persist() {
                        tracing::error!(%error, "card state could not be saved");
                        response = Response::status(StatusWord::MEMORY_FAILURE);
                    }
                }
                tracing::debug!(sw = %response.sw, len = response.data.len(), "R-APDU");
                Ok(response.to_bytes())
            }
            Err(_power_lost) => {
                // The medium keeps what was physically written, torn value and journal included;
                // recovery at the next power-up makes sense of it.
                if let Err(error) = self.platform.persist() {
                    tracing::error!(%error, "could not save the torn card image");
                }
                self.power_off();
                Err(Silence::PowerLost)
            }
        }
    }

    /// Routes one APDU. `Err` only when power was lost.
    fn dispatch(&mut self, bytes: &[u8]) -> Result<Response, CardError> {
        let command = match Command::from_bytes(bytes) {
            Ok(command) => command,
            Err(error) => return Ok(Response::status(error.status_word())),
        };
        let channel = match channel_of(command.cla) {
            Ok(channel) if self.channels.is_open(channel) => channel,
            Ok(_) => return Ok(Response::status(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED)),
            Err(sw) => return Ok(Response::status(sw)),
        };
        let mut command = command;
        if command.cla < 0x40 || command.cla >= 0x80 {
            // Applets see the class without the channel number; `Context::channel` carries it.
            command.cla &= !0x03;
        }
        let interindustry = command.cla & 0x80 == 0;
        let selected = self.channels.selected(channel);
        self.trace_command(&command, selected);

        if interindustry && command.ins == 0xC0 {
            return Ok(self.get_response(channel, &command));
        }
        self.pending = None;

        let is_os_command = interindustry && matches!(command.ins, 0xA4 | 0x70);
        let reassemble = !is_os_command
            && selected.is_some_and(|owner| self.applets[usize::from(owner)].reassembles_chains());
        let command = if reassemble || self.chain.is_pending() {
            match self.chain.push(command) {
                Ok(Chained::Pending) => return Ok(Response::status(StatusWord::SUCCESS)),
                Ok(Chained::Complete(whole)) => whole,
                Err(error) => return Ok(Response::status(error.status_word())),
            }
        } else if is_os_command && command.is_chained() {
            return Ok(Response::status(StatusWord::CHAINING_NOT_SUPPORTED));
        } else {
            command
        };

        if interindustry && command.ins == 0xA4 && command.p1 == 0x04 {
            return self.select_by_name(channel, &command);
        }
        if interindustry && command.ins == 0x70 {
            return self.manage_channel(channel, &command);
        }
        let Some(owner) = selected else {
            // No application on this channel to take the command.
            return Ok(Response::status(StatusWord::INS_NOT_SUPPORTED));
        };
        let mut reply = Reply::new(MAX_RESPONSE_LEN);
        let result = {
            let mut ctx = Context {
                platform: &mut self.platform,
                owner,
                channel,
            };
            self.applets[usize::from(owner)].process(&mut ctx, &command, &mut reply)
        };
        self.close_open_transaction()?;
        match result {
            Ok(()) => {
                let (data, status) = reply.into_parts();
                Ok(self.send(channel, &command, data, status))
            }
            Err(error) => match error.status_word() {
                Some(sw) => Ok(Response::status(sw)),
                None => Err(CardError::PowerLost),
            },
        }
    }

    fn trace_command(&self, command: &Command, selected: Option<Owner>) {
        if !tracing::enabled!(tracing::Level::DEBUG) {
            return;
        }
        let sensitive =
            selected.is_some_and(|owner| self.applets[usize::from(owner)].is_sensitive(command));
        let data = if sensitive {
            "<redacted>".to_string()
        } else {
            apdu::hex_spaced(&command.data)
        };
        tracing::debug!(header = %apdu::hex_spaced(&command.header()), data = %data, "C-APDU");
    }

    /// A transaction still open when the applet returns is aborted, as Java Card does.
    fn close_open_transaction(&mut self) -> Result<(), CardError> {
        if self.platform.image.eeprom.in_transaction() {
            tracing::warn!("applet returned with a transaction open; aborting it");
            self.platform.image.eeprom.abort()?;
        }
        if self.platform.image.eeprom.power_was_lost() {
            return Err(CardError::PowerLost);
        }
        Ok(())
    }

    /// Hands out response data in pieces the host can take: at most Ne bytes, and at most 256 in a short
    /// APDU; the rest waits for GET RESPONSE behind `61 xx`.
    fn send(
        &mut self,
        channel: u8,
        command: &Command,
        mut data: Vec<u8>,
        status: StatusWord,
    ) -> Response {
        let ne = command.ne().unwrap_or(apdu::MAX_SHORT_NE);
        let piece = if command.is_extended() {
            ne
        } else {
            ne.min(apdu::MAX_SHORT_NE)
        };
        if data.len() <= piece {
            return Response::new(data, status);
        }
        let rest = data.split_off(piece);
        let sw = remaining_status(rest.len());
        self.pending = Some(Pending {
            channel,
            data: rest,
            status,
        });
        Response::new(data, sw)
    }

    fn get_response(&mut self, channel: u8, command: &Command) -> Response {
        if command.p1 != 0 || command.p2 != 0 {
            return Response::status(StatusWord::INCORRECT_P1P2);
        }
        if !command.data.is_empty() {
            return Response::status(StatusWord::WRONG_LENGTH);
        }
        let Some(mut pending) = self.pending.take().filter(|p| p.channel == channel) else {
            // Nothing is waiting to be fetched.
            return Response::status(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        let ne = command.ne().unwrap_or(apdu::MAX_SHORT_NE);
        let take = ne.min(pending.data.len());
        let rest = pending.data.split_off(take);
        let piece = std::mem::replace(&mut pending.data, rest);
        if pending.data.is_empty() {
            return Response::new(piece, pending.status);
        }
        let sw = remaining_status(pending.data.len());
        self.pending = Some(pending);
        Response::new(piece, sw)
    }

    /// SELECT by DF name (P1 = 04): a full AID or a prefix of one.
    fn select_by_name(&mut self, channel: u8, command: &Command) -> Result<Response, CardError> {
        let occurrence = command.p2 & 0x03;
        if command.p2 & 0xF0 != 0 || !matches!(occurrence, 0x00 | 0x02) {
            return Ok(Response::status(StatusWord::INCORRECT_P1P2));
        }
        let current = self.channels.selected(channel);
        let target = if command.data.is_empty() {
            self.platform.image.default_applet
        } else {
            let matches: Vec<Owner> = (0..self.platform.image.applets.len())
                .filter(|&i| self.platform.image.applets[i].starts_with(&command.data))
                .map(|i| i as Owner)
                .collect();
            match (occurrence, current) {
                // "Next occurrence": the match after the current selection, wrapping around.
                (0x02, Some(current)) => matches
                    .iter()
                    .find(|&&owner| owner > current)
                    .or(matches.first())
                    .copied(),
                _ => matches.first().copied(),
            }
        };
        let Some(target) = target else {
            // INVARIANT: an unknown AID keeps the current selection.
            return Ok(Response::status(StatusWord::NOT_FOUND));
        };
        if let Some(previous) = current {
            self.run_deselect(channel, previous);
        }
        self.channels.select(channel, None);
        let mut reply = Reply::new(MAX_RESPONSE_LEN);
        match self.run_select(channel, target, &mut reply) {
            Ok(()) => {
                self.channels.select(channel, Some(target));
                let (data, status) = reply.into_parts();
                let data = if command.p2 & 0x0C == 0x0C {
                    Vec::new()
                } else {
                    data
                };
                self.close_open_transaction()?;
                Ok(self.send(channel, command, data, status))
            }
            Err(error) => {
                self.close_open_transaction()?;
                match error.status_word() {
                    Some(sw) => Ok(Response::status(sw)),
                    None => Err(CardError::PowerLost),
                }
            }
        }
    }

    fn run_select(
        &mut self,
        channel: u8,
        owner: Owner,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        let mut ctx = Context {
            platform: &mut self.platform,
            owner,
            channel,
        };
        self.applets[usize::from(owner)].select(&mut ctx, reply)
    }

    fn run_deselect(&mut self, channel: u8, owner: Owner) {
        let mut ctx = Context {
            platform: &mut self.platform,
            owner,
            channel,
        };
        self.applets[usize::from(owner)].deselect(&mut ctx);
        self.platform.transient.clear_on_deselect(owner);
    }

    /// MANAGE CHANNEL: P1 = 00 opens (P2 = 00: the card picks), P1 = 80 closes channel P2.
    fn manage_channel(&mut self, channel: u8, command: &Command) -> Result<Response, CardError> {
        if !command.data.is_empty() {
            return Ok(Response::status(StatusWord::WRONG_LENGTH));
        }
        match command.p1 {
            0x00 => {
                let new = match command.p2 {
                    0 => match self.channels.lowest_closed() {
                        Some(new) => new,
                        None => return Ok(Response::status(StatusWord::FUNCTION_NOT_SUPPORTED)),
                    },
                    p2 if usize::from(p2) >= crate::channel::CHANNELS => {
                        return Ok(Response::status(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED))
                    }
                    p2 if self.channels.is_open(p2) => {
                        return Ok(Response::status(StatusWord::INCORRECT_P1P2))
                    }
                    p2 => p2,
                };
                self.channels.open(new);
                // ISO 7816-4: opened from the basic channel, the new channel gets the default applet;
                // opened from another channel, it gets that channel's applet.
                let inherit = if channel == BASIC_CHANNEL {
                    self.platform.image.default_applet
                } else {
                    self.channels.selected(channel)
                };
                if let Some(owner) = inherit {
                    let mut reply = Reply::new(MAX_RESPONSE_LEN);
                    if self.run_select(new, owner, &mut reply).is_ok() {
                        self.channels.select(new, Some(owner));
                    }
                }
                self.close_open_transaction()?;
                let data = if command.p2 == 0 {
                    vec![new]
                } else {
                    Vec::new()
                };
                Ok(Response::new(data, StatusWord::SUCCESS))
            }
            0x80 => {
                let target = command.p2;
                if target == BASIC_CHANNEL {
                    return Ok(Response::status(StatusWord::INCORRECT_P1P2));
                }
                if usize::from(target) >= crate::channel::CHANNELS || !self.channels.is_open(target)
                {
                    return Ok(Response::status(StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED));
                }
                if let Some(owner) = self.channels.selected(target) {
                    self.run_deselect(target, owner);
                }
                self.channels.close(target);
                if self.pending.as_ref().is_some_and(|p| p.channel == target) {
                    self.pending = None;
                }
                self.close_open_transaction()?;
                Ok(Response::status(StatusWord::SUCCESS))
            }
            _ => Ok(Response::status(StatusWord::INCORRECT_P1P2)),
        }
    }
}

fn remaining_status(remaining: usize) -> StatusWord {
    // 61 00 means "256 or more".
    StatusWord::bytes_remaining(remaining.min(256) as u8)
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
