//! PIV data objects: GET DATA / PUT DATA, the applet's fixed Discovery object and the CHUID / CCC
//! templates written at install.
//!
//! Objects are stored as the value inside `53` (one record each); GET DATA answers `53 L value`
//! (Discovery: `7E L value`). The largest value accepted is [`MAX_OBJECT_LEN`] bytes, as on a YubiKey 5.

use card_os::apdu::tlv;
use card_os::{CardError, Context, Reply};
use piv_types::{aid, tag, ObjectId};

use crate::state::{self, REC_OBJECT_BASE};

/// The largest object value PUT DATA accepts (YubiKey 5: 3052 bytes); larger → `6A 84`.
pub const MAX_OBJECT_LEN: usize = 3052;

/// Objects take `REC_OBJECT_BASE` up to this (exclusive): `7F61`, `5FC1xx`, `5FFFxx`.
const OBJECT_RECORDS: u16 = 0x200;

/// The first two bytes of the SP 800-73 objects `5F C1 xx`.
const SP800_73_PREFIX: u32 = 0x5FC1;

/// The store record of an object: `7F61` → 0, `5FC1xx` → `xx`, others (`5FFFxx`) → `100 + xx`.
fn record(object: ObjectId) -> u16 {
    let last = (object.tag() & 0xFF) as u16;
    let index = if object == ObjectId::BIOMETRIC_GROUP_TEMPLATE {
        0
    } else if object.tag() >> 8 == SP800_73_PREFIX {
        last
    } else {
        0x100 | last
    };
    // `index` is at most 0x1FF.
    REC_OBJECT_BASE + index
}

/// Objects SP 800-73 protects with the PIN (printed information and biometrics).
fn needs_pin(object: ObjectId) -> bool {
    matches!(
        object,
        ObjectId::PRINTED_INFO | ObjectId::FINGERPRINTS | ObjectId::FACIAL_IMAGE | ObjectId::IRIS
    )
}

/// PIN usage policy of Discovery: the application PIN only (no global PIN), `40 00`.
const PIN_USAGE_APPLICATION_PIN: [u8; 2] = [0x40, 0x00];

/// Discovery: the PIV AID and the PIN usage policy.
pub fn discovery_value() -> Vec<u8> {
    let mut out = tlv::encode(tag::APPLICATION_ID, aid::PIV);
    tlv::write(&mut out, tag::PIN_USAGE_POLICY, &PIN_USAGE_APPLICATION_PIN);
    out
}

/// The FASC-N of every CHUID this card writes: the all-default one YubiKeys use.
const FASC_N: [u8; 25] = [
    0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08,
    0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB,
];

/// CHUID expiry (`YYYYMMDD`).
const CHUID_EXPIRY: &[u8] = b"20300101";

/// A CHUID with this 16-byte GUID: FASC-N, GUID, expiry 2030-01-01, an empty signature and
/// error-detection code.
pub fn chuid(guid: &[u8; 16]) -> Vec<u8> {
    let mut out = tlv::encode(tag::CHUID_FASC_N, &FASC_N);
    tlv::write(&mut out, tag::CHUID_GUID, guid);
    tlv::write(&mut out, tag::CHUID_EXPIRY, CHUID_EXPIRY);
    tlv::write(&mut out, tag::CHUID_SIGNATURE, &[]);
    tlv::write(&mut out, tag::ERROR_DETECTION, &[]);
    out
}

