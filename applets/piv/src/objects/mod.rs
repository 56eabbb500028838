//! PIV data objects: GET DATA / PUT DATA, the applet's fixed Discovery object and the CHUID / CCC
//! templates written at install.
//!
//! Objects are stored as the value inside `53` (one record each); GET DATA answers `53 L value`
//! (Discovery: `7E L value`). The largest value accepted is [`MAX_OBJECT_LEN`] bytes, as on a YubiKey 5.

use card_os::apdu::tlv;
use card_os::{CardError, Context, Reply};

use crate::state::{self, REC_OBJECT_BASE};

/// The largest object value PUT DATA accepts (YubiKey 5: 3052 bytes); larger → `6A 84`.
pub const MAX_OBJECT_LEN: usize = 3052;

/// A data object tag that this card knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectId(u32);

impl ObjectId {
    pub const DISCOVERY: ObjectId = ObjectId(0x7E);
    pub const CHUID: ObjectId = ObjectId(0x5FC102);
    pub const FINGERPRINTS: ObjectId = ObjectId(0x5FC103);
    pub const FACIAL_IMAGE: ObjectId = ObjectId(0x5FC108);
    pub const PRINTED_INFO: ObjectId = ObjectId(0x5FC109);
    pub const CCC: ObjectId = ObjectId(0x5FC107);
    pub const IRIS: ObjectId = ObjectId(0x5FC121);
    pub const ATTESTATION_CERT: ObjectId = ObjectId(0x5FFF01);

    /// From the value of a `5C` tag list: `7E`, `7F 61`, `5F C1 01`–`5F C1 23`, `5F FF 00`–`5F FF 15`.
    pub fn from_tag_bytes(bytes: &[u8]) -> Option<Self> {
        let tag = match bytes {
            [0x7E] => 0x7E,
            [0x7F, 0x61] => 0x7F61,
            [0x5F, 0xC1, n @ 0x01..=0x23] => 0x5FC100 | u32::from(*n),
            [0x5F, 0xFF, n @ 0x00..=0x15] => 0x5FFF00 | u32::from(*n),
            _ => return None,
        };
        Some(ObjectId(tag))
    }

    #[cfg(test)]
    pub fn tag(self) -> u32 {
        self.0
    }

    fn record(self) -> u16 {
        let index = match self.0 {
            0x7F61 => 0x00,
            t @ 0x5FC100..=0x5FC1FF => t & 0xFF,
            t => 0x100 | (t & 0xFF),
        };
        // `index` is at most 0x1FF.
        REC_OBJECT_BASE + (index as u16)
    }

    /// Objects SP 800-73 protects with the PIN (printed information and biometrics).
    fn needs_pin(self) -> bool {
        matches!(
            self,
            ObjectId::PRINTED_INFO
                | ObjectId::FINGERPRINTS
                | ObjectId::FACIAL_IMAGE
                | ObjectId::IRIS
        )
    }

    /// The certificate object of a key slot (`5FFF01` for F9).
    #[cfg(test)]
    pub fn for_slot(slot: crate::keys::KeySlot) -> Self {
        use crate::keys::KeySlot;
        ObjectId(match slot {
            KeySlot::Authentication => 0x5FC105,
            KeySlot::Signature => 0x5FC10A,
            KeySlot::KeyManagement => 0x5FC10B,
            KeySlot::CardAuthentication => 0x5FC101,
            KeySlot::Retired(r) => 0x5FC10C + u32::from(r.number()),
            KeySlot::Attestation => 0x5FFF01,
        })
    }
}

/// Discovery: the PIV AID and PIN usage policy `40 00` (application PIN only; no global PIN).
pub const DISCOVERY_VALUE: &[u8] = &[
    0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F, 0x2F, 0x02,
    0x40, 0x00,
];

/// A CHUID with this 16-byte GUID: FASC-N (the all-default one YubiKeys use), GUID, expiry 2030-01-01,
/// an empty signature and error-detection code.
pub fn chuid(guid: &[u8; 16]) -> Vec<u8> {
    let mut out = vec![
        0x30, 0x19, 0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68,
        0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
    ];
    tlv::write(&mut out, 0x34u32, guid);
    tlv::write(&mut out, 0x35u32, b"20300101");
    out.extend_from_slice(&[0x3E, 0x00, 0xFE, 0x00]);
    out
}

