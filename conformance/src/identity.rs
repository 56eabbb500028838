//! Which card a report is about: its ATR, and — for a PIV card — the version, serial and CHUID GUID it
//! reports. Read-only commands only, so it is as safe on physical cards as the suites are.

use card_transport::Transport;
use piv_host::PivSession;
use piv_types::{tag, ObjectId};

/// What identifies the card under test.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CardIdentity {
    /// The transport, e.g. `pcsc:Virtual PCD 00 00`.
    pub target: String,
    /// Empty if the reader could not give it.
    pub atr: Vec<u8>,
    /// (field, value) pairs in display order: PIV version, serial, CHUID GUID — those the card answers.
    pub fields: Vec<(String, String)>,
}

/// Reads the card's identity. Missing pieces are left out (a card without PIV has only its ATR); the card
/// is reset afterwards so the suites start from power-up state.
pub fn identify(transport: &mut dyn Transport) -> CardIdentity {
    let mut identity = CardIdentity {
        target: transport.name(),
        atr: transport.atr().unwrap_or_default(),
        fields: Vec::new(),
    };
    if let Ok(mut piv) = PivSession::open(transport) {
        if let Ok(version) = piv.version() {
            identity
                .fields
                .push(("PIV version".into(), version.to_string()));
        }
        if let Ok(serial) = piv.serial() {
            identity.fields.push(("serial".into(), serial.to_string()));
        }
        let guid = piv
            .read_object(ObjectId::CHUID)
            .ok()
            .flatten()
            .and_then(|chuid| {
                apdu::tlv::find(&chuid, tag::CHUID_GUID)
                    .ok()
                    .flatten()
                    .map(hex::encode_upper)
            });
        if let Some(guid) = guid {
            identity.fields.push(("CHUID GUID".into(), guid));
        }
    }
    let _ = transport.reset();
    identity
}
