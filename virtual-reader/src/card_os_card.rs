//! A card-os [`Card`] is a [`VirtualCard`]. A card that loses power mid-command (a simulated tear) says
//! nothing: vpcd then sees an empty reply and drops the connection — to pcscd the card was pulled out —
//! and the slot reconnects it, which powers it up and runs recovery, as re-inserting a torn card does.

use card_os::Card;

use crate::VirtualCard;

impl VirtualCard for Card {
    fn atr(&self) -> Vec<u8> {
        Card::atr(self).to_vec()
    }

    fn power_on(&mut self) {
        Card::power_on(self);
    }

    fn power_off(&mut self) {
        Card::power_off(self);
    }

    fn reset(&mut self) {
        Card::reset(self);
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        Card::transmit(self, command).unwrap_or_default()
    }
}