/// A CCC with this 14-byte card identifier. No CAC pointer (`F3` stays empty).
pub fn ccc(card_id: &[u8; 14]) -> Vec<u8> {
    let mut id = vec![0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
    id.extend_from_slice(card_id);
    let mut out = tlv::encode(0xF0u32, &id);
    out.extend_from_slice(&[
        0xF1, 0x01, 0x21, 0xF2, 0x01, 0x21, 0xF3, 0x00, 0xF4, 0x01, 0x00, 0xF5, 0x01, 0x10, 0xF6,
        0x00, 0xF7, 0x00, 0xFA, 0x00, 0xFB, 0x00, 0xFC, 0x00, 0xFD, 0x00, 0xFE, 0x00,
    ]);
    out
}

/// A certificate object value: `70 L cert 71 01 00 FE 00`.
pub fn certificate_value(der: &[u8]) -> Vec<u8> {
    let mut out = tlv::encode(0x70u32, der);
    out.extend_from_slice(&[0x71, 0x01, 0x00, 0xFE, 0x00]);
    out
}

/// Writes fresh CHUID and CCC objects from the card's RNG.
pub fn write_identity(ctx: &mut Context<'_>) -> Result<(), CardError> {
    let mut guid = [0u8; 16];
    ctx.crypto().fill_random(&mut guid)?;
    let mut card_id = [0u8; 14];
    ctx.crypto().fill_random(&mut card_id)?;
    write(ctx, ObjectId::CHUID, &chuid(&guid))?;
    write(ctx, ObjectId::CCC, &ccc(&card_id))
}

pub fn read(ctx: &mut Context<'_>, object: ObjectId) -> Option<Vec<u8>> {
    ctx.store().get(object.record()).map(<[u8]>::to_vec)
}

pub fn write(ctx: &mut Context<'_>, object: ObjectId, value: &[u8]) -> Result<(), CardError> {
    if value.len() > MAX_OBJECT_LEN {
        return Err(CardError::Status(
            card_os::apdu::StatusWord::NOT_ENOUGH_MEMORY,
        ));
    }
    ctx.store().put(object.record(), value)?;
    Ok(())
}

pub fn delete(ctx: &mut Context<'_>, object: ObjectId) -> Result<(), CardError> {
    ctx.store().remove(object.record())?;
    Ok(())
}

/// Every stored object except those in `keep` (for RESET).
pub fn delete_all_except(ctx: &mut Context<'_>, keep: &[ObjectId]) -> Result<(), CardError> {
    let keep: Vec<u16> = keep.iter().map(|o| o.record()).collect();
    let ids: Vec<u16> = ctx
        .store()
        .ids()
        .into_iter()
        .filter(|id| (REC_OBJECT_BASE..REC_OBJECT_BASE + 0x200).contains(id) && !keep.contains(id))
        .collect();
    for id in ids {
        ctx.store().remove(id)?;
    }
    Ok(())
}

/// GET DATA.
pub fn get_data(
    ctx: &mut Context<'_>,
    object: ObjectId,
    reply: &mut Reply,
) -> Result<(), CardError> {
    if object == ObjectId::DISCOVERY {
        return reply.push(&tlv::encode(0x7Eu32, DISCOVERY_VALUE));
    }
    if object.needs_pin() {
        state::require_pin(ctx)?;
    }
    let value = read(ctx, object).ok_or(CardError::NotFound)?;
    reply.push(&tlv::encode(0x53u32, &value))
}

/// PUT DATA (`None` deletes). Needs the management key.
pub fn put_data(
    ctx: &mut Context<'_>,
    object: ObjectId,
    value: Option<&[u8]>,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    match value {
        Some(value) => write(ctx, object, value),
        None => delete(ctx, object),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::keys::KeySlot;

    #[test]
    fn ids_and_records_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        let mut all = vec![vec![0x7E], vec![0x7F, 0x61]];
        all.extend((1..=0x23).map(|n| vec![0x5F, 0xC1, n]));
        all.extend((0..=0x15).map(|n| vec![0x5F, 0xFF, n]));
        for bytes in &all {
            let id = ObjectId::from_tag_bytes(bytes).unwrap();
            assert!(seen.insert(id.record()), "{bytes:02X?}");
        }
        assert!(ObjectId::from_tag_bytes(&[0x5F, 0xC1, 0x24]).is_none());
        assert!(ObjectId::from_tag_bytes(&[0x5F, 0xC1]).is_none());
        assert_eq!(
            ObjectId::for_slot(KeySlot::from_reference(0x82).unwrap()).tag(),
            0x5FC10D
        );
        assert_eq!(
            ObjectId::for_slot(KeySlot::from_reference(0x95).unwrap()).tag(),
            0x5FC120
        );
        assert_eq!(tlv::encode(0x7Eu32, DISCOVERY_VALUE).len(), 20);
        assert_eq!(ccc(&[0; 14])[1], 0x15);
        let c = chuid(&[0xAB; 16]);
        assert_eq!(tlv::find(&c, 0x34u32).unwrap(), Some(&[0xAB; 16][..]));
    }
}
