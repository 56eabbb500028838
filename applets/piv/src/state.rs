//! Where the applet keeps its state: persistent record ids and transient record ids, in one table.
//!
//! The applet struct itself holds nothing (the card may re-create it at any power-up).

use card_os::{CardError, Context, Lifetime, OwnerPin, Requirement};

/// Persistent: the 4-byte big-endian serial number.
pub const REC_SERIAL: u16 = 0x0001;
/// Persistent: the PIN (OwnerPin record; value padded with `FF` to 8 bytes).
pub const REC_PIN: u16 = 0x0002;
/// Persistent: the PUK (OwnerPin record; value padded with `FF` to 8 bytes).
pub const REC_PUK: u16 = 0x0003;
/// Persistent: management key `algorithm, touch policy, key…`.
pub const REC_MGMT: u16 = 0x0004;
/// Persistent: "still the factory default" flags, see [`DefaultFlags`].
pub const REC_DEFAULTS: u16 = 0x0005;
/// Persistent: the attestation seed `seed[32] ‖ install time (u64, big-endian seconds)`, from which the
/// attestation key and certificate are made at their first use (see `yubico::attest`).
pub const REC_ATTESTATION_SEED: u16 = 0x0006;
/// Persistent: data objects, `0x1000 +` an index (see `objects`).
pub const REC_OBJECT_BASE: u16 = 0x1000;
/// Persistent: asymmetric keys, `0x2000 +` the slot's key reference.
pub const REC_KEY_BASE: u16 = 0x2000;

/// Transient: the PIN was verified (set by OwnerPin, cleared on reset / power-off only).
pub const TR_PIN_VERIFIED: u16 = 0x0001;
/// Transient: the PUK was verified (OwnerPin needs a flag; nothing is unlocked by it).
pub const TR_PUK_VERIFIED: u16 = 0x0002;
/// Transient: the management key was authenticated.
pub const TR_MGMT_AUTHENTICATED: u16 = 0x0003;
/// Transient: the pending management-key challenge `kind, algorithm, expected…`.
pub const TR_CHALLENGE: u16 = 0x0004;
/// Transient: a PIN verification not yet consumed by a PIN-always key.
pub const TR_PIN_FRESH: u16 = 0x0005;

pub const PIN: OwnerPin = OwnerPin::new(REC_PIN, TR_PIN_VERIFIED);
pub const PUK: OwnerPin = OwnerPin::new(REC_PUK, TR_PUK_VERIFIED);

/// Bits of the [`REC_DEFAULTS`] record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DefaultFlag {
    Pin = 0x01,
    Puk = 0x02,
    ManagementKey = 0x04,
}

pub fn is_default(ctx: &mut Context<'_>, flag: DefaultFlag) -> bool {
    ctx.store()
        .get(REC_DEFAULTS)
        .and_then(|b| b.first().copied())
        .is_some_and(|bits| bits & flag as u8 != 0)
}

pub fn set_default(ctx: &mut Context<'_>, flag: DefaultFlag, value: bool) -> Result<(), CardError> {
    let bits = ctx
        .store()
        .get(REC_DEFAULTS)
        .and_then(|b| b.first().copied())
        .unwrap_or(0);
    let bits = if value {
        bits | flag as u8
    } else {
        bits & !(flag as u8)
    };
    ctx.store().put(REC_DEFAULTS, &[bits])?;
    Ok(())
}

pub fn mgmt_authenticated(ctx: &mut Context<'_>) -> bool {
    ctx.transient().get(TR_MGMT_AUTHENTICATED).is_some()
}

pub fn set_mgmt_authenticated(ctx: &mut Context<'_>) {
    ctx.transient()
        .set(TR_MGMT_AUTHENTICATED, &[1], Lifetime::ClearOnReset);
}

/// `69 82` unless the management key was authenticated since the last reset.
pub fn require_mgmt(ctx: &mut Context<'_>) -> Result<(), CardError> {
    if mgmt_authenticated(ctx) {
        Ok(())
    } else {
        Err(CardError::SecurityStatusNotSatisfied(
            Requirement::KeyAuthentication,
        ))
    }
}

/// `69 82` unless the PIN was verified since the last reset.
pub fn require_pin(ctx: &mut Context<'_>) -> Result<(), CardError> {
    if PIN.is_validated(ctx) {
        Ok(())
    } else {
        Err(CardError::SecurityStatusNotSatisfied(Requirement::Pin))
    }
}

pub fn serial(ctx: &mut Context<'_>) -> u32 {
    ctx.store()
        .get(REC_SERIAL)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_be_bytes)
        .unwrap_or(0)
}
