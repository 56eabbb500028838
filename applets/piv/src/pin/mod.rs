//! PIN (`80`) and PUK (`81`): VERIFY, CHANGE REFERENCE, RESET RETRY COUNTER.
//!
//! Both live in card-os [`OwnerPin`](card_os::OwnerPin) records holding the 8-byte `FF`-padded form, so a
//! VERIFY compares the whole field in constant time after the try was spent and made durable.

use card_os::apdu::tlv;
use card_os::{CardError, Context, OwnerPin, PinCheck, PinPolicy as OsPinPolicy, Reply};
use piv_types::{tag, PinReference, DEFAULT_PIN, DEFAULT_PUK, PIN_FIELD_LEN};

use crate::commands::{PaddedPin, VerifyAction};
use crate::state::{self, DefaultFlag, PIN, PUK, TR_PIN_FRESH};

/// The card-os PIN object that holds a reference.
pub fn owner_pin(reference: PinReference) -> OwnerPin {
    match reference {
        PinReference::Pin => PIN,
        PinReference::Puk => PUK,
    }
}

fn default_flag(reference: PinReference) -> DefaultFlag {
    match reference {
        PinReference::Pin => DefaultFlag::Pin,
        PinReference::Puk => DefaultFlag::Puk,
    }
}

fn factory_value(reference: PinReference) -> PaddedPin {
    match reference {
        PinReference::Pin => PaddedPin::pad(DEFAULT_PIN.as_bytes()),
        PinReference::Puk => PaddedPin::pad(DEFAULT_PUK.as_bytes()),
    }
}

/// The OwnerPin limits for a try count (the stored value is always the 8-byte field).
pub fn os_policy(tries: u8) -> OsPinPolicy {
    OsPinPolicy {
        try_limit: tries,
        min_len: PIN_FIELD_LEN as u8,
        max_len: PIN_FIELD_LEN as u8,
    }
}

/// Creates (or re-creates) a PIN or PUK with a full counter and records whether it is the factory value.
pub fn create(
    ctx: &mut Context<'_>,
    reference: PinReference,
    tries: u8,
    value: &PaddedPin,
) -> Result<(), CardError> {
    owner_pin(reference).create(ctx, os_policy(tries), value.as_bytes())?;
    let is_factory = card_os::ct_eq(value.as_bytes(), factory_value(reference).as_bytes());
    state::set_default(ctx, default_flag(reference), is_factory)
}

fn check_result(result: PinCheck) -> Result<(), CardError> {
    match result {
        PinCheck::Verified => Ok(()),
        PinCheck::Wrong { tries_left } => Err(CardError::WrongPin { tries_left }),
        PinCheck::Blocked => Err(CardError::AuthenticationBlocked),
    }
}

/// VERIFY.
pub fn verify(
    ctx: &mut Context<'_>,
    reference: PinReference,
    action: VerifyAction,
) -> Result<(), CardError> {
    let pin = owner_pin(reference);
    match action {
        VerifyAction::Status => {
            // A status query never spends a try.
            let tries = pin.tries_left(ctx)?;
            if tries == 0 {
                Err(CardError::AuthenticationBlocked)
            } else if pin.is_validated(ctx) {
                Ok(())
            } else {
                Err(CardError::NotVerified { tries_left: tries })
            }
        }
        VerifyAction::LogOut => {
            pin.log_out(ctx);
            if reference == PinReference::Pin {
                ctx.transient().clear(TR_PIN_FRESH);
            }
            Ok(())
        }
        VerifyAction::Check(value) => {
            if reference == PinReference::Pin {
                ctx.transient().clear(TR_PIN_FRESH);
            }
            check_result(pin.check(ctx, value.as_bytes())?)?;
            if reference == PinReference::Pin {
                ctx.transient()
                    .set(TR_PIN_FRESH, &[1], card_os::Lifetime::ClearOnReset);
            }
            Ok(())
        }
    }
}

/// CHANGE REFERENCE DATA: the old value spends a try and is compared first, as on a YubiKey (ykman
/// blocks a PUK by sending all-`FF` values and expects `63 Cx`); only then must the new value be well
/// formed (`6A 80`, the counter already restored by the successful check).
pub fn change(
    ctx: &mut Context<'_>,
    reference: PinReference,
    old: &PaddedPin,
    new: &PaddedPin,
) -> Result<(), CardError> {
    let pin = owner_pin(reference);
    check_result(pin.check(ctx, old.as_bytes())?)?;
    if !new.is_well_formed() {
        return Err(CardError::InvalidData);
    }
    set_value(ctx, reference, new)
}

/// RESET RETRY COUNTER: the PUK spends a PUK try and is compared first (see [`change`]); on success
/// the PIN gets the new value, which must be well formed, and full tries.
pub fn unblock(
    ctx: &mut Context<'_>,
    puk: &PaddedPin,
    new_pin: &PaddedPin,
) -> Result<(), CardError> {
    check_result(PUK.check(ctx, puk.as_bytes())?)?;
    if !new_pin.is_well_formed() {
        return Err(CardError::InvalidData);
    }
    set_value(ctx, PinReference::Pin, new_pin)
}

fn set_value(
    ctx: &mut Context<'_>,
    reference: PinReference,
    value: &PaddedPin,
) -> Result<(), CardError> {
    let is_factory = card_os::ct_eq(value.as_bytes(), factory_value(reference).as_bytes());
    ctx.store().begin_transaction()?;
    owner_pin(reference).update(ctx, value.as_bytes())?;
    state::set_default(ctx, default_flag(reference), is_factory)?;
    ctx.store().commit_transaction()?;
    Ok(())
}

/// GET METADATA for `80` / `81`: `01 01 FF`, `05 01 is-default`, `06 02 total remaining`.
pub fn metadata(
    ctx: &mut Context<'_>,
    reference: PinReference,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let pin = owner_pin(reference);
    let total = pin.policy(ctx)?.try_limit;
    let left = pin.tries_left(ctx)?;
    let is_default = u8::from(state::is_default(ctx, default_flag(reference)));
    let mut out = Vec::new();
    tlv::write(&mut out, tag::META_ALGORITHM, &[tag::META_PIN_ALGORITHM]);
    tlv::write(&mut out, tag::META_IS_DEFAULT, &[is_default]);
    tlv::write(&mut out, tag::META_RETRIES, &[total, left]);
    reply.push(&out)
}
