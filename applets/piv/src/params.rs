//! Installation parameters: what the issuer chooses when the applet is installed.
//!
//! Wire form (`Installation.params`): a sequence of TLVs, every one required —
//! `01` PIN, `02` PUK, `03` PIN retries, `04` PUK retries, `05` management algorithm (`03`/`08`/`0A`/`0C`),
//! `06` management key, `07` serial (4 bytes big-endian, 0 = draw one from the card's RNG).
//! Empty params mean [`InstallParams::default`].

use card_os::apdu::tlv;
use card_os::Secret;
use piv_types::{ManagementAlgorithm, DEFAULT_MANAGEMENT_KEY, DEFAULT_PIN, DEFAULT_PUK};
use thiserror::Error;

/// Default PIN and PUK try limits.
pub const DEFAULT_RETRIES: u8 = 3;

/// How the PIV applet is personalized at installation. PIN, PUK and management key are [`Secret`]s:
/// never printed, zeroized on drop, compared in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct InstallParams {
    /// 6 to 8 ASCII digits.
    pub pin: Secret,
    /// 8 bytes.
    pub puk: Secret,
    pub pin_retries: u8,
    pub puk_retries: u8,
    pub management_key: Secret,
    pub management_algorithm: ManagementAlgorithm,
    /// 0: draw a serial from the card's RNG at install.
    pub serial: u32,
}

impl Default for InstallParams {
    fn default() -> Self {
        Self {
            pin: Secret::new(DEFAULT_PIN.as_bytes()),
            puk: Secret::new(DEFAULT_PUK.as_bytes()),
            pin_retries: DEFAULT_RETRIES,
            puk_retries: DEFAULT_RETRIES,
            management_key: Secret::new(DEFAULT_MANAGEMENT_KEY),
            management_algorithm: ManagementAlgorithm::TripleDes,
            serial: 0,
        }
    }
}

impl std::fmt::Debug for InstallParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstallParams")
            .field("pin", &"<secret>")
            .field("puk", &"<secret>")
            .field("pin_retries", &self.pin_retries)
            .field("puk_retries", &self.puk_retries)
            .field("management_key", &"<secret>")
            .field("management_algorithm", &self.management_algorithm)
            .field("serial", &self.serial)
            .finish()
    }
}

/// Installation parameters that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParamsError {
    #[error("installation parameters are not valid TLV: {0}")]
    Tlv(#[from] tlv::TlvError),
    #[error("installation parameter tag {0:02X} is missing")]
    Missing(u8),
    #[error("installation parameter tag {0:02X} has the wrong length")]
    BadLength(u8),
    #[error("unknown management key algorithm {0:02X} (expected 03, 08, 0A or 0C)")]
    UnknownAlgorithm(u8),
    #[error("installation parameter tag {0:02X} is not known")]
    UnknownTag(u32),
    #[error("{0}")]
    Invalid(String),
}

const TAG_PIN: u8 = 0x01;
const TAG_PUK: u8 = 0x02;
const TAG_PIN_RETRIES: u8 = 0x03;
const TAG_PUK_RETRIES: u8 = 0x04;
const TAG_ALGORITHM: u8 = 0x05;
const TAG_KEY: u8 = 0x06;
const TAG_SERIAL: u8 = 0x07;

