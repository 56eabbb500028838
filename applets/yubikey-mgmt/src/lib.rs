//! A YubiKey Management compatible applet, so that yubikit (`ykman info`, `ykman list`, and every ykman
//! command that first asks what it is talking to) sees which firmware, applications and form factor the
//! card has, instead of falling back to guessing "version 3.0.0" by probing applets. Written only
//! against card-os's public applet API. It reads; it changes nothing (no `WRITE CONFIG`, no mode switch).
//!
//! | CLA INS | command | answer |
//! |---|---|---|
//! | SELECT `A0 00 00 05 27 47 11 17` | select | the version string `tessera mgmt - FW version 5.7.1` (yubikit reads the version from it) |
//! | `00 1D page 00` | READ CONFIG | page 0: `len ‖ TLVs` — supported and enabled USB capabilities (`01`, `03`: PIV), serial (`02`, when known), form factor (`04`), firmware version (`05`), configuration unlocked (`0A`); any other page: empty (`00`) |
//!
//! The version is the PIV applet's (5.7.1, see `applets/piv/README.md`): yubikit gates PIV features on
//! the management version too. Installation parameters: empty, or the 4-byte big-endian serial the
//! card's PIV applet reports (the two applets cannot read each other's state, so whoever makes the
//! card passes it to both).

use card_os::apdu::Command;
use card_os::{Aid, Applet, CardError, Context, Reply};

/// The YubiKey Management application identifier.
pub const MANAGEMENT_AID: &[u8] = &[0xA0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17];

/// The firmware version reported, the PIV applet's.
pub const VERSION: [u8; 3] = [5, 7, 1];

/// What SELECT answers: yubikit finds `major.minor.patch` in it.
pub const SELECT_RESPONSE: &[u8] = b"tessera mgmt - FW version 5.7.1";

pub fn aid() -> Aid {
    // 8 bytes: a valid AID.
    Aid::new(MANAGEMENT_AID).unwrap_or_else(|| unreachable!())
}

pub fn factory() -> Box<dyn Applet> {
    Box::new(ManagementApplet)
}

/// Installation parameters for a card whose PIV serial is `serial`.
pub fn install_params(serial: Option<u32>) -> Vec<u8> {
    serial.map(|s| s.to_be_bytes().to_vec()).unwrap_or_default()
}

const CLA_ISO: u8 = 0x00;
const INS_READ_CONFIG: u8 = 0x1D;

/// Persistent: the serial (4 bytes, big-endian), if installed with one.
const REC_SERIAL: u16 = 1;

/// Device-information tags (yubikit `management.py`).
mod tag {
    pub const USB_SUPPORTED: u8 = 0x01;
    pub const SERIAL: u8 = 0x02;
    pub const USB_ENABLED: u8 = 0x03;
    pub const FORM_FACTOR: u8 = 0x04;
    pub const VERSION: u8 = 0x05;
    pub const CONFIG_LOCK: u8 = 0x0A;
}

/// Capability bits (yubikit `CAPABILITY`): only PIV is on this card.
const CAPABILITY_PIV: [u8; 2] = [0x00, 0x10];
/// Form factor code 1: a USB-A key (yubikit `FORM_FACTOR.USB_A_KEYCHAIN`).
const FORM_FACTOR_USB_A_KEYCHAIN: u8 = 0x01;

/// The management applet. Stateless: the serial lives in the card's store.
pub struct ManagementApplet;

impl ManagementApplet {
    /// Page 0 of the device information: `len ‖ TLVs`.
    fn device_info(ctx: &mut Context<'_>) -> Vec<u8> {
        let mut tlvs = Vec::with_capacity(32);
        let mut item = |tag: u8, value: &[u8]| {
            tlvs.push(tag);
            // Every value here is a few bytes: one length byte.
            tlvs.push(value.len() as u8);
            tlvs.extend_from_slice(value);
        };
        item(tag::USB_SUPPORTED, &CAPABILITY_PIV);
        if let Some(serial) = ctx.store().get(REC_SERIAL).map(<[u8]>::to_vec) {
            item(tag::SERIAL, &serial);
        }
        item(tag::USB_ENABLED, &CAPABILITY_PIV);
        item(tag::FORM_FACTOR, &[FORM_FACTOR_USB_A_KEYCHAIN]);
        item(tag::VERSION, &VERSION);
        item(tag::CONFIG_LOCK, &[0x00]);
        let mut page = Vec::with_capacity(tlvs.len() + 1);
        page.push(tlvs.len() as u8);
        page.extend_from_slice(&tlvs);
        page
    }
}

impl Applet for ManagementApplet {
    fn install(&mut self, ctx: &mut Context<'_>, params: &[u8]) -> Result<(), CardError> {
        match params.len() {
            0 => Ok(()),
            4 => {
                ctx.store().put(REC_SERIAL, params)?;
                Ok(())
            }
            _ => Err(CardError::InvalidData),
        }
    }

    fn select(&mut self, _ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError> {
        reply.push(SELECT_RESPONSE)
    }

    fn process(
        &mut self,
        ctx: &mut Context<'_>,
        command: &Command,
        reply: &mut Reply,
    ) -> Result<(), CardError> {
        if command.cla != CLA_ISO {
            return Err(CardError::ClaNotSupported);
        }
        match command.ins {
            INS_READ_CONFIG => {
                if command.p2 != 0 {
                    return Err(CardError::IncorrectP1P2);
                }
                if !command.data.is_empty() {
                    return Err(CardError::WrongLength);
                }
                match command.p1 {
                    0 => reply.push(&Self::device_info(ctx)),
                    // No further pages: an empty one (length 0).
                    _ => reply.push(&[0x00]),
                }
            }
            _ => Err(CardError::InsNotSupported),
        }
    }
}
