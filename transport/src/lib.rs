#![doc = include_str!("../README.md")]

mod error;
mod in_process;
#[cfg(not(feature = "pcsc"))]
mod no_pcsc;
#[cfg(feature = "pcsc")]
mod pcsc_reader;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use apdu::{Command, Response, StatusWord};

pub use error::TransportError;
pub use in_process::{DirectReader, InProcessReader};
#[cfg(not(feature = "pcsc"))]
pub use no_pcsc::PcscReader;
#[cfg(feature = "pcsc")]
pub use pcsc_reader::PcscReader;

/// INS of GET RESPONSE (ISO 7816-4 §11.5.1).
const INS_GET_RESPONSE: u8 = 0xC0;
/// SW1 of "more data available, SW2 bytes" and of "wrong Le, SW2 is the exact length".
const SW1_MORE_DATA: u8 = 0x61;
const SW1_WRONG_LE: u8 = 0x6C;
/// Largest data field of one short command APDU: longer data travels as a chain of links this long.
pub const CHAIN_LINK_LEN: usize = 255;
/// The most GET RESPONSE rounds one exchange follows: a card that keeps answering `61 xx` past this
/// has lost track (even an extended 64 KiB answer takes 256 rounds of 256 bytes).
const MAX_GET_RESPONSE_ROUNDS: usize = 1024;

/// A channel to one card.
pub trait Transport {
    /// Sends one command APDU as bytes and returns the response APDU (data ‖ SW1 SW2), at least two bytes.
    /// The one method a reader implements; it follows nothing (no `61 xx`, no chaining).
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;
    fn atr(&mut self) -> Result<Vec<u8>, TransportError>;
    /// Warm reset: the card drops its volatile state (selected applet, PIN status).
    fn reset(&mut self) -> Result<(), TransportError>;
    /// For logs and reports, e.g. `pcsc:Virtual PCD 00 00`.
    fn name(&self) -> String;

    /// One command, one response, nothing followed.
    fn transmit(&mut self, command: &Command) -> Result<Response, TransportError> {
        let bytes = self.transmit_raw(&command.to_bytes())?;
        Response::from_bytes(&bytes).map_err(|_| TransportError::NoStatusWord { len: bytes.len() })
    }

    /// One command and its whole answer: `61 xx` is followed with GET RESPONSE (data joined), and `6C xx`
    /// ("wrong Le, xx is right") is answered by sending the command again with Le = xx, once.
    fn exchange(&mut self, command: &Command) -> Result<Response, TransportError> {
        let mut response = self.transmit(command)?;
        if response.sw.sw1() == SW1_WRONG_LE && response.data.is_empty() {
            let corrected = command.clone().with_le(le_of(response.sw))?;
            response = self.transmit(&corrected)?;
        }
        let mut data = std::mem::take(&mut response.data);
        let mut rounds = 0;
        while response.sw.sw1() == SW1_MORE_DATA {
            rounds += 1;
            if rounds > MAX_GET_RESPONSE_ROUNDS {
                return Err(TransportError::EndlessResponse { rounds });
            }
            let get_response = Command::new(command.cla & CLA_CHANNEL_BITS, INS_GET_RESPONSE, 0, 0)
                .with_le(le_of(response.sw))?;
            response = self.transmit(&get_response)?;
            data.append(&mut response.data);
        }
        Ok(Response::new(data, response.sw))
    }

    /// Sends a command whose data may be longer than one short APDU as a chain of links of at most
    /// [`CHAIN_LINK_LEN`] bytes (CLA bit `10` on all but the last). Every link but the last must be
    /// answered `90 00`; any other answer ends the chain and is returned. The last link is exchanged.
    fn exchange_chained(&mut self, command: &Command) -> Result<Response, TransportError> {
        let links = chain_links(command);
        let (last, first) = links
            .split_last()
            .ok_or(TransportError::NoStatusWord { len: 0 })?;
        for link in first {
            let response = self.transmit(link)?;
            if response.sw != StatusWord::SUCCESS {
                return Ok(response);
            }
        }
        self.exchange(last)
    }
}

/// The logical-channel bits of a first-interindustry CLA, kept on GET RESPONSE.
const CLA_CHANNEL_BITS: u8 = 0x03;
/// CLA bit "more links of this chain follow".
const CLA_CHAINING: u8 = 0x10;

/// `61 00` / `6C 00` mean 256 bytes.
fn le_of(sw: StatusWord) -> usize {
    match sw.sw2() {
        0 => 256,
        n => usize::from(n),
    }
}

/// The links of a chained command: short APDUs of at most [`CHAIN_LINK_LEN`] data bytes. Le (if any)
/// travels on every link, as yubico-piv-tool sends it; a command that fits one APDU is one link.
pub fn chain_links(command: &Command) -> Vec<Command> {
    if command.data.len() <= CHAIN_LINK_LEN {
        return vec![command.clone()];
    }
    let chunks: Vec<&[u8]> = command.data.chunks(CHAIN_LINK_LEN).collect();
    let count = chunks.len();
    chunks
        .into_iter()
        .enumerate()
        .map(|(index, chunk)| {
            let cla = if index + 1 < count {
                command.cla | CLA_CHAINING
            } else {
                command.cla
            };
            let link = Command::new(cla, command.ins, command.p1, command.p2).with_data(chunk);
            match command.ne() {
                Some(ne) => link
                    .clone()
                    .with_le(ne.min(apdu::MAX_SHORT_NE))
                    .unwrap_or(link),
                None => link,
            }
        })
        .collect()
}

/// What a reader needs from a card. card-os's `Card` implements it; so do test cards.
pub trait VirtualCard: Send + 'static {
    /// Answer-to-reset bytes (asked every ~400 ms by pcscd even when unpowered).
    fn atr(&self) -> Vec<u8>;
    fn power_on(&mut self);
    fn power_off(&mut self);
    fn reset(&mut self);
    /// One command APDU in, the response APDU (data ‖ SW1 SW2) out. Never panics. An empty reply
    /// means the card went mute (it lost power): a reader takes it out and puts it back.
    fn transmit(&mut self, command: &[u8]) -> Vec<u8>;

    /// Whether `command`'s data is secret (a PIN, a key) and must stay out of traces and logs. Asked
    /// before `transmit`, since the answer depends on the card's state (the applet selected now). The
    /// default: nothing is.
    fn is_sensitive(&self, _command: &[u8]) -> bool {
        false
    }
}

/// A card shared between the reader that serves it and whoever else holds it.
pub type SharedCard = Arc<Mutex<dyn VirtualCard>>;

/// Wraps a card for sharing.
pub fn share<C: VirtualCard>(card: C) -> SharedCard {
    Arc::new(Mutex::new(card))
}

/// Locks a card. `VirtualCard` methods never panic by contract; if one did, the card keeps serving in
/// whatever state it was left rather than taking the reader down.
pub fn lock_card(card: &SharedCard) -> MutexGuard<'_, dyn VirtualCard> {
    card.lock().unwrap_or_else(|poisoned| {
        tracing::error!(
            "a VirtualCard method panicked earlier; the card state may be inconsistent"
        );
        PoisonError::into_inner(poisoned)
    })
}

#[cfg(test)]
mod tests;
