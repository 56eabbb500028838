use card_transport::VirtualCard;

/// The floor card: answers every APDU with `90 00` and does nothing else, so a
/// benchmark with it measures the transport alone.
#[derive(Debug, Default)]
pub struct EchoCard {
    powered: bool,
}

impl EchoCard {
    /// `3B 80 01 81`: direct convention (TS = 3B); T0 = 80 says only TD1 follows and
    /// no historical bytes; TD1 = 01 offers T=1 only, like our real card; TCK = 81
    /// (XOR of T0..TD1), required once anything but T=0 is offered. It avoids the
    /// `3B 8x 80 01` shape that PC/SC part 3 reserves for contactless cards.
    pub const ATR: [u8; 4] = [0x3B, 0x80, 0x01, 0x81];

    pub fn is_powered(&self) -> bool {
        self.powered
    }
}

impl VirtualCard for EchoCard {
    fn atr(&self) -> Vec<u8> {
        Self::ATR.to_vec()
    }

    fn power_on(&mut self) {
        self.powered = true;
    }

    fn power_off(&mut self) {
        self.powered = false;
    }

    fn reset(&mut self) {
        self.powered = true;
    }

    fn transmit(&mut self, _command: &[u8]) -> Vec<u8> {
        vec![0x90, 0x00]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atr_check_byte_is_consistent() {
        // TCK makes the XOR of T0..TCK zero.
        assert_eq!(EchoCard::ATR[1..].iter().fold(0, |a, b| a ^ b), 0);
    }

    #[test]
    fn answers_everything_with_9000() {
        let mut card = EchoCard::default();
        card.power_on();
        assert!(card.is_powered());
        assert_eq!(card.transmit(&[0x00, 0x20, 0x00, 0x80, 0x08]), [0x90, 0x00]);
        card.power_off();
        assert!(!card.is_powered());
    }
}
