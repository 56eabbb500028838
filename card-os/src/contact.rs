//! A card-os [`Card`] is a [`VirtualCard`]: the contacts a reader touches. A card that loses power
//! mid-command (a simulated tear) says nothing: a reader sees an empty reply — vpcd drops the connection,
//! so to pcscd the card was pulled out — and putting it back powers it up and runs recovery, as
//! re-inserting a torn card does.

use card_transport::VirtualCard;

use crate::Card;

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

    fn is_sensitive(&self, command: &[u8]) -> bool {
        Card::is_sensitive(self, command)
    }
}
