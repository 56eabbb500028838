//! The real path: cards plugged into a private pcscd through vpcd, seen by PC/SC
//! applications (the pcsc crate and OpenSC's tools).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use card_transport::{PcscReader, Transport, TransportError};
use testkit::{wait_for, EchoCard, Pcscd, SLOTS};
use virtual_reader::{
    share, SharedCard, SlotHandle, SlotOptions, SlotState, VirtualCard, VpcdSlot,
};

const SHOW: Duration = Duration::from_secs(5);
const SELECT: [u8; 11] = [
    0x00, 0xA4, 0x04, 0x00, 0x06, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
];

fn plug(pcscd: &Pcscd, slot: usize, card: SharedCard) -> SlotHandle {
    VpcdSlot::plug(pcscd.vpcd_addr(slot), card, SlotOptions::default()).expect("plug")
}

fn present(reader: &str) -> bool {
    PcscReader::card_present(reader).expect("card_present")
}

fn opensc_tool(args: &[&str]) -> String {
    testkit::tool::run("opensc-tool", args).out
}

fn colon_hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn echo_card_is_seen_used_removed_and_replugged() {
    let pcscd = Pcscd::start().expect("pcscd");
    let reader = pcscd.reader_name(0);
    let names = PcscReader::list().expect("list");
    assert!(names.iter().any(|n| n == reader), "{names:?}");
    assert!(!present(reader), "slot 0 must start empty");

    let plugged = Instant::now();
    let slot = plug(&pcscd, 0, share(EchoCard::default()));
    assert!(wait_for(|| present(reader), SHOW), "card never showed");
    eprintln!(
        "card visible to PC/SC {:?} after plugging",
        plugged.elapsed()
    );

    let listing = opensc_tool(&["-l"]);
    let line = listing
        .lines()
        .find(|l| l.contains(reader))
        .unwrap_or_else(|| panic!("opensc-tool -l lacks {reader}:\n{listing}"));
    assert!(line.contains("Yes"), "no card per opensc-tool: {line}");
    let atr = opensc_tool(&["-r", "0", "-a"]);
    assert!(
        atr.contains(&colon_hex(&EchoCard::ATR)),
        "opensc-tool -a printed {atr:?}"
    );

    let mut card = PcscReader::connect(reader).expect("connect");
    assert_eq!(card.name(), format!("pcsc:{reader}"));
    assert_eq!(card.atr().expect("atr"), EchoCard::ATR);
    assert_eq!(card.transmit_raw(&SELECT).expect("transmit"), [0x90, 0x00]);
    let mut extended = vec![0x00, 0xDA, 0x3F, 0xFF, 0x00, 0x04, 0x00];
    extended.extend(std::iter::repeat_n(0x5A, 1024));
    assert_eq!(
        card.transmit_raw(&extended).expect("extended"),
        [0x90, 0x00]
    );
    card.reset().expect("reset");
    assert_eq!(
        card.transmit_raw(&SELECT).expect("after reset"),
        [0x90, 0x00]
    );

    slot.remove();
    assert!(
        wait_for(|| !present(reader), SHOW),
        "card still present after removal"
    );
    assert!(matches!(
        card.transmit_raw(&SELECT),
        Err(TransportError::CardRemoved(_) | TransportError::Pcsc { .. })
    ));
    assert!(matches!(
        PcscReader::connect(reader),
        Err(TransportError::NoCard(_))
    ));

    let slot = plug(&pcscd, 0, share(EchoCard::default()));
    assert!(
        wait_for(|| present(reader), SHOW),
        "re-plugged card never showed"
    );
    card.reset().expect("reset reconnects to the new card");
    assert_eq!(card.transmit_raw(&SELECT).expect("new card"), [0x90, 0x00]);
    drop(slot);
    assert!(
        wait_for(|| !present(reader), SHOW),
        "dropping the handle removes"
    );
}

#[test]
fn card_comes_back_by_itself_after_pcscd_restarts() {
    let mut pcscd = Pcscd::start().expect("pcscd");
    let reader = pcscd.reader_name(0);
    let slot = plug(&pcscd, 0, share(EchoCard::default()));
    assert!(wait_for(|| present(reader), SHOW));
    let old_pid = pcscd.pid();

    pcscd.restart().expect("restart");
    assert_ne!(pcscd.pid(), old_pid);
    let restarted = Instant::now();
    assert!(
        wait_for(
            || PcscReader::card_present(reader).unwrap_or(false),
            Duration::from_secs(15)
        ),
        "card did not come back; slot {:?}; pcscd log:\n{}",
        slot.state(),
        pcscd.log()
    );
    eprintln!(
        "card back {:?} after pcscd answered again",
        restarted.elapsed()
    );
    assert!(matches!(slot.state(), SlotState::Connected { .. }));
    let mut card = PcscReader::connect(reader).expect("connect after restart");
    assert_eq!(card.transmit_raw(&SELECT).expect("transmit"), [0x90, 0x00]);
}

/// An echo card with an ATR of its own: `3B 81 01 <tag> TCK`.
struct TaggedCard(u8);

impl VirtualCard for TaggedCard {
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x81, 0x01, self.0, 0x80 ^ self.0]
    }
    fn power_on(&mut self) {}
    fn power_off(&mut self) {}
    fn reset(&mut self) {}
    fn transmit(&mut self, _command: &[u8]) -> Vec<u8> {
        vec![self.0, 0x90, 0x00]
    }
}

