//! The dispatcher: one APDU in, one answer out. It decodes the APDU, picks the logical channel, answers
//! the OS's own commands (SELECT by name, MANAGE CHANNEL, GET RESPONSE, chaining), routes the rest to the
//! selected applet and hands long answers out in `61 xx` pieces.
//!
//! Every step returns `Result<Response, CardError>`; [`Card::transmit`] turns a refusal into its status
//! word in one place (`error::refusal`), after the state it reports is durable.

use apdu::{Chained, Command, Response, StatusWord};

use super::{Card, Silence, MAX_RESPONSE_LEN};
use crate::applet::{Context, Reply};
use crate::channel::{channel_of, BASIC_CHANNEL, CHANNELS};
use crate::error::{self, completed, more_data};
use crate::store::Owner;
use crate::{ins, CardError};

/// SELECT P1: select by DF name (an applet's AID or a prefix of it).
const SELECT_BY_NAME: u8 = 0x04;
/// SELECT P2 bits 2-1: first (`00`) or next (`10`) occurrence.
const SELECT_OCCURRENCE: u8 = 0x03;
const SELECT_NEXT: u8 = 0x02;
/// SELECT P2 bits 4-3 `11`: no response data.
const SELECT_NO_FCI: u8 = 0x0C;
/// MANAGE CHANNEL P1: open / close.
const CHANNEL_OPEN: u8 = 0x00;
const CHANNEL_CLOSE: u8 = 0x80;

/// Response data waiting for GET RESPONSE.
pub(super) struct Pending {
    channel: u8,
    data: Vec<u8>,
    /// The status word the last piece ends with (`90 00` or the applet's warning).
    status: StatusWord,
}

