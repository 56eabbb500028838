//! The slot against a fake vpcd on loopback: framing, replies, reconnects and removal,
//! without pcscd.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use testkit::{wait_for, EchoCard};
use virtual_reader::{share, SlotOptions, SlotState, VpcdSlot};

fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").expect("bind")
}

fn accept(listener: &TcpListener) -> TcpStream {
    let (stream, _) = listener.accept().expect("accept");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    stream
}

fn send(stream: &mut TcpStream, body: &[u8]) {
    let len = u16::try_from(body.len()).expect("short");
    stream.write_all(&len.to_be_bytes()).expect("len");
    stream.write_all(body).expect("body");
}

fn receive(stream: &mut TcpStream) -> Vec<u8> {
    let mut len = [0; 2];
    stream.read_exact(&mut len).expect("reply length");
    let mut body = vec![0; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut body).expect("reply body");
    body
}

#[test]
fn answers_atr_and_apdus_and_ignores_bad_messages() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(EchoCard::default()),
        SlotOptions::default(),
    )
    .expect("plug");
    let mut conn = accept(&vpcd);
    assert!(wait_for(
        || matches!(slot.state(), SlotState::Connected { .. }),
        Duration::from_secs(2)
    ));

    send(&mut conn, &[0x04]);
    assert_eq!(receive(&mut conn), EchoCard::ATR);
    send(&mut conn, &[0x01]);
    send(&mut conn, &[0x00, 0xA4, 0x04, 0x00, 0x02, 0xA0, 0x00]);
    assert_eq!(receive(&mut conn), [0x90, 0x00]);

    // Unknown control and empty messages are ignored: the next get-ATR still works.
    send(&mut conn, &[0x03]);
    send(&mut conn, &[]);
    send(&mut conn, &[0x04]);
    assert_eq!(receive(&mut conn), EchoCard::ATR);
    slot.remove();
}

/// A card whose power state we can observe from outside.
#[test]
fn power_off_reaches_the_card_and_disconnect_powers_it_down() {
    use std::sync::{Arc, Mutex};
    let vpcd = listener();
    let echo = Arc::new(Mutex::new(EchoCard::default()));
    let shared: virtual_reader::SharedCard = echo.clone();
    let is_powered = || echo.lock().expect("lock").is_powered();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        shared,
        SlotOptions::default(),
    )
    .expect("plug");
    let mut conn = accept(&vpcd);
    send(&mut conn, &[0x01]);
    send(&mut conn, &[0x04]); // a reply proves the power-on before it was handled
    receive(&mut conn);
    assert!(is_powered());
    send(&mut conn, &[0x00]);
    send(&mut conn, &[0x04]);
    receive(&mut conn);
    assert!(!is_powered());

    send(&mut conn, &[0x02]); // reset powers the echo card
    send(&mut conn, &[0x04]);
    receive(&mut conn);
    assert!(is_powered());
    drop(conn); // vpcd goes away: the card is out of the reader, so unpowered
    assert!(wait_for(|| !is_powered(), Duration::from_secs(2)));
    drop(slot);
}

#[test]
fn reconnects_after_vpcd_closes() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(EchoCard::default()),
        SlotOptions::default(),
    )
    .expect("plug");
    for _ in 0..3 {
        let mut conn = accept(&vpcd);
        send(&mut conn, &[0x04]);
        assert_eq!(receive(&mut conn), EchoCard::ATR);
        drop(conn);
    }
    slot.remove();
}

#[test]
fn backs_off_while_vpcd_is_down_and_removal_is_prompt() {
    // Bind then drop to get a port nobody listens on.
    let addr = listener().local_addr().expect("addr");
    let slot =
        VpcdSlot::plug(addr, share(EchoCard::default()), SlotOptions::default()).expect("plug");
    assert!(wait_for(
        || matches!(slot.state(), SlotState::Connecting { attempts, .. } if attempts >= 4),
        Duration::from_secs(3)
    ));
    // 50 + 100 + 200 ms of backoff at least for 4 failures.
    let SlotState::Connecting { since, attempts } = slot.state() else {
        panic!("connected to nothing");
    };
    assert!(
        since.elapsed() >= Duration::from_millis(350),
        "{attempts} attempts too fast"
    );
    let started = Instant::now();
    slot.remove();
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn removal_closes_a_live_connection() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(EchoCard::default()),
        SlotOptions::default(),
    )
    .expect("plug");
    let mut conn = accept(&vpcd);
    send(&mut conn, &[0x04]);
    receive(&mut conn);
    let started = Instant::now();
    slot.remove();
    assert!(started.elapsed() < Duration::from_millis(500));
    let mut buf = [0; 1];
    assert_eq!(conn.read(&mut buf).expect("EOF, not timeout"), 0);
    // And it does not come back.
    vpcd.set_nonblocking(true).expect("nonblocking");
    std::thread::sleep(Duration::from_millis(300));
    assert!(vpcd.accept().is_err(), "removed card reconnected");
}

#[test]
fn unresolvable_address_is_an_error() {
    let err = VpcdSlot::plug(
        "no-such-host.invalid:1",
        share(EchoCard::default()),
        SlotOptions::default(),
    )
    .expect_err("must not resolve");
    assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
}

