//! Test support (feature `testing`), kept for crates that still reach it here: everything lives in the
//! `testkit` crate now.

pub use testkit::{wait_for, EchoCard, Pcscd, PcscdError, SLOTS};

/// Plugs `card` into the first vpcd slot of `pcscd` and waits until pcscd sees it present (the
/// step every test that puts one card behind pcscd starts with).
pub fn plug_and_wait<C: crate::VirtualCard>(pcscd: &Pcscd, card: C) -> crate::SlotHandle {
    let slot = crate::VpcdSlot::plug(
        pcscd.vpcd_addr(0),
        crate::share(card),
        crate::SlotOptions::default(),
    )
    .expect("plug the card into vpcd");
    let reader = pcscd.reader_name(0);
    assert!(
        wait_for(
            || card_transport::PcscReader::card_present(reader).unwrap_or(false),
            std::time::Duration::from_secs(15)
        ),
        "no card in {reader}"
    );
    slot
}
