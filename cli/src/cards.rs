//! The applets this build of tessera carries, and opening/creating card images with them.

use std::path::Path;

use anyhow::Context as _;
use card_os::{AppletRegistry, Card, Durability};

pub fn registry() -> AppletRegistry {
    AppletRegistry::new().register(demo_applet::aid(), demo_applet::factory)
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