/// CCC: the card identifier starts with the GSC-RID and the manufacturer and card type bytes.
const CCC_ID_PREFIX: [u8; 7] = [0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
/// CCC version fields: container and grammar version `21`, data model `10`, PKCS#15 `00`.
const CCC_VERSION: u8 = 0x21;
const CCC_DATA_MODEL: u8 = 0x10;
const CCC_NO_PKCS15: u8 = 0x00;

/// A CCC with this 14-byte card identifier. No CAC pointer (`F3` stays empty).
pub fn ccc(card_id: &[u8; 14]) -> Vec<u8> {
    let mut id = CCC_ID_PREFIX.to_vec();
    id.extend_from_slice(card_id);
    let mut out = tlv::encode(tag::CCC_CARD_IDENTIFIER, &id);
    tlv::write(&mut out, tag::CCC_CONTAINER_VERSION, &[CCC_VERSION]);
    tlv::write(&mut out, tag::CCC_GRAMMAR_VERSION, &[CCC_VERSION]);
    tlv::write(&mut out, tag::CCC_APPLICATIONS_URL, &[]);
    tlv::write(&mut out, tag::CCC_PKCS15, &[CCC_NO_PKCS15]);
    tlv::write(&mut out, tag::CCC_DATA_MODEL, &[CCC_DATA_MODEL]);
    for empty in [
        tag::CCC_ACCESS_CONTROL_RULES,
        tag::CCC_CARD_APDUS,
        tag::CCC_REDIRECTION,
        tag::CCC_CAPABILITY_TUPLES,
        tag::CCC_STATUS_TUPLES,
        tag::CCC_NEXT_CCC,
        tag::ERROR_DETECTION,
    ] {
        tlv::write(&mut out, empty, &[]);
    }
    out
}

/// CertInfo `00`: the certificate is not compressed.
const CERT_INFO_UNCOMPRESSED: u8 = 0x00;

/// A certificate object value: `70 L cert 71 01 00 FE 00`.
pub fn certificate_value(der: &[u8]) -> Vec<u8> {
    let mut out = tlv::encode(tag::CERTIFICATE, der);
    tlv::write(&mut out, tag::CERT_INFO, &[CERT_INFO_UNCOMPRESSED]);
    tlv::write(&mut out, tag::ERROR_DETECTION, &[]);
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
    ctx.store().get(record(object)).map(<[u8]>::to_vec)
}

pub fn write(ctx: &mut Context<'_>, object: ObjectId, value: &[u8]) -> Result<(), CardError> {
    if value.len() > MAX_OBJECT_LEN {
        return Err(CardError::NotEnoughMemory);
    }
    ctx.store().put(record(object), value)?;
    Ok(())
}

pub fn delete(ctx: &mut Context<'_>, object: ObjectId) -> Result<(), CardError> {
    ctx.store().remove(record(object))?;
    Ok(())
}

/// Every stored object except those in `keep` (for RESET).
pub fn delete_all_except(ctx: &mut Context<'_>, keep: &[ObjectId]) -> Result<(), CardError> {
    let keep: Vec<u16> = keep.iter().copied().map(record).collect();
    let ids: Vec<u16> = ctx
        .store()
        .ids()
        .into_iter()
        .filter(|id| {
            (REC_OBJECT_BASE..REC_OBJECT_BASE + OBJECT_RECORDS).contains(id) && !keep.contains(id)
        })
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
        return reply.push(&tlv::encode(tag::DISCOVERY, &discovery_value()));
    }
    if needs_pin(object) {
        state::require_pin(ctx)?;
    }
    let value = read(ctx, object).ok_or(CardError::NotFound)?;
    reply.push(&tlv::encode(tag::DATA, &value))
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

    #[test]
    fn ids_and_records_are_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        let mut all = vec![vec![0x7E], vec![0x7F, 0x61]];
        all.extend((1..=0x23).map(|n| vec![0x5F, 0xC1, n]));
        all.extend((0..=0x15).map(|n| vec![0x5F, 0xFF, n]));
        for bytes in &all {
            let id = ObjectId::from_tag_bytes(bytes).unwrap();
            assert!(seen.insert(record(id)), "{bytes:02X?}");
            assert!(record(id) < REC_OBJECT_BASE + OBJECT_RECORDS);
        }
        assert!(ObjectId::from_tag_bytes(&[0x5F, 0xC1, 0x24]).is_none());
        assert!(ObjectId::from_tag_bytes(&[0x5F, 0xC1]).is_none());
        assert_eq!(tlv::encode(tag::DISCOVERY, &discovery_value()).len(), 20);
        assert_eq!(ccc(&[0; 14])[1], 0x15);
        let c = chuid(&[0xAB; 16]);
        assert_eq!(
            tlv::find(&c, tag::CHUID_GUID).unwrap(),
            Some(&[0xAB; 16][..])
        );
    }

    /// The objects every card is born with, byte for byte as earlier versions wrote them.
    #[test]
    fn fixed_objects_keep_their_bytes() {
        assert_eq!(
            discovery_value(),
            [
                0x4F, 0x0B, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00, 0x5F,
                0x2F, 0x02, 0x40, 0x00,
            ]
        );
        let mut chuid_bytes = vec![
            0x30, 0x19, 0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83,
            0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB, 0x34,
            0x10,
        ];
        chuid_bytes.extend_from_slice(&[0xAB; 16]);
        chuid_bytes.extend_from_slice(&[0x35, 0x08]);
        chuid_bytes.extend_from_slice(b"20300101");
        chuid_bytes.extend_from_slice(&[0x3E, 0x00, 0xFE, 0x00]);
        assert_eq!(chuid(&[0xAB; 16]), chuid_bytes);
        let mut ccc_bytes = vec![0xF0, 0x15, 0xA0, 0x00, 0x00, 0x01, 0x16, 0xFF, 0x02];
        ccc_bytes.extend_from_slice(&[0x11; 14]);
        ccc_bytes.extend_from_slice(&[
            0xF1, 0x01, 0x21, 0xF2, 0x01, 0x21, 0xF3, 0x00, 0xF4, 0x01, 0x00, 0xF5, 0x01, 0x10,
            0xF6, 0x00, 0xF7, 0x00, 0xFA, 0x00, 0xFB, 0x00, 0xFC, 0x00, 0xFD, 0x00, 0xFE, 0x00,
        ]);
        assert_eq!(ccc(&[0x11; 14]), ccc_bytes);
        assert_eq!(
            certificate_value(&[0x30, 0x00]),
            [0x70, 0x02, 0x30, 0x00, 0x71, 0x01, 0x00, 0xFE, 0x00]
        );
    }
}
