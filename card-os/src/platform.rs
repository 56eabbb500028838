//! The platform under the applets: the durable card image, transient memory and crypto, which the card
//! owns and each applet reaches through its `Context`.

use crate::crypto::Crypto;
use crate::error::CardError;
use crate::store::{CardImage, ImageFile};
use crate::transient::TransientMemory;

/// The durable part of the card plus the services applets reach through their `Context`.
pub(crate) struct Platform {
    pub(crate) image: CardImage,
    pub(crate) transient: TransientMemory,
    pub(crate) crypto: Crypto,
    pub(crate) file: Option<ImageFile>,
}

impl Platform {
    /// Writes the image to its file (if any). Clears the dirty marks.
    pub(crate) fn persist(&mut self) -> Result<(), CardError> {
        self.image.rng = self.crypto.rng_state();
        if let Some(file) = &self.file {
            file.save(&self.image.encode())
                .map_err(|e| CardError::SaveFailed(e.to_string()))?;
        }
        self.image.eeprom.mark_clean();
        self.crypto.take_drew_random();
        Ok(())
    }

    /// Whether the last command changed anything the image must keep (records, or the seeded RNG's
    /// position).
    pub(crate) fn needs_persist(&mut self) -> bool {
        let drew = self.crypto.take_drew_random() && self.crypto.rng_state().is_some();
        self.image.eeprom.is_dirty() || drew
    }
}