impl Card {
    /// One command APDU in, one response APDU out — or silence if the card is unpowered or loses power.
    pub fn transmit(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Silence> {
        if !self.powered {
            return Err(Silence::NotPowered);
        }
        #[cfg(any(test, feature = "testing"))]
        let plan = self.armed_fault.take();
        #[cfg(not(any(test, feature = "testing")))]
        let plan = None;
        self.platform.image.eeprom.begin_command(plan);
        let mut outcome = self.dispatch(bytes);
        let power_lost = matches!(&outcome, Err(error) if error.is_power_lost());
        if !power_lost && self.platform.needs_persist() {
            // INVARIANT: no response before durability — refusals included (a wrong PIN's spent try).
            if let Err(error) = self.platform.persist() {
                tracing::error!(%error, "card state could not be saved");
                outcome = Err(error);
            }
        }
        let answer = match outcome {
            Ok(response) => Some(response),
            Err(error) => error::refusal(&error),
        };
        match answer {
            Some(response) => {
                tracing::debug!(sw = %response.sw, len = response.data.len(), "R-APDU");
                Ok(response.to_bytes())
            }
            None => {
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

    /// Routes one APDU.
    fn dispatch(&mut self, bytes: &[u8]) -> Result<Response, CardError> {
        let mut command = Command::from_bytes(bytes)?;
        let channel = channel_of(command.cla)?;
        if !self.channels.is_open(channel) {
            return Err(closed(channel));
        }
        if command.cla < 0x40 || command.cla >= 0x80 {
            // Applets see the class without the channel number; `Context::channel` carries it.
            command.cla &= !0x03;
        }
        let interindustry = command.cla & 0x80 == 0;
        let selected = self.channels.selected(channel);
        self.trace_command(&command, selected);

        if interindustry && command.ins == ins::GET_RESPONSE {
            return self.get_response(channel, &command);
        }
        self.pending = None;

        let is_os_command =
            interindustry && matches!(command.ins, ins::SELECT | ins::MANAGE_CHANNEL);
        let reassemble = !is_os_command
            && selected.is_some_and(|owner| self.applets[usize::from(owner)].reassembles_chains());
        let command = if reassemble || self.chain.is_pending() {
            match self.chain.push(command)? {
                // A link of the chain was stored: the card waits for the rest.
                Chained::Pending => return Ok(Response::status(completed(None))),
                Chained::Complete(whole) => whole,
            }
        } else if is_os_command && command.is_chained() {
            return Err(CardError::ChainingNotSupported);
        } else {
            command
        };

        if interindustry && command.ins == ins::SELECT && command.p1 == SELECT_BY_NAME {
            return self.select_by_name(channel, &command);
        }
        if interindustry && command.ins == ins::MANAGE_CHANNEL {
            return self.manage_channel(channel, &command);
        }
        let owner = selected.ok_or(CardError::NoApplicationSelected)?;
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
        result?;
        Ok(self.send(channel, &command, reply))
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

    /// Hands out the reply in pieces the host can take: at most Ne bytes, and at most 256 in a short
    /// APDU; the rest waits for GET RESPONSE behind `61 xx`.
    fn send(&mut self, channel: u8, command: &Command, reply: Reply) -> Response {
        let (mut data, warning) = reply.into_parts();
        let status = completed(warning);
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
        let sw = more_data(rest.len());
        self.pending = Some(Pending {
            channel,
            data: rest,
            status,
        });
        Response::new(data, sw)
    }

    fn get_response(&mut self, channel: u8, command: &Command) -> Result<Response, CardError> {
        if command.p1 != 0 || command.p2 != 0 {
            return Err(CardError::IncorrectP1P2);
        }
        if !command.data.is_empty() {
            return Err(CardError::WrongLength);
        }
        let mut pending = self
            .pending
            .take()
            .filter(|p| p.channel == channel)
            .ok_or(CardError::NoResponsePending)?;
        let ne = command.ne().unwrap_or(apdu::MAX_SHORT_NE);
        let take = ne.min(pending.data.len());
        let rest = pending.data.split_off(take);
        let piece = std::mem::replace(&mut pending.data, rest);
        if pending.data.is_empty() {
            return Ok(Response::new(piece, pending.status));
        }
        let sw = more_data(pending.data.len());
        self.pending = Some(pending);
        Ok(Response::new(piece, sw))
    }

    /// SELECT by DF name (P1 = 04): a full AID or a prefix of one.
    fn select_by_name(&mut self, channel: u8, command: &Command) -> Result<Response, CardError> {
        let occurrence = command.p2 & SELECT_OCCURRENCE;
        if command.p2 & 0xF0 != 0 || !matches!(occurrence, 0x00 | SELECT_NEXT) {
            return Err(CardError::IncorrectP1P2);
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
                (SELECT_NEXT, Some(current)) => matches
                    .iter()
                    .find(|&&owner| owner > current)
                    .or(matches.first())
                    .copied(),
                _ => matches.first().copied(),
            }
        };
        // INVARIANT: an unknown AID keeps the current selection.
        let target = target.ok_or(CardError::ApplicationNotFound)?;
        if let Some(previous) = current {
            self.run_deselect(channel, previous);
        }
        self.channels.select(channel, None);
        let mut reply = Reply::new(MAX_RESPONSE_LEN);
        let result = self.run_select(channel, target, &mut reply);
        self.close_open_transaction()?;
        result?;
        self.channels.select(channel, Some(target));
        if command.p2 & SELECT_NO_FCI == SELECT_NO_FCI {
            reply.drop_data();
        }
        Ok(self.send(channel, command, reply))
    }

    pub(super) fn run_select(
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
            return Err(CardError::WrongLength);
        }
        match command.p1 {
            CHANNEL_OPEN => {
                let new = match command.p2 {
                    0 => self
                        .channels
                        .lowest_closed()
                        .ok_or(CardError::NoFreeChannel)?,
                    p2 if usize::from(p2) >= CHANNELS => {
                        return Err(CardError::ChannelNotSupported { channel: p2 })
                    }
                    p2 if self.channels.is_open(p2) => return Err(CardError::IncorrectP1P2),
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
                Ok(Response::new(data, completed(None)))
            }
            CHANNEL_CLOSE => {
                let target = command.p2;
                if target == BASIC_CHANNEL {
                    return Err(CardError::IncorrectP1P2);
                }
                if !self.channels.is_open(target) {
                    return Err(closed(target));
                }
                if let Some(owner) = self.channels.selected(target) {
                    self.run_deselect(target, owner);
                }
                self.channels.close(target);
                if self.pending.as_ref().is_some_and(|p| p.channel == target) {
                    self.pending = None;
                }
                self.close_open_transaction()?;
                Ok(Response::status(completed(None)))
            }
            _ => Err(CardError::IncorrectP1P2),
        }
    }
}

/// The refusal for a channel that is not open: closed, or beyond the card's channels.
fn closed(channel: u8) -> CardError {
    if usize::from(channel) >= CHANNELS {
        CardError::ChannelNotSupported { channel }
    } else {
        CardError::ChannelClosed { channel }
    }
}
