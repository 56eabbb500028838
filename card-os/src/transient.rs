//! Transient memory: RAM records that vanish on reset / power-off, or on deselect where the applet asks.

use std::collections::BTreeMap;

use zeroize::Zeroizing;

use crate::store::Owner;

/// When a transient record is cleared (besides reset and power-off, which clear everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    ClearOnReset,
    ClearOnDeselect,
}

/// A transient value (zeroized when dropped) and when it is cleared.
type Entry = (Zeroizing<Vec<u8>>, Lifetime);

#[derive(Default)]
pub struct TransientMemory {
    records: BTreeMap<(Owner, u16), Entry>,
}

impl TransientMemory {
    pub fn get(&self, owner: Owner, id: u16) -> Option<&[u8]> {
        self.records
            .get(&(owner, id))
            .map(|(value, _)| value.as_slice())
    }

    pub fn set(&mut self, owner: Owner, id: u16, value: &[u8], lifetime: Lifetime) {
        self.records
            .insert((owner, id), (Zeroizing::new(value.to_vec()), lifetime));
    }

    pub fn clear(&mut self, owner: Owner, id: u16) {
        self.records.remove(&(owner, id));
    }

    /// Reset or power-off. Values are zeroized as they drop.
    pub fn clear_all(&mut self) {
        self.records.clear();
    }

    /// The applet was deselected.
    pub fn clear_on_deselect(&mut self, owner: Owner) {
        self.records
            .retain(|(o, _), (_, lifetime)| *o != owner || *lifetime != Lifetime::ClearOnDeselect);
    }
}
