//! Command APDUs in the seven ISO 7816-4 cases. Lengths are parsed in the order the standard lists the
//! cases, and the wire form (short or extended) is kept so encoding gives back the bytes that were decoded.

use thiserror::Error;

/// Largest Ne a short APDU can ask for (`Le = 00`).
pub const MAX_SHORT_NE: usize = 256;
/// Largest Ne an extended APDU can ask for (`Le = 00 00`).
pub const MAX_EXTENDED_NE: usize = 65536;

/// A command APDU.
#[derive(Clone, Eq)]
pub struct Command {
    pub cla: u8,
    pub ins: u8,
    pub p1: u8,
    pub p2: u8,
    /// The command data field (Nc = its length).
    pub data: Vec<u8>,
    /// Ne, the maximum number of response bytes expected; `None` when the command has no Le field.
    le: Option<usize>,
    /// Whether the length fields use the extended (3-byte Lc / 2-3 byte Le) form.
    extended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CommandError {
    #[error("a command APDU needs at least 4 header bytes, got {0}")]
    TooShort(usize),
    #[error("the length fields do not match the {actual} byte(s) of the APDU")]
    LengthMismatch { actual: usize },
    #[error("an extended Lc of 0 is not allowed")]
    ZeroExtendedLc,
    #[error("Ne of {0} is not between 1 and 65536")]
    InvalidNe(usize),
}

impl Command {
    /// A case-1 command (no data, no Le).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Self {
            cla,
            ins,
            p1,
            p2,
            data: Vec::new(),
            le: None,
            extended: false,
        }
    }

    /// Sets the data field. The form becomes extended if the data does not fit a short APDU.
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = data.into();
        self.extended |= self.data.len() > 255;
        self
    }

    /// Sets Ne (1..=65536). The form becomes extended if Ne does not fit a short APDU.
    pub fn with_le(mut self, ne: usize) -> Result<Self, CommandError> {
        if ne == 0 || ne > MAX_EXTENDED_NE {
            return Err(CommandError::InvalidNe(ne));
        }
        self.le = Some(ne);
        self.extended |= ne > MAX_SHORT_NE;
        Ok(self)
    }

    /// Forces the extended length form.
    pub fn extended(mut self) -> Self {
        self.extended = true;
        self
    }

    /// Ne: the maximum number of response data bytes the host accepts, if it sent an Le field.
    pub fn ne(&self) -> Option<usize> {
        self.le
    }

    /// Whether the length fields use the extended form (a case-1 command has none, so never).
    pub fn is_extended(&self) -> bool {
        self.extended && self.case() != 1
    }

    /// The header `[CLA, INS, P1, P2]`.
    pub fn header(&self) -> [u8; 4] {
        [self.cla, self.ins, self.p1, self.p2]
    }

    /// The ISO case number (1..=4) of this command.
    pub fn case(&self) -> u8 {
        match (self.data.is_empty(), self.le.is_some()) {
            (true, false) => 1,
            (true, true) => 2,
            (false, false) => 3,
            (false, true) => 4,
        }
    }

    /// CLA bit `10`: more commands of this chain follow.
    pub fn is_chained(&self) -> bool {
        self.cla & 0x80 == 0 && self.cla & 0x10 != 0
    }

    /// Decodes a command APDU. Total: every input parses or yields a typed error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CommandError> {
        let [cla, ins, p1, p2, body @ ..] = bytes else {
            return Err(CommandError::TooShort(bytes.len()));
        };
        let mut command = Command::new(*cla, *ins, *p1, *p2);
        let mismatch = CommandError::LengthMismatch {
            actual: bytes.len(),
        };
        match body {
            // Case 1.
            [] => {}
            // Case 2S: a lone Le byte; 00 means 256.
            [le] => command.le = Some(short_ne(*le)),
            // Short Lc (non-zero first byte): case 3S or 4S.
            [lc, rest @ ..] if *lc != 0 => {
                let nc = usize::from(*lc);
                match rest.len().checked_sub(nc) {
                    Some(0) => command.data = rest.to_vec(),
                    Some(1) => {
                        command.data = rest[..nc].to_vec();
                        command.le = Some(short_ne(rest[nc]));
                    }
                    _ => return Err(mismatch),
                }
            }
            // Case 2E: 00 Le1 Le2; 00 00 means 65536.
            [0, le1, le2] => {
                command.extended = true;
                command.le = Some(extended_ne(*le1, *le2));
            }
            // Case 3E / 4E: 00 Lc1 Lc2 data [Le1 Le2].
            [0, lc1, lc2, rest @ ..] => {
                command.extended = true;
                let nc = usize::from(u16::from_be_bytes([*lc1, *lc2]));
                if nc == 0 {
                    return Err(CommandError::ZeroExtendedLc);
                }
                match rest.len().checked_sub(nc) {
                    Some(0) => command.data = rest.to_vec(),
                    Some(2) => {
                        command.data = rest[..nc].to_vec();
                        command.le = Some(extended_ne(rest[nc], rest[nc + 1]));
                    }
                    _ => return Err(mismatch),
                }
            }
            _ => return Err(mismatch),
        }
        Ok(command)
    }

    /// Encodes the command in its short or extended form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + 3 + self.data.len() + 2);
        out.extend_from_slice(&self.header());
        let nc = self.data.len();
        if self.is_extended() {
            if nc > 0 {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.le {
                if nc == 0 {
                    out.push(0);
                }
                // 65536 is written as 00 00; the cast keeps exactly that.
                out.extend_from_slice(&((ne % MAX_EXTENDED_NE) as u16).to_be_bytes());
            }
        } else {
            if nc > 0 {
                out.push(nc as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.le {
                out.push((ne % MAX_SHORT_NE) as u8);
            }
        }
        out
    }
}

fn short_ne(le: u8) -> usize {
    if le == 0 {
        MAX_SHORT_NE
    } else {
        usize::from(le)
    }
}

fn extended_ne(le1: u8, le2: u8) -> usize {
    match u16::from_be_bytes([le1, le2]) {
        0 => MAX_EXTENDED_NE,
        ne => usize::from(ne),
    }
}

impl PartialEq for Command {
    fn eq(&self, other: &Self) -> bool {
        self.header() == other.header()
            && self.data == other.data
            && self.le == other.le
            && self.is_extended() == other.is_extended()
    }
}

impl std::fmt::Debug for Command {
    /// Prints the header and lengths only: command data may hold a PIN, so it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Command {{ {:02X} {:02X} {:02X} {:02X}, Nc={}, Ne={:?}{} }}",
            self.cla,
            self.ins,
            self.p1,
            self.p2,
            self.data.len(),
            self.le,
            if self.is_extended() { ", extended" } else { "" }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(hex_apdu: &str) -> Command {
        let bytes = hex::decode(hex_apdu.replace(' ', "")).unwrap();
        let command = Command::from_bytes(&bytes).unwrap();
        assert_eq!(command.to_bytes(), bytes, "re-encoding {hex_apdu}");
        command
    }

    #[test]
    fn case_1() {
        let c = roundtrip("00 A4 04 00");
        assert_eq!((c.case(), c.data.len(), c.ne()), (1, 0, None));
    }

    #[test]
    fn case_2_short_le_00_means_256() {
        let c = roundtrip("00 FD 00 00 00");
        assert_eq!((c.case(), c.ne(), c.is_extended()), (2, Some(256), false));
        assert_eq!(roundtrip("00 C0 00 00 10").ne(), Some(16));
    }

    #[test]
    fn case_3_and_4_short() {
        let c = roundtrip("00 20 00 80 02 31 32");
        assert_eq!(
            (c.case(), c.data.as_slice(), c.ne()),
            (3, &[0x31, 0x32][..], None)
        );
        let c = roundtrip("00 CB 3F FF 03 5C 01 7E 00");
        assert_eq!((c.case(), c.data.len(), c.ne()), (4, 3, Some(256)));
    }

    #[test]
    fn case_2_extended_le_0000_means_65536() {
        let c = roundtrip("00 B0 00 00 00 00 00");
        assert_eq!((c.case(), c.ne(), c.is_extended()), (2, Some(65536), true));
        assert_eq!(roundtrip("00 B0 00 00 00 01 00").ne(), Some(256));
    }

    #[test]
    fn case_3_and_4_extended() {
        let c = roundtrip("00 DB 3F FF 00 00 02 AA BB");
        assert_eq!(
            (c.case(), c.data.len(), c.ne(), c.is_extended()),
            (3, 2, None, true)
        );
        let c = roundtrip("00 87 11 9A 00 00 01 CC 00 00");
        assert_eq!((c.case(), c.ne()), (4, Some(65536)));
    }

    #[test]
    fn malformed_lengths_are_typed_errors() {
        assert_eq!(
            Command::from_bytes(&[0, 1, 2]),
            Err(CommandError::TooShort(3))
        );
        // Lc says 3 but 2 bytes follow.
        assert!(matches!(
            Command::from_bytes(&[0, 0x20, 0, 0x80, 3, 1, 2]),
            Err(CommandError::LengthMismatch { .. })
        ));
        // Two extra bytes after a short data field.
        assert!(Command::from_bytes(&[0, 0x20, 0, 0x80, 1, 1, 2, 3]).is_err());
        // 00 then one byte: neither 2E nor 3E.
        assert!(Command::from_bytes(&[0, 0x20, 0, 0x80, 0, 1]).is_err());
        assert_eq!(
            Command::from_bytes(&[0, 0x20, 0, 0x80, 0, 0, 0, 9]),
            Err(CommandError::ZeroExtendedLc)
        );
    }

    #[test]
    fn builder_picks_the_form_that_fits() {
        let long = Command::new(0, 0xDB, 0x3F, 0xFF).with_data(vec![0u8; 300]);
        assert!(long.is_extended());
        let c = Command::new(0, 0xCB, 0x3F, 0xFF).with_le(256).unwrap();
        assert_eq!(c.to_bytes(), [0, 0xCB, 0x3F, 0xFF, 0]);
        assert_eq!(
            Command::new(0, 0, 0, 0).with_le(0),
            Err(CommandError::InvalidNe(0))
        );
    }

    #[test]
    fn chaining_bit_is_read_from_cla() {
        assert!(Command::new(0x10, 0xDB, 0x3F, 0xFF).is_chained());
        assert!(!Command::new(0x00, 0xDB, 0x3F, 0xFF).is_chained());
        // Proprietary class (bit 8 set) does not carry the ISO chaining bit.
        assert!(!Command::new(0x90, 0xDB, 0x3F, 0xFF).is_chained());
    }

    #[test]
    fn debug_never_prints_data() {
        let c = Command::new(0, 0x20, 0, 0x80).with_data(b"123456".to_vec());
        assert!(!format!("{c:?}").contains("31"));
    }
}
