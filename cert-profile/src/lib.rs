//! A profile for x509-cert's certificate builder that sets exactly the subject, issuer and extensions
//! it is given, and nothing of its own: for certificates whose every field the caller decides — the
//! staging CA's (`personalization::ca`) and the PIV card's attestation certificates
//! (`piv_applet`'s `yubico::attest`).

use x509_cert::builder::profile::BuilderProfile;
use x509_cert::certificate::TbsCertificate;
use x509_cert::ext::Extension;
use x509_cert::name::Name;

/// Subject, issuer and extensions, exactly as given.
#[derive(Debug, Clone)]
pub struct FixedProfile {
    pub subject: Name,
    pub issuer: Name,
    pub extensions: Vec<Extension>,
}

impl BuilderProfile for FixedProfile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        _spk: spki::SubjectPublicKeyInfoRef<'_>,
        _issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        _tbs: &TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<Extension>> {
        Ok(self.extensions.clone())
    }
}
