//! Personalization: PIN, PUK, management key and a fresh CHUID / CCC from [`InstallParams`] — at
//! installation and again at RESET (with the defaults).

use card_os::{CardError, Context};
use piv_types::{PinReference, TouchPolicy};

use crate::commands::PaddedPin;
use crate::params::InstallParams;
use crate::{mgmt, objects, pin};

/// Writes PIN, PUK, management key and a fresh CHUID / CCC.
pub fn personalize(ctx: &mut Context<'_>, params: &InstallParams) -> Result<(), CardError> {
    pin::create(
        ctx,
        PinReference::Pin,
        params.pin_retries,
        &PaddedPin::pad(params.pin.expose()),
    )?;
    pin::create(
        ctx,
        PinReference::Puk,
        params.puk_retries,
        &PaddedPin::pad(params.puk.expose()),
    )?;
    mgmt::store(
        ctx,
        params.management_algorithm,
        params.management_key.expose(),
        TouchPolicy::Never,
    )?;
    objects::write_identity(ctx)
}
