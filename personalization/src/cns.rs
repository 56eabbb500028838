//! Personalizing a CNS card through APDUs, as the bureau's line does: authenticate with the chip's
//! transport (factory) personalization key, write the card number, have the card generate its RSA
//! key, certify the public key with the staging CA, write the certificate and the holder's
//! `EF_DatiPersonali`, replace the factory PIN and PUK with the holder's, and replace the
//! personalization key with the card's own (proved by authenticating with it before the card
//! leaves the line).

use std::time::SystemTime;

use card_transport::Transport;
use cns_host::{path, CnsError, CnsSession, PersonalData, PinOutcome, Secret};
use thiserror::Error;

use crate::ca::{CaError, Holder, StagingCa};

/// The modulus size the bureau generates: what OpenSC's itacns driver offers for a CNS 1.1.
pub const KEY_BITS: u16 = 2048;
/// EF_IDCarta's length: OpenSC reads exactly 16 bytes as the token serial.
pub const CARD_ID_LEN: usize = 16;

#[derive(Debug, Error)]
pub enum CnsPersonalizationError {
    #[error("the card refused a personalization step: {0}")]
    Card(#[from] CnsError),
    #[error("the staging CA cannot certify the card's key: {0}")]
    Ca(#[from] CaError),
    #[error("the card did not take its new {what} ({outcome:?}): it must not leave the line")]
    SecretNotChanged {
        what: &'static str,
        outcome: PinOutcome,
    },
    #[error("card number {0:?} does not fit EF_IDCarta (16 letters or digits)")]
    CardNumber(String),
}

/// What a CNS card is personalized with.
#[derive(Debug, Clone)]
pub struct CnsOrder<'a> {
    pub holder: &'a Holder,
    /// The ISTAT code of the issuing entity (EF_DatiPersonali's issuer code).
    pub issuer_code: &'a str,
    pub card_number: &'a str,
    pub certificate_serial: [u8; 16],
    pub not_before: SystemTime,
    /// The holder's PIN and PUK; the chip arrives with the factory ones.
    pub pin: &'a str,
    pub puk: &'a str,
    /// The chip's factory personalization key, and the card's own that replaces it.
    pub factory_key: &'a [u8; 16],
    pub card_key: &'a [u8; 16],
}

/// What personalization wrote.
#[derive(Debug, Clone)]
pub struct PersonalizedCns {
    pub certificate_der: Vec<u8>,
    /// EF_IDCarta: the card number, zero-padded to 16 characters.
    pub card_id: [u8; CARD_ID_LEN],
    pub not_after: SystemTime,
}

/// The card number as EF_IDCarta holds it: letters and digits, zero-padded on the left to 16.
pub fn card_id(card_number: &str) -> Result<[u8; CARD_ID_LEN], CnsPersonalizationError> {
    let compact: String = card_number
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    if compact.is_empty() || compact.len() > CARD_ID_LEN {
        return Err(CnsPersonalizationError::CardNumber(card_number.to_string()));
    }
    let mut id = [b'0'; CARD_ID_LEN];
    id[CARD_ID_LEN - compact.len()..].copy_from_slice(compact.as_bytes());
    Ok(id)
}

/// Personalizes the CNS card behind `transport`.
pub fn personalize(
    transport: &mut dyn Transport,
    ca: &StagingCa,
    order: &CnsOrder<'_>,
) -> Result<PersonalizedCns, CnsPersonalizationError> {
    let id = card_id(order.card_number)?;
    let mut card = CnsSession::new(transport);
    card.authenticate(order.factory_key)?;
    card.write_file(path::ID_CARTA, &id)?;
    let public = card.generate_key(KEY_BITS)?;
    let certificate_der = ca.issue_user_spki(
        order.holder,
        &public.spki_der()?,
        order.certificate_serial,
        order.not_before,
    )?;
    card.write_file(path::CERTIFICATE, &certificate_der)?;
    let not_after = crate::ca::not_after(order.not_before, crate::ca::VALIDITY_YEARS);
    let date = |instant| {
        let (y, m, d) = crate::ca::calendar::civil_date(instant);
        format!("{d:02}{m:02}{y:04}")
    };
    let data = PersonalData {
        issuer_code: order.issuer_code.to_string(),
        issuing_date: date(order.not_before),
        expiry_date: date(not_after),
        surname: order.holder.surname.trim().to_uppercase(),
        given_name: order.holder.given_name.trim().to_uppercase(),
        birth_date: String::new(),
        sex: String::new(),
        codice_fiscale: order.holder.codice_fiscale.trim().to_uppercase(),
    };
    card.write_file(path::DATI_PERSONALI, &data.encode()?)?;
    for (which, what, factory, new) in [
        (
            Secret::Pin,
            "PIN",
            String::from_utf8_lossy(cns_applet::DEFAULT_PIN),
            order.pin,
        ),
        (
            Secret::Puk,
            "PUK",
            String::from_utf8_lossy(cns_applet::DEFAULT_PUK),
            order.puk,
        ),
    ] {
        match card.change(which, &factory, new)? {
            PinOutcome::Verified => {}
            outcome => return Err(CnsPersonalizationError::SecretNotChanged { what, outcome }),
        }
    }
    card.change_personalization_key(order.card_key)?;
    card.authenticate(order.card_key)?;
    Ok(PersonalizedCns {
        certificate_der,
        card_id: id,
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_become_sixteen_characters() {
        assert_eq!(&card_id("058091000001").unwrap(), b"0000058091000001");
        assert_eq!(&card_id("058-091").unwrap(), b"0000000000058091");
        assert!(card_id("").is_err());
        assert!(card_id("12345678901234567").is_err());
    }
}
