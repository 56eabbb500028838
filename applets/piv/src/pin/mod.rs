//! PIN (`80`) and PUK (`81`): VERIFY, CHANGE REFERENCE, RESET RETRY COUNTER.
//!
//! Both live in card-os [`OwnerPin`](card_os::OwnerPin) records holding the 8-byte `FF`-padded form, so a
//! VERIFY compares the whole field in constant time after the try was spent and made durable.

use card_os::apdu::StatusWord;
use card_os::{CardError, Context, PinCheck, PinPolicy as OsPinPolicy, Reply};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::commands::VerifyAction;
use crate::params::{DEFAULT_PIN, DEFAULT_PUK};
use crate::state::{self, DefaultFlag, PIN, PUK, TR_PIN_FRESH};

/// A PIN key reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinReference {
    /// `80`: the PIV application PIN.
    Pin,
    /// `81`: the PIN unblocking key.
    Puk,
}

impl PinReference {
    /// `6A 88` for the global PIN (`00`), which this card does not have; `6A 86` for anything else.
    pub fn from_p2(p2: u8) -> Result<Self, CardError> {
        match p2 {
            0x80 => Ok(PinReference::Pin),
            0x81 => Ok(PinReference::Puk),
            0x00 => Err(CardError::ReferenceNotFound),
            _ => Err(CardError::IncorrectP1P2),
        }
    }

    pub fn owner_pin(self) -> card_os::OwnerPin {
        match self {
            PinReference::Pin => PIN,
            PinReference::Puk => PUK,
        }
    }

    fn default_flag(self) -> DefaultFlag {
        match self {
            PinReference::Pin => DefaultFlag::Pin,
            PinReference::Puk => DefaultFlag::Puk,
        }
    }

    fn factory_value(self) -> PaddedPin {
        match self {
            PinReference::Pin => PaddedPin::pad(DEFAULT_PIN),
            PinReference::Puk => PaddedPin::pad(DEFAULT_PUK),
        }
    }
}

/// An 8-byte PIN field, as sent: the value padded with `FF`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PaddedPin([u8; 8]);

impl std::fmt::Debug for PaddedPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PaddedPin(<secret>)")
    }
}

impl PaddedPin {
    /// The field of a VERIFY: exactly 8 bytes, else `6A 80` (as a YubiKey answers).
    pub fn from_field(bytes: &[u8]) -> Result<Self, CardError> {
        let field: [u8; 8] = bytes.try_into().map_err(|_| CardError::InvalidData)?;
        Ok(Self(field))
    }

    /// Pads a value of up to 8 bytes (longer values are cut; callers validate first).
    pub fn pad(value: &[u8]) -> Self {
        let mut field = [0xFF; 8];
        for (dst, src) in field.iter_mut().zip(value) {
            *dst = *src;
        }
        Self(field)
    }

    /// Whether this is a value a PIN or PUK may be set to: 6 to 8 non-`FF` bytes, then only `FF`.
    pub fn is_well_formed(&self) -> bool {
        let len = self.0.iter().position(|b| *b == 0xFF).unwrap_or(8);
        len >= 6 && self.0[len..].iter().all(|b| *b == 0xFF)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The OwnerPin limits for a try count (the stored value is always the 8-byte field).
pub fn os_policy(tries: u8) -> OsPinPolicy {
    OsPinPolicy {
        try_limit: tries,
        min_len: 8,
        max_len: 8,
    }
}

/// Creates (or re-creates) a PIN or PUK with a full counter and records whether it is the factory value.
pub fn create(
    ctx: &mut Context<'_>,
    reference: PinReference,
    tries: u8,
    value: &PaddedPin,
) -> Result<(), CardError> {
    reference
        .owner_pin()
        .create(ctx, os_policy(tries), value.as_bytes())?;
    let is_factory = card_os::ct_eq(value.as_bytes(), reference.factory_value().as_bytes());
    state::set_default(ctx, reference.default_flag(), is_factory)
}

fn check_result(result: PinCheck) -> Result<(), CardError> {
    match result {
        PinCheck::Verified => Ok(()),
        PinCheck::Wrong { tries_left } => {
            Err(CardError::Status(StatusWord::remaining_retries(tries_left)))
        }
        PinCheck::Blocked => Err(CardError::AuthenticationBlocked),
    }
}

/// VERIFY.
pub fn verify(
    ctx: &mut Context<'_>,
    reference: PinReference,
    action: VerifyAction,
) -> Result<(), CardError> {
    let pin = reference.owner_pin();
    match action {
        VerifyAction::Status => {
            // A status query never spends a try.
            let tries = pin.tries_left(ctx)?;
            if tries == 0 {
                Err(CardError::AuthenticationBlocked)
            } else if pin.is_validated(ctx) {
                Ok(())
            } else {
                Err(CardError::Status(StatusWord::remaining_retries(tries)))
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
    let pin = reference.owner_pin();
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
    let is_factory = card_os::ct_eq(value.as_bytes(), reference.factory_value().as_bytes());
    ctx.store().begin_transaction()?;
    reference.owner_pin().update(ctx, value.as_bytes())?;
    state::set_default(ctx, reference.default_flag(), is_factory)?;
    ctx.store().commit_transaction()?;
    Ok(())
}

/// GET METADATA for `80` / `81`: `01 01 FF`, `05 01 is-default`, `06 02 total remaining`.
pub fn metadata(
    ctx: &mut Context<'_>,
    reference: PinReference,
    reply: &mut Reply,
) -> Result<(), CardError> {
    let pin = reference.owner_pin();
    let total = pin.policy(ctx)?.try_limit;
    let left = pin.tries_left(ctx)?;
    let is_default = u8::from(state::is_default(ctx, reference.default_flag()));
    reply.push(&[
        0x01, 0x01, 0xFF, 0x05, 0x01, is_default, 0x06, 0x02, total, left,
    ])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn padding_rules() {
        assert!(PaddedPin::pad(b"123456").is_well_formed());
        assert!(PaddedPin::pad(b"12345678").is_well_formed());
        assert!(!PaddedPin::pad(b"12345").is_well_formed());
        assert!(
            !PaddedPin::from_field(&[0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0xFF, 0x37])
                .unwrap()
                .is_well_formed()
        );
        assert!(PaddedPin::from_field(b"1234567").is_err());
        assert_eq!(
            format!("{:?}", PaddedPin::pad(b"123456")),
            "PaddedPin(<secret>)"
        );
        assert!(matches!(
            PinReference::from_p2(0x00),
            Err(CardError::ReferenceNotFound)
        ));
        assert!(matches!(
            PinReference::from_p2(0x82),
            Err(CardError::IncorrectP1P2)
        ));
    }
}