impl InstallParams {
    /// The encoding [`InstallParams::from_bytes`] reads.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        tlv::write(&mut out, u32::from(TAG_PIN), self.pin.expose());
        tlv::write(&mut out, u32::from(TAG_PUK), self.puk.expose());
        tlv::write(&mut out, u32::from(TAG_PIN_RETRIES), &[self.pin_retries]);
        tlv::write(&mut out, u32::from(TAG_PUK_RETRIES), &[self.puk_retries]);
        tlv::write(
            &mut out,
            u32::from(TAG_ALGORITHM),
            &[self.management_algorithm.id()],
        );
        tlv::write(&mut out, u32::from(TAG_KEY), self.management_key.expose());
        tlv::write(&mut out, u32::from(TAG_SERIAL), &self.serial.to_be_bytes());
        out
    }

    /// Decodes and validates parameters; empty input gives the defaults.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ParamsError> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut fields: [Option<&[u8]>; 8] = [None; 8];
        for item in tlv::iter(bytes) {
            let item = item?;
            let index = usize::try_from(item.tag.0)
                .ok()
                .filter(|i| (1..=7).contains(i))
                .ok_or(ParamsError::UnknownTag(item.tag.0))?;
            fields[index] = Some(item.value);
        }
        let get = |tag: u8| fields[usize::from(tag)].ok_or(ParamsError::Missing(tag));
        let byte = |tag: u8| -> Result<u8, ParamsError> {
            match get(tag)? {
                [b] => Ok(*b),
                _ => Err(ParamsError::BadLength(tag)),
            }
        };
        let algorithm = byte(TAG_ALGORITHM)?;
        let serial: [u8; 4] = get(TAG_SERIAL)?
            .try_into()
            .map_err(|_| ParamsError::BadLength(TAG_SERIAL))?;
        let params = Self {
            pin: Secret::new(get(TAG_PIN)?),
            puk: Secret::new(get(TAG_PUK)?),
            pin_retries: byte(TAG_PIN_RETRIES)?,
            puk_retries: byte(TAG_PUK_RETRIES)?,
            management_key: Secret::new(get(TAG_KEY)?),
            management_algorithm: ManagementAlgorithm::from_id(algorithm)
                .ok_or(ParamsError::UnknownAlgorithm(algorithm))?,
            serial: u32::from_be_bytes(serial),
        };
        params.validate().map_err(ParamsError::Invalid)?;
        Ok(params)
    }

    /// Checks every field; the error is a sentence for the person who chose the values.
    pub fn validate(&self) -> Result<(), String> {
        let (pin, puk) = (self.pin.expose(), self.puk.expose());
        if !(6..=8).contains(&pin.len()) || !pin.iter().all(u8::is_ascii_digit) {
            return Err(format!(
                "the PIN must be 6 to 8 ASCII digits (got {} character(s){})",
                pin.len(),
                if pin.iter().all(u8::is_ascii_digit) {
                    ""
                } else {
                    ", not all digits"
                }
            ));
        }
        if puk.len() != 8 || puk.contains(&0xFF) {
            return Err(format!(
                "the PUK must be exactly 8 bytes, none of them FF (got {} byte(s))",
                puk.len()
            ));
        }
        for (name, retries) in [("PIN", self.pin_retries), ("PUK", self.puk_retries)] {
            if !(1..=15).contains(&retries) {
                return Err(format!(
                    "the {name} retry count must be between 1 and 15 (got {retries})"
                ));
            }
        }
        let expected = self.management_algorithm.key_len();
        if self.management_key.len() != expected {
            return Err(format!(
                "a {:?} management key must be {expected} bytes long (got {})",
                self.management_algorithm,
                self.management_key.len()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let params = InstallParams {
            pin: Secret::new(b"87654321".to_vec()),
            puk: Secret::new(b"ABCDEFGH".to_vec()),
            pin_retries: 5,
            puk_retries: 10,
            management_key: Secret::new(vec![7; 32]),
            management_algorithm: ManagementAlgorithm::Aes256,
            serial: 0x01020304,
        };
        assert_eq!(
            InstallParams::from_bytes(&params.to_bytes()).unwrap(),
            params
        );
        assert_eq!(
            InstallParams::from_bytes(&[]).unwrap(),
            InstallParams::default()
        );
        assert!(InstallParams::default().validate().is_ok());
        assert!(!format!("{params:?}").contains("8765"));
        assert!(!format!("{params:?}").contains("bytes"), "not even lengths");
    }

    #[test]
    fn bad_values_are_explained() {
        let mut p = InstallParams {
            pin: Secret::new(b"12a456".to_vec()),
            ..InstallParams::default()
        };
        assert!(p.validate().unwrap_err().contains("digits"));
        p.pin = Secret::new(b"123456".to_vec());
        p.puk = Secret::new(b"123".to_vec());
        assert!(p.validate().unwrap_err().contains("PUK"));
        p.puk = Secret::new(b"12345678".to_vec());
        p.pin_retries = 0;
        assert!(p.validate().unwrap_err().contains("PIN retry"));
        p.pin_retries = 3;
        p.management_algorithm = ManagementAlgorithm::Aes128;
        assert!(p.validate().unwrap_err().contains("16 bytes"));
        assert!(matches!(
            InstallParams::from_bytes(&p.to_bytes()),
            Err(ParamsError::Invalid(_))
        ));
        assert_eq!(
            InstallParams::from_bytes(&[0x09, 0x00]),
            Err(ParamsError::UnknownTag(9))
        );
        assert_eq!(
            InstallParams::from_bytes(&[0x01, 0x05]),
            Err(ParamsError::Tlv(tlv::TlvError::Truncated(2)))
        );
    }
}