/// Breaks the `transmit` contract: panics on INS 0xFF, answers nothing on INS 0xFE.
struct UnrulyCard;

impl virtual_reader::VirtualCard for UnrulyCard {
    fn atr(&self) -> Vec<u8> {
        EchoCard::ATR.to_vec()
    }
    fn power_on(&mut self) {}
    fn power_off(&mut self) {}
    fn reset(&mut self) {}
    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        match command[1] {
            0xFF => panic!("card bug"),
            0xFE => vec![0x90],
            0xFD => Vec::new(),
            _ => vec![0x90, 0x00],
        }
    }
}

#[test]
fn a_card_breaking_the_transmit_contract_gets_6f00_and_the_slot_survives() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(UnrulyCard),
        SlotOptions::default(),
    )
    .expect("plug");
    let mut conn = accept(&vpcd);
    send(&mut conn, &[0x00, 0xFF, 0x00, 0x00]);
    assert_eq!(receive(&mut conn), [0x6F, 0x00]);
    send(&mut conn, &[0x00, 0xFE, 0x00, 0x00]);
    assert_eq!(receive(&mut conn), [0x6F, 0x00]);
    send(&mut conn, &[0x00, 0xA4, 0x00, 0x00]);
    assert_eq!(receive(&mut conn), [0x90, 0x00]);
    assert!(matches!(slot.state(), SlotState::Connected { .. }));
    slot.remove();
}

#[test]
fn a_mute_card_is_pulled_out_and_reinserted() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(UnrulyCard),
        SlotOptions::default(),
    )
    .expect("plug");
    let mut conn = accept(&vpcd);
    // An empty reply (power lost mid-command): the slot closes the connection instead of answering.
    send(&mut conn, &[0x00, 0xFD, 0x00, 0x00]);
    let mut byte = [0u8; 1];
    assert_eq!(
        std::io::Read::read(&mut conn, &mut byte).expect("read"),
        0,
        "expected EOF"
    );
    // ...and plugs the card in again by itself.
    let mut again = accept(&vpcd);
    send(&mut again, &[0x00, 0xA4, 0x00, 0x00]);
    assert_eq!(receive(&mut again), [0x90, 0x00]);
    slot.remove();
}

/// An echo card whose ATR carries a tag, to tell cards apart: `3B 81 01 <tag> TCK`.
struct Tagged(u8);

impl virtual_reader::VirtualCard for Tagged {
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x81, 0x01, self.0, 0x80 ^ self.0]
    }
    fn power_on(&mut self) {}
    fn power_off(&mut self) {}
    fn reset(&mut self) {}
    fn transmit(&mut self, _command: &[u8]) -> Vec<u8> {
        vec![0x90, 0x00]
    }
}

#[test]
fn eject_closes_the_connection_and_insert_brings_a_card_back_after_the_gap() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(Tagged(0xA1)),
        SlotOptions::default(),
    )
    .expect("plug");
    let mut conn = accept(&vpcd);
    send(&mut conn, &[0x04]);
    assert_eq!(receive(&mut conn)[3], 0xA1);

    slot.eject();
    assert!(!slot.is_inserted());
    assert!(matches!(slot.state(), SlotState::Ejected { .. }));
    let mut buf = [0; 1];
    assert_eq!(conn.read(&mut buf).expect("EOF, not timeout"), 0);
    // Ejected means out: no reconnect on its own.
    vpcd.set_nonblocking(true).expect("nonblocking");
    std::thread::sleep(Duration::from_millis(300));
    assert!(vpcd.accept().is_err(), "ejected card reconnected");
    vpcd.set_nonblocking(false).expect("blocking");

    let ejected = Instant::now();
    slot.insert(Some(share(Tagged(0xA2))));
    assert!(slot.is_inserted());
    let mut conn = accept(&vpcd);
    assert!(
        ejected.elapsed() >= virtual_reader::REINSERT_GAP - Duration::from_millis(350),
        "re-inserted after {:?}, before pcscd could see the slot empty",
        ejected.elapsed()
    );
    send(&mut conn, &[0x04]);
    assert_eq!(receive(&mut conn)[3], 0xA2, "the new card is in the slot");

    // Swapping a card in an occupied slot ejects the old one first.
    slot.insert(Some(share(Tagged(0xA3))));
    assert_eq!(conn.read(&mut buf).expect("EOF"), 0);
    let mut conn = accept(&vpcd);
    send(&mut conn, &[0x04]);
    assert_eq!(receive(&mut conn)[3], 0xA3);
    let started = Instant::now();
    slot.remove();
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn removing_an_ejected_slot_is_prompt() {
    let vpcd = listener();
    let slot = VpcdSlot::plug(
        vpcd.local_addr().expect("addr"),
        share(EchoCard::default()),
        SlotOptions::default(),
    )
    .expect("plug");
    let _conn = accept(&vpcd);
    slot.eject();
    slot.eject();
    let started = Instant::now();
    slot.remove();
    assert!(started.elapsed() < Duration::from_millis(500));
}
