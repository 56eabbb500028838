//! The applets this build of tessera carries, and opening/creating card images with them.

use std::path::Path;

use anyhow::Context as _;
use card_os::{AppletRegistry, Card, Durability};

pub fn registry() -> AppletRegistry {
    AppletRegistry::new()
        .register(piv_applet::aid(), piv_applet::factory)
        .register(yubikey_mgmt_applet::aid(), yubikey_mgmt_applet::factory)
        .register(demo_applet::aid(), demo_applet::factory)
        .register(cns_applet::aid(), cns_applet::factory)
}

/// The applet of a new CNS card: the CNS file system alone, selected at power-up (a CNS has no
/// application to select).
pub fn cns_installations(cns: &cns_applet::InstallParams) -> Vec<card_os::Installation> {
    vec![card_os::Installation {
        aid: cns_applet::aid(),
        params: cns.to_bytes(),
        default_selected: true,
    }]
}

/// The applets of a new card: PIV (selected at power-up, as on a PIV token), the YubiKey management
/// applet (what `ykman info` reads; it reports the PIV serial when the card is made with one) and the
/// demo applet.
pub fn installations(piv: &piv_applet::InstallParams) -> Vec<card_os::Installation> {
    vec![
        card_os::Installation {
            aid: piv_applet::aid(),
            params: piv.to_bytes(),
            default_selected: true,
        },
        card_os::Installation {
            aid: yubikey_mgmt_applet::aid(),
            params: yubikey_mgmt_applet::install_params((piv.serial != 0).then_some(piv.serial)),
            default_selected: false,
        },
        card_os::Installation {
            aid: demo_applet::aid(),
            params: Vec::new(),
            default_selected: false,
        },
    ]
}

/// Opens a card image, explaining what went wrong in the error.
pub fn open(path: &Path, durability: Durability) -> anyhow::Result<Card> {
    if !path.exists() {
        anyhow::bail!(
            "card image {} does not exist (create one with `tessera card new --out {}`)",
            path.display(),
            path.display()
        );
    }
    Card::open(path, &registry(), durability)
        .with_context(|| format!("cannot open card {}", path.display()))
}
