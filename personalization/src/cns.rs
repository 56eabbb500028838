//! Personalizing a CNS card through APDUs, as the bureau's line does: authenticate with the
//! personalization key, have the card generate its RSA key, certify the public key with the staging
//! CA, write the certificate and the holder's `EF_DatiPersonali`. PIN and PUK are the card's from
//! its making (installation parameters), as on a physical line where the chip arrives with them.

use std::time::SystemTime;

use card_transport::Transport;
use cns_host::{path, CnsError, CnsSession, PersonalData};
use thiserror::Error;

use crate::ca::{CaError, Holder, StagingCa};

/// The modulus size the bureau generates: what OpenSC's itacns driver offers for a CNS 1.1.
pub const KEY_BITS: u16 = 2048;

#[derive(Debug, Error)]
pub enum CnsPersonalizationError {
    #[error("the card refused a personalization step: {0}")]
    Card(#[from] CnsError),
    #[error("the staging CA cannot certify the card's key: {0}")]
    Ca(#[from] CaError),
}

/// What a CNS card is personalized with.
#[derive(Debug, Clone)]
pub struct CnsHolder<'a> {
    pub holder: &'a Holder,
    /// The ISTAT code of the issuing entity (EF_DatiPersonali's issuer code).
    pub issuer_code: &'a str,
    pub certificate_serial: [u8; 16],
    pub not_before: SystemTime,
}

/// What personalization wrote.
#[derive(Debug, Clone)]
pub struct PersonalizedCns {
    pub certificate_der: Vec<u8>,
    pub modulus: Vec<u8>,
}

/// Personalizes the CNS card behind `transport`.
pub fn personalize(
    transport: &mut dyn Transport,
    personalization_key: &[u8; 16],
    ca: &StagingCa,
    who: &CnsHolder<'_>,
) -> Result<PersonalizedCns, CnsPersonalizationError> {
    let mut card = CnsSession::new(transport);
    card.authenticate(personalization_key)?;
    let public = card.generate_key(KEY_BITS)?;
    let certificate_der = ca.issue_user_spki(
        who.holder,
        &public.spki_der()?,
        who.certificate_serial,
        who.not_before,
    )?;
    card.write_file(path::CERTIFICATE, &certificate_der)?;
    let (issued, expires) = validity_dates(who.not_before);
    let data = PersonalData {
        issuer_code: who.issuer_code.to_string(),
        issuing_date: issued,
        expiry_date: expires,
        surname: who.holder.surname.trim().to_uppercase(),
        given_name: who.holder.given_name.trim().to_uppercase(),
        birth_date: String::new(),
        sex: String::new(),
        codice_fiscale: who.holder.codice_fiscale.trim().to_uppercase(),
    };
    card.write_file(path::DATI_PERSONALI, &data.encode()?)?;
    Ok(PersonalizedCns {
        certificate_der,
        modulus: public.modulus,
    })
}

/// Issue and expiry dates (`ddmmyyyy`) of a card certified at `not_before`: the certificate's
/// six years.
fn validity_dates(not_before: SystemTime) -> (String, String) {
    let end = crate::ca::calendar::not_after(not_before, crate::ca::VALIDITY_YEARS);
    let date = |instant| {
        let (y, m, d) = crate::ca::calendar::civil_date(instant);
        format!("{d:02}{m:02}{y:04}")
    };
    (date(not_before), date(end))
}
