//! Shared helpers for card-os's transcript tests: a demo card and hex transcripts.
#![allow(dead_code)]

use card_os::{AppletRegistry, Card, CardConfig, Clock, Installation, Storage};

pub fn registry() -> AppletRegistry {
    AppletRegistry::new().register(demo_applet::aid(), demo_applet::factory)
}

pub fn config(capacity: usize) -> CardConfig {
    CardConfig {
        capacity,
        clock: Clock::Fixed(1_700_000_000),
        seed: Some(42),
        ..CardConfig::default()
    }
}

pub fn installation(default_selected: bool) -> Installation {
    Installation {
        aid: demo_applet::aid(),
        params: Vec::new(),
        default_selected,
    }
}

/// A deterministic in-memory demo card, the demo applet not selected by default.
pub fn demo_card() -> Card {
    demo_card_with(config(16 * 1024), false)
}

pub fn demo_card_with(config: CardConfig, default_selected: bool) -> Card {
    Card::create(
        config,
        &registry(),
        &[installation(default_selected)],
        Storage::Memory,
    )
    .expect("demo card")
}

pub fn h(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).expect("hex")
}

/// Sends a hex APDU, returns the hex response (upper case, no spaces).
pub fn tx(card: &mut Card, apdu: &str) -> String {
    hex::encode_upper(card.transmit(&h(apdu)).expect("card answered"))
}

/// The status word of a hex response.
pub fn sw(response: &str) -> &str {
    &response[response.len() - 4..]
}

pub const SELECT_DEMO: &str = "00 A4 04 00 09 F0 74 65 73 73 65 72 61 01 00";
