//! Status words: a wrapper over the two trailer bytes with named constants from one table.
//! Unknown values round-trip untouched and print as hex.

use std::fmt;

/// The SW1 SW2 trailer of a response APDU.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StatusWord(u16);

macro_rules! status_words {
    ($( $(#[$doc:meta])* $name:ident = $value:literal, $meaning:literal; )*) => {
        impl StatusWord {
            $( $(#[$doc])* pub const $name: StatusWord = StatusWord($value); )*
        }
        /// The one table of fixed status words: value, constant name, meaning.
        const TABLE: &[(u16, &str, &str)] = &[ $( ($value, stringify!($name), $meaning), )* ];
    };
}

status_words! {
    SUCCESS = 0x9000, "success";
    WARNING_NVM_UNCHANGED = 0x6200, "warning: state of non-volatile memory unchanged";
    /// Data is answered, but fewer than Ne bytes: the end of the file or record came first.
    END_OF_FILE = 0x6282, "warning: end of file or record reached before reading Ne bytes";
    SELECTED_FILE_DEACTIVATED = 0x6283, "warning: selected file deactivated";
    WARNING_NVM_CHANGED = 0x6300, "warning: state of non-volatile memory changed";
    /// The command reached the card but memory could not be written.
    MEMORY_FAILURE = 0x6581, "memory failure";
    WRONG_LENGTH = 0x6700, "wrong length";
    LOGICAL_CHANNEL_NOT_SUPPORTED = 0x6881, "logical channel not supported";
    SECURE_MESSAGING_NOT_SUPPORTED = 0x6882, "secure messaging not supported";
    LAST_COMMAND_OF_CHAIN_EXPECTED = 0x6883, "last command of the chain expected";
    CHAINING_NOT_SUPPORTED = 0x6884, "command chaining not supported";
    COMMAND_NOT_ALLOWED = 0x6900, "command not allowed";
    INCOMPATIBLE_FILE_STRUCTURE = 0x6981, "command incompatible with file structure";
    SECURITY_STATUS_NOT_SATISFIED = 0x6982, "security status not satisfied";
    AUTH_METHOD_BLOCKED = 0x6983, "authentication method blocked";
    REFERENCE_DATA_NOT_USABLE = 0x6984, "reference data not usable";
    CONDITIONS_NOT_SATISFIED = 0x6985, "conditions of use not satisfied";
    COMMAND_NOT_ALLOWED_NO_EF = 0x6986, "command not allowed (no current EF)";
    INCORRECT_DATA = 0x6A80, "incorrect parameters in the command data field";
    FUNCTION_NOT_SUPPORTED = 0x6A81, "function not supported";
    NOT_FOUND = 0x6A82, "file or application not found";
    RECORD_NOT_FOUND = 0x6A83, "record not found";
    NOT_ENOUGH_MEMORY = 0x6A84, "not enough memory space in the file";
    INCORRECT_P1P2 = 0x6A86, "incorrect parameters P1-P2";
    LC_INCONSISTENT_WITH_P1P2 = 0x6A87, "Nc inconsistent with parameters P1-P2";
    REFERENCE_NOT_FOUND = 0x6A88, "referenced data or reference data not found";
    FILE_EXISTS = 0x6A89, "file already exists";
    WRONG_P1P2 = 0x6B00, "wrong parameters P1-P2";
    INS_NOT_SUPPORTED = 0x6D00, "instruction code not supported or invalid";
    CLA_NOT_SUPPORTED = 0x6E00, "class not supported";
    UNKNOWN = 0x6F00, "no precise diagnosis";
}

impl StatusWord {
    pub const fn from_u16(value: u16) -> Self {
        Self(value)
    }

    pub const fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self(u16::from_be_bytes([sw1, sw2]))
    }

    pub const fn to_u16(self) -> u16 {
        self.0
    }

    pub const fn to_bytes(self) -> [u8; 2] {
        self.0.to_be_bytes()
    }

    pub const fn sw1(self) -> u8 {
        (self.0 >> 8) as u8
    }

    pub const fn sw2(self) -> u8 {
        self.0 as u8
    }

    /// `61 xx`: `xx` more response bytes are waiting for GET RESPONSE (`00` = 256 or more).
    pub const fn bytes_remaining(count: u8) -> Self {
        Self::from_bytes(0x61, count)
    }

    /// `6C xx`: wrong Le; the exact length is `xx`.
    pub const fn wrong_le(exact: u8) -> Self {
        Self::from_bytes(0x6C, exact)
    }

    /// `63 Cx`: verification failed, `x` tries left (clients read only the low nibble, so it saturates at 15).
    pub const fn remaining_retries(tries: u8) -> Self {
        let nibble = if tries > 0x0F { 0x0F } else { tries };
        Self::from_bytes(0x63, 0xC0 | nibble)
    }

    /// `90 00`, or `61 xx` (more data available) — the command was carried out.
    pub const fn is_success(self) -> bool {
        self.0 == 0x9000 || self.sw1() == 0x61
    }

    /// The tries left if this is a `63 Cx`.
    pub const fn retries_left(self) -> Option<u8> {
        if self.sw1() == 0x63 && self.sw2() & 0xF0 == 0xC0 {
            Some(self.sw2() & 0x0F)
        } else {
            None
        }
    }

    /// The constant's name for a fixed status word (`"NOT_FOUND"` for `6A82`).
    pub fn name(self) -> Option<&'static str> {
        TABLE
            .iter()
            .find(|(value, _, _)| *value == self.0)
            .map(|(_, name, _)| *name)
    }

    /// What ISO 7816-4 says this status word means, in words.
    pub fn meaning(self) -> String {
        if let Some((_, _, meaning)) = TABLE.iter().find(|(value, _, _)| *value == self.0) {
            return (*meaning).to_string();
        }
        let (sw1, sw2) = (self.sw1(), self.sw2());
        match sw1 {
            0x61 if sw2 == 0 => "256 or more response bytes still available".to_string(),
            0x61 => format!("{sw2} response byte(s) still available"),
            0x6C => format!("wrong Le; the exact length is {sw2}"),
            0x63 if sw2 & 0xF0 == 0xC0 => {
                let tries = sw2 & 0x0F;
                format!(
                    "verification failed, {tries} {} left",
                    if tries == 1 { "try" } else { "tries" }
                )
            }
            0x62 | 0x63 => "warning".to_string(),
            0x64 | 0x65 => "execution error".to_string(),
            0x66 => "security-related error".to_string(),
            0x67..=0x6F => "checking error".to_string(),
            0x90 => "success (proprietary qualifier)".to_string(),
            _ => "unknown status word".to_string(),
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({})", self.0, self.meaning())
    }
}

impl fmt::Debug for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "StatusWord({:04X} {name})", self.0),
            None => write!(f, "StatusWord({:04X})", self.0),
        }
    }
}

