//! YubiKey extensions: GET VERSION, GET SERIAL, RESET, SET PIN RETRIES, GET METADATA, ATTEST (see
//! `attest`). The reported version is [`VERSION`]; see the crate README for why.

pub mod attest;

use card_os::{CardError, Context, Reply};
use piv_types::{KeySlot, ObjectId, PinReference, DEFAULT_PIN, DEFAULT_PUK};

use crate::commands::{MetadataTarget, PaddedPin};
use crate::keys;
use crate::mgmt;
use crate::objects;
use crate::params::InstallParams;
use crate::personalize::personalize;
use crate::pin;
use crate::state::{self, PIN, PUK};

/// The firmware version reported by GET VERSION: 5.7.1. ≥ 5.3 metadata, ≥ 5.4 AES management keys,
/// ≥ 5.4.3 VERIFY log-out, ≥ 5.7 MOVE KEY — all implemented.
pub const VERSION: [u8; 3] = [5, 7, 1];

pub fn version(reply: &mut Reply) -> Result<(), CardError> {
    reply.push(&VERSION)
}

pub fn serial(ctx: &mut Context<'_>, reply: &mut Reply) -> Result<(), CardError> {
    let serial = state::serial(ctx);
    reply.push(&serial.to_be_bytes())
}

/// RESET: only when PIN and PUK are both blocked. Back to factory defaults (PIN 123456, PUK 12345678,
/// 3/3 tries, the default 3DES management key), all user keys and data objects gone, a new CHUID GUID.
/// The serial number and the attestation key and certificate stay.
pub fn reset(ctx: &mut Context<'_>) -> Result<(), CardError> {
    if !(PIN.is_blocked(ctx)? && PUK.is_blocked(ctx)?) {
        return Err(CardError::ConditionsNotSatisfied);
    }
    ctx.store().begin_transaction()?;
    for slot in KeySlot::user_slots() {
        keys::delete(ctx, slot)?;
    }
    objects::delete_all_except(ctx, &[ObjectId::ATTESTATION_CERT])?;
    personalize(ctx, &InstallParams::default())?;
    ctx.store().commit_transaction()?;
    for id in [
        state::TR_MGMT_AUTHENTICATED,
        state::TR_CHALLENGE,
        state::TR_PIN_FRESH,
        state::TR_PIN_VERIFIED,
        state::TR_PUK_VERIFIED,
    ] {
        ctx.transient().clear(id);
    }
    Ok(())
}

/// SET PIN RETRIES: needs the management key and a verified PIN; PIN and PUK go back to the defaults.
pub fn set_pin_retries(
    ctx: &mut Context<'_>,
    pin_tries: u8,
    puk_tries: u8,
) -> Result<(), CardError> {
    state::require_mgmt(ctx)?;
    state::require_pin(ctx)?;
    ctx.store().begin_transaction()?;
    pin::create(
        ctx,
        PinReference::Pin,
        pin_tries,
        &PaddedPin::pad(DEFAULT_PIN.as_bytes()),
    )?;
    pin::create(
        ctx,
        PinReference::Puk,
        puk_tries,
        &PaddedPin::pad(DEFAULT_PUK.as_bytes()),
    )?;
    ctx.store().commit_transaction()?;
    ctx.transient().clear(state::TR_PIN_FRESH);
    Ok(())
}

pub fn metadata(
    ctx: &mut Context<'_>,
    target: MetadataTarget,
    reply: &mut Reply,
) -> Result<(), CardError> {
    match target {
        MetadataTarget::Pin(reference) => pin::metadata(ctx, reference, reply),
        MetadataTarget::Management => mgmt::metadata(ctx, reply),
        MetadataTarget::Slot(slot) => keys::metadata(ctx, slot, reply),
    }
}

pub fn attest_slot(
    ctx: &mut Context<'_>,
    slot: KeySlot,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let der = attest::attest(ctx, slot, VERSION)?;
    reply.push(&der)
}
