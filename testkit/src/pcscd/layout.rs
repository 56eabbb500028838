//! Which slot lives where: reader names, vpcd ports, reader-config entries and pcscd instances.
//!
//! Two limits shape it, both measured on Debian 12 (pcsc-lite 1.9.9, vsmartcard-vpcd 3.3):
//! - **vpcd offers [`SLOTS_PER_ENTRY`] slots per reader-config entry** (`VPCDSLOTS`, a build option of
//!   vsmartcard, 2 in Debian's build; the driver exports it as `vicc_max_slots`). Entry *e* listens on its
//!   port and the next. The driver keeps its connections in one global table per loaded library, and
//!   pcscd loads a LIBPATH once, so every entry after the first in one daemon loads a *copy* of
//!   `libifdvpcd.so` (a different file is a separate `dlopen`, with globals of its own).
//! - **One pcscd holds [`READERS_PER_PCSCD`] readers** (`PCSCLITE_MAX_READERS_CONTEXTS`, 16, compiled in;
//!   each slot is a reader). A 17th reader is dropped silently: pcscd reads the entry and never starts it.
//!   More slots therefore need more daemons, each owning its own socket (see `super`).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Slots per vpcd reader-config entry (Debian's vpcd build).
pub const SLOTS_PER_ENTRY: usize = 2;
/// Readers one pcscd serves (`PCSCLITE_MAX_READERS_CONTEXTS` in pcsc-lite 1.9.9).
pub const READERS_PER_PCSCD: usize = 16;
/// Slot `i` listens on `FIRST_PORT + i`. Not Debian's 35963/35964, so a `tessera serve` left running by
/// hand cannot plug itself into a test's slot.
pub const FIRST_PORT: u16 = 35973;
/// The most slots a test may ask for (four daemons).
pub const MAX_SLOTS: usize = 4 * READERS_PER_PCSCD;

/// The vpcd driver Debian installs.
pub const VPCD_DRIVER: &str = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so";

/// The reader-config entry of `slot`, counted across all daemons.
fn entry_of(slot: usize) -> usize {
    slot / SLOTS_PER_ENTRY
}

/// The daemon that serves `slot`.
pub fn instance_of(slot: usize) -> usize {
    slot / READERS_PER_PCSCD
}

/// Daemons needed for `slots` slots.
pub fn instances_for(slots: usize) -> usize {
    slots.div_ceil(READERS_PER_PCSCD).max(1)
}

/// pcscd names a reader "FRIENDLYNAME XX YY" (XX: the entry's index among readers of the same name,
/// YY: the slot) and does not number two entries that share a FRIENDLYNAME, so every entry has a name of
/// its own. Entries 0 and 1 keep the names the four-slot guard always had: "Virtual PCD" (Debian's own
/// reader names) and "Virtual PCD B".
fn friendly_name(entry: usize) -> String {
    match entry {
        0 => "Virtual PCD".to_owned(),
        1..=25 => {
            // entry <= 25, so the letter stays within B..=Z.
            let letter = char::from(b'A' + entry as u8);
            format!("Virtual PCD {letter}")
        }
        _ => format!("Virtual PCD Z{entry}"),
    }
}

/// The PC/SC reader name of `slot` (`slot < MAX_SLOTS`), from a table built once, so names outlive any
/// guard: a test may hold one across [`super::Pcscd::restart`].
pub fn reader_name(slot: usize) -> &'static str {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (0..MAX_SLOTS)
            .map(|slot| {
                format!(
                    "{} 00 {:02X}",
                    friendly_name(entry_of(slot)),
                    slot % SLOTS_PER_ENTRY
                )
            })
            .collect()
    });
    &names[slot]
}

/// Where a card for `slot` connects.
pub fn vpcd_addr(slot: usize) -> SocketAddr {
    // MAX_SLOTS (64) keeps the port within u16.
    let port = FIRST_PORT + u16::try_from(slot).unwrap_or(u16::MAX - FIRST_PORT);
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

/// The reader configuration of daemon `instance` for the first `slots` slots: the text of its
/// `reader.conf.d/vpcd` file and the driver copies it needs (copy path, to be copied from
/// [`VPCD_DRIVER`]). `dir` is where the copies go.
pub fn reader_config(instance: usize, slots: usize, dir: &Path) -> (String, Vec<PathBuf>) {
    let first = instance * READERS_PER_PCSCD;
    let last = slots.min(first + READERS_PER_PCSCD);
    let mut text = String::new();
    let mut copies = Vec::new();
    for (index, entry) in (entry_of(first)..entry_of(last - 1) + 1).enumerate() {
        let driver = if index == 0 {
            PathBuf::from(VPCD_DRIVER)
        } else {
            let copy = dir.join(format!("libifdvpcd-{entry}.so"));
            copies.push(copy.clone());
            copy
        };
        let port = vpcd_addr(entry * SLOTS_PER_ENTRY).port();
        text.push_str(&format!(
            "FRIENDLYNAME \"{}\"\nDEVICENAME /dev/null:{port}\nLIBPATH {}\nCHANNELID {port}\n\n",
            friendly_name(entry),
            driver.display()
        ));
    }
    (text, copies)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_four_slots_keep_their_names_and_ports() {
        let names: Vec<&str> = (0..4).map(reader_name).collect();
        assert_eq!(
            names,
            [
                "Virtual PCD 00 00",
                "Virtual PCD 00 01",
                "Virtual PCD B 00 00",
                "Virtual PCD B 00 01"
            ]
        );
        assert_eq!(vpcd_addr(0).port(), 35973);
        assert_eq!(vpcd_addr(3).port(), 35976);
    }

    #[test]
    fn every_slot_has_a_name_and_port_of_its_own() {
        let names: std::collections::HashSet<&str> = (0..MAX_SLOTS).map(reader_name).collect();
        let ports: std::collections::HashSet<u16> =
            (0..MAX_SLOTS).map(|s| vpcd_addr(s).port()).collect();
        assert_eq!(names.len(), MAX_SLOTS);
        assert_eq!(ports.len(), MAX_SLOTS);
    }

    #[test]
    fn slots_spread_over_daemons_of_sixteen_readers() {
        assert_eq!(instances_for(1), 1);
        assert_eq!(instances_for(16), 1);
        assert_eq!(instances_for(17), 2);
        assert_eq!(instances_for(32), 2);
        let dir = Path::new("/x");
        let (first, copies) = reader_config(0, 32, dir);
        assert_eq!(first.matches("FRIENDLYNAME").count(), 8);
        assert_eq!(copies.len(), 7, "all but the first entry load a copy");
        let (second, _) = reader_config(1, 20, dir);
        assert_eq!(second.matches("FRIENDLYNAME").count(), 2);
        assert!(second.contains("DEVICENAME /dev/null:35989\n"), "{second}");
        assert!(
            second.contains(&format!("LIBPATH {VPCD_DRIVER}\n")),
            "{second}"
        );
    }
}