impl From<u16> for StatusWord {
    fn from(value: u16) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_values_are_unique_and_named() {
        for (i, (value, name, _)) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..].iter().all(|(v, _, _)| v != value),
                "{name} twice"
            );
            assert_eq!(StatusWord(*value).name(), Some(*name));
        }
    }

    #[test]
    fn parameterised_words_describe_their_value() {
        assert_eq!(StatusWord::remaining_retries(2).to_u16(), 0x63C2);
        assert_eq!(StatusWord::remaining_retries(40).to_u16(), 0x63CF);
        assert_eq!(
            StatusWord::from_u16(0x63C1).meaning(),
            "verification failed, 1 try left"
        );
        assert_eq!(StatusWord::from_u16(0x63C1).retries_left(), Some(1));
        assert_eq!(
            StatusWord::bytes_remaining(0x10).meaning(),
            "16 response byte(s) still available"
        );
        assert_eq!(
            StatusWord::wrong_le(8).meaning(),
            "wrong Le; the exact length is 8"
        );
        assert_eq!(StatusWord::SUCCESS.retries_left(), None);
        assert!(StatusWord::bytes_remaining(0).is_success());
        assert!(!StatusWord::NOT_FOUND.is_success());
    }

    #[test]
    fn unknown_values_round_trip_and_print_as_hex() {
        let sw = StatusWord::from_bytes(0x9F, 0x12);
        assert_eq!(sw.to_bytes(), [0x9F, 0x12]);
        assert_eq!(format!("{sw:?}"), "StatusWord(9F12)");
        assert_eq!(
            format!("{:?}", StatusWord::NOT_FOUND),
            "StatusWord(6A82 NOT_FOUND)"
        );
    }
}