#[test]
fn one_card_per_slot_all_at_once() {
    let pcscd = Pcscd::start().expect("pcscd");
    let slots: Vec<SlotHandle> = (0..SLOTS)
        .map(|i| plug(&pcscd, i, share(TaggedCard(0xC0 + i as u8))))
        .collect();
    for i in 0..SLOTS {
        let reader = pcscd.reader_name(i);
        assert!(wait_for(|| present(reader), SHOW), "slot {i} never showed");
    }
    let mut readers: Vec<PcscReader> = (0..SLOTS)
        .map(|i| PcscReader::connect(pcscd.reader_name(i)).expect("connect"))
        .collect();
    for (i, reader) in readers.iter_mut().enumerate() {
        let tag = 0xC0 + i as u8;
        assert_eq!(reader.atr().expect("atr")[3], tag, "slot {i}");
        assert_eq!(reader.transmit_raw(&SELECT).expect("tx"), [tag, 0x90, 0x00]);
    }
    // Taking out one card leaves the others in.
    let mut slots = slots;
    slots.remove(1).remove();
    assert!(wait_for(|| !present(pcscd.reader_name(1)), SHOW));
    for i in [0, 2, 3] {
        assert!(present(pcscd.reader_name(i)), "slot {i} lost its card");
        assert_eq!(
            readers[i].transmit_raw(&SELECT).expect("tx")[1..],
            [0x90, 0x00]
        );
    }
}

/// Records what vpcd asks of the card.
#[derive(Default)]
struct RecordingCard {
    events: Arc<Mutex<Vec<String>>>,
}

impl RecordingCard {
    fn note(&self, event: &str) {
        self.events.lock().expect("events").push(event.to_owned());
    }
}

impl VirtualCard for RecordingCard {
    fn atr(&self) -> Vec<u8> {
        self.note("ATR");
        EchoCard::ATR.to_vec()
    }
    fn power_on(&mut self) {
        self.note("ON");
    }
    fn power_off(&mut self) {
        self.note("OFF");
    }
    fn reset(&mut self) {
        self.note("RESET");
    }
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        self.note(&format!("APDU {:02X}", command[1]));
        vec![0x90, 0x00]
    }
}

#[test]
fn vpcd_asks_for_the_atr_powers_on_before_apdus_and_off_after() {
    let pcscd = Pcscd::start().expect("pcscd");
    let reader = pcscd.reader_name(0);
    let card = RecordingCard::default();
    let events = Arc::clone(&card.events);
    let seen = || events.lock().expect("events").clone();
    let slot = plug(&pcscd, 0, share(card));
    assert!(wait_for(|| present(reader), SHOW));
    let attached = seen();

    let mut conn = PcscReader::connect(reader).expect("connect");
    conn.transmit_raw(&SELECT).expect("tx");
    conn.reset().expect("reset");
    conn.transmit_raw(&SELECT).expect("tx");
    drop(conn);
    let used = seen().len();
    assert!(
        wait_for(|| seen()[used..].contains(&"OFF".to_owned()), SHOW),
        "no power-off after the last disconnect: {:?}",
        seen()
    );
    let events = seen();
    eprintln!(
        "attach: {attached:?}\nthen: {:?}",
        &events[attached.len()..]
    );

    assert_eq!(attached.first().map(String::as_str), Some("ATR"));
    let first_apdu = events
        .iter()
        .position(|e| e.starts_with("APDU"))
        .expect("apdu");
    assert!(
        events[..first_apdu].contains(&"ON".to_owned()),
        "{events:?}"
    );
    assert!(
        events[first_apdu..].contains(&"RESET".to_owned()),
        "{events:?}"
    );
    drop(slot);
}

#[test]
fn reader_errors_say_what_is_wrong() {
    let pcscd = Pcscd::start().expect("pcscd");
    match PcscReader::connect("No Such Reader") {
        Err(e @ TransportError::ReaderNotFound { .. }) => {
            let text = e.to_string();
            assert!(text.contains(pcscd.reader_name(0)), "{text}");
        }
        other => panic!("expected ReaderNotFound, got {:?}", other.err()),
    }
    match PcscReader::connect(pcscd.reader_name(3)) {
        Err(TransportError::NoCard(name)) => assert_eq!(name, pcscd.reader_name(3)),
        other => panic!("expected NoCard, got {:?}", other.err()),
    }
}

/// vpcd serves one card per slot; a second one waits in the listen queue and is
/// taken in once pcscd's presence poll has seen the slot empty.
#[test]
fn a_second_card_on_a_busy_slot_waits_then_takes_over() {
    let pcscd = Pcscd::start().expect("pcscd");
    let reader = pcscd.reader_name(0);
    let tag = || {
        PcscReader::card_atr(reader)
            .expect("status")
            .map(|atr| atr[3])
    };
    let first = plug(&pcscd, 0, share(TaggedCard(0xA1)));
    assert!(wait_for(|| tag() == Some(0xA1), SHOW));
    let second = plug(&pcscd, 0, share(TaggedCard(0xA2)));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(tag(), Some(0xA1), "the first card keeps the slot");
    assert!(matches!(second.state(), SlotState::Connected { .. }));
    first.remove();
    assert!(
        wait_for(|| tag() == Some(0xA2), SHOW),
        "queued card did not take over; its slot: {:?}",
        second.state()
    );
    let mut card = PcscReader::connect(reader).expect("connect");
    assert_eq!(card.transmit_raw(&SELECT).expect("tx"), [0xA2, 0x90, 0x00]);
}
