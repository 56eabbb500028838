//! PIV data-object identifiers.

use crate::KeySlot;

/// A data-object tag the PIV vocabulary knows: `7E`, `7F 61`, `5F C1 01`–`5F C1 23`, `5F FF 00`–`5F FF 15`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(u32);

impl ObjectId {
    pub const DISCOVERY: ObjectId = ObjectId(0x7E);
    pub const BIOMETRIC_GROUP_TEMPLATE: ObjectId = ObjectId(0x7F61);
    pub const CERT_CARD_AUTHENTICATION: ObjectId = ObjectId(0x5FC101);
    pub const CHUID: ObjectId = ObjectId(0x5FC102);
    pub const FINGERPRINTS: ObjectId = ObjectId(0x5FC103);
    pub const CERT_AUTHENTICATION: ObjectId = ObjectId(0x5FC105);
    pub const SECURITY_OBJECT: ObjectId = ObjectId(0x5FC106);
    pub const CCC: ObjectId = ObjectId(0x5FC107);
    pub const FACIAL_IMAGE: ObjectId = ObjectId(0x5FC108);
    pub const PRINTED_INFO: ObjectId = ObjectId(0x5FC109);
    pub const CERT_SIGNATURE: ObjectId = ObjectId(0x5FC10A);
    pub const CERT_KEY_MANAGEMENT: ObjectId = ObjectId(0x5FC10B);
    pub const KEY_HISTORY: ObjectId = ObjectId(0x5FC10C);
    pub const IRIS: ObjectId = ObjectId(0x5FC121);
    pub const ATTESTATION_CERT: ObjectId = ObjectId(0x5FFF01);

    /// From the value of a `5C` tag list.
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

    /// The tag as a number (`0x5FC105`).
    pub fn tag(self) -> u32 {
        self.0
    }

    /// The tag as it travels in a `5C` tag list (`5F C1 05`).
    pub fn tag_bytes(self) -> Vec<u8> {
        let bytes = self.0.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        bytes[skip..].to_vec()
    }

    /// The certificate object of a key slot (`5FFF01` for F9).
    pub fn certificate_of(slot: KeySlot) -> Self {
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

impl std::fmt::Display for ObjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:X}", self.0)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_and_slots_have_their_objects() {
        let mut all = vec![vec![0x7E], vec![0x7F, 0x61]];
        all.extend((1..=0x23).map(|n| vec![0x5F, 0xC1, n]));
        all.extend((0..=0x15).map(|n| vec![0x5F, 0xFF, n]));
        for bytes in &all {
            let id = ObjectId::from_tag_bytes(bytes).unwrap();
            assert_eq!(&id.tag_bytes(), bytes);
        }
        assert!(ObjectId::from_tag_bytes(&[0x5F, 0xC1, 0x24]).is_none());
        assert!(ObjectId::from_tag_bytes(&[0x5F, 0xC1]).is_none());
        let retired = |r| ObjectId::certificate_of(KeySlot::from_reference(r).unwrap()).tag();
        assert_eq!(retired(0x82), 0x5FC10D);
        assert_eq!(retired(0x95), 0x5FC120);
        assert_eq!(ObjectId::CHUID.to_string(), "5FC102");
    }
}
