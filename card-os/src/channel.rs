//! Logical channels: the basic channel and three supplementary ones, each with its own selection.
//! The channel number is taken from CLA.

use crate::store::Owner;
use crate::CardError;

pub const BASIC_CHANNEL: u8 = 0;
/// Channels this card supports (basic + 3).
pub const CHANNELS: usize = 4;

#[derive(Debug, Clone)]
pub(crate) struct Channels {
    open: [bool; CHANNELS],
    selected: [Option<Owner>; CHANNELS],
}

impl Default for Channels {
    fn default() -> Self {
        Self {
            open: [true, false, false, false],
            selected: [None; CHANNELS],
        }
    }
}

impl Channels {
    pub fn is_open(&self, channel: u8) -> bool {
        self.open
            .get(usize::from(channel))
            .copied()
            .unwrap_or(false)
    }

    pub fn selected(&self, channel: u8) -> Option<Owner> {
        self.selected.get(usize::from(channel)).copied().flatten()
    }

    pub fn select(&mut self, channel: u8, owner: Option<Owner>) {
        if let Some(slot) = self.selected.get_mut(usize::from(channel)) {
            *slot = owner;
        }
    }

    pub fn lowest_closed(&self) -> Option<u8> {
        (1..CHANNELS as u8).find(|&c| !self.is_open(c))
    }

    pub fn open(&mut self, channel: u8) {
        if let Some(slot) = self.open.get_mut(usize::from(channel)) {
            *slot = true;
        }
    }

    pub fn close(&mut self, channel: u8) {
        if let Some(slot) = self.open.get_mut(usize::from(channel)) {
            *slot = false;
        }
        self.select(channel, None);
    }
}

/// The logical channel a class byte addresses, or the refusal of the class.
pub fn channel_of(cla: u8) -> Result<u8, CardError> {
    match cla {
        0xFF => Err(CardError::InvalidClass { cla }),
        // 001x xxxx is reserved for future use.
        0x20..=0x3F => Err(CardError::InvalidClass { cla }),
        // First interindustry class 000x xxxx: b4b3 secure messaging, b2b1 channel 0..3.
        0x00..=0x1F if cla & 0x0C != 0 => Err(CardError::SecureMessagingNotSupported { cla }),
        0x00..=0x1F => Ok(cla & 0x03),
        // Further interindustry class 01xx xxxx: b6 secure messaging, b4..b1 channel 4..19.
        0x40..=0x7F if cla & 0x20 != 0 => Err(CardError::SecureMessagingNotSupported { cla }),
        0x40..=0x7F => Ok(4 + (cla & 0x0F)),
        // Proprietary classes code the channel as the first interindustry class does; the applet
        // decides whether it accepts the class.
        _ => Ok(cla & 0x03),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apdu::StatusWord;

    #[test]
    fn class_byte_decoding() {
        let sw = |cla| channel_of(cla).map_err(|e| e.status_word());
        assert_eq!(sw(0x00), Ok(0));
        assert_eq!(sw(0x13), Ok(3));
        assert_eq!(sw(0x81), Ok(1));
        assert_eq!(sw(0x45), Ok(9));
        assert_eq!(
            sw(0x0C),
            Err(Some(StatusWord::SECURE_MESSAGING_NOT_SUPPORTED))
        );
        assert_eq!(
            sw(0x60),
            Err(Some(StatusWord::SECURE_MESSAGING_NOT_SUPPORTED))
        );
        assert_eq!(sw(0x20), Err(Some(StatusWord::CLA_NOT_SUPPORTED)));
        assert_eq!(sw(0xFF), Err(Some(StatusWord::CLA_NOT_SUPPORTED)));
    }
}
