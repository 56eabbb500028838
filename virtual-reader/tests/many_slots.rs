//! More cards than one pcscd can hold: 32 slots over two private daemons (16 readers each, the
//! pcsc-lite limit), every card listed by `opensc-tool -l` on its own daemon and answering there.

use std::time::Duration;

use card_transport::{PcscReader, Transport};
use testkit::tool::Tool;
use testkit::{wait_for, Pcscd, READERS_PER_PCSCD};
use virtual_reader::{share, SlotHandle, SlotOptions, VirtualCard, VpcdSlot};

const CARDS: usize = 32;

/// An echo card whose ATR carries its slot number: `3B 81 01 <tag> TCK`.
struct Tagged(u8);

impl VirtualCard for Tagged {
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

/// The readers `opensc-tool -l` lists with a card in them, for the daemon `env` points at.
fn readers_with_cards(env: &[(String, String)]) -> Vec<String> {
    let run = Tool::new("opensc-tool")
        .arg("-l")
        .envs(env.iter().cloned())
        .quiet()
        .run()
        .ok();
    run.out
        .lines()
        .filter_map(|line| {
            let rest = line.trim_start().split_once(char::is_whitespace)?.1.trim();
            rest.strip_prefix("Yes").map(|name| name.trim().to_owned())
        })
        .collect()
}

#[test]
fn thirty_two_cards_over_two_daemons_are_each_listed_and_answer() {
    let pcscd = Pcscd::with_slots(CARDS).expect("two private pcscd");
    assert_eq!(pcscd.instances(), 2);
    let slots: Vec<SlotHandle> = (0..CARDS)
        .map(|i| {
            VpcdSlot::plug(
                pcscd.vpcd_addr(i),
                share(Tagged(i as u8)),
                SlotOptions::default(),
            )
            .expect("plug")
        })
        .collect();
    for instance in 0..pcscd.instances() {
        let env = pcscd.client_env(instance);
        let expected = pcscd.readers_of(instance);
        assert_eq!(expected.len(), READERS_PER_PCSCD);
        let mut seen = Vec::new();
        assert!(
            wait_for(
                || {
                    seen = readers_with_cards(&env);
                    expected.iter().all(|r| seen.iter().any(|s| s == r))
                },
                Duration::from_secs(20)
            ),
            "pcscd {instance}: opensc-tool -l shows cards in {seen:?}, expected {expected:?}\n{}",
            pcscd.log()
        );
        eprintln!("pcscd {instance} ({env:?}): {} cards listed", seen.len());
    }
    // This process's libpcsclite talks to the first daemon: every card there answers with its tag.
    for slot in 0..READERS_PER_PCSCD {
        let mut reader = PcscReader::connect(pcscd.reader_name(slot)).expect("connect");
        assert_eq!(reader.atr().expect("atr")[3], slot as u8);
        assert_eq!(
            reader.transmit_raw(&[0x00, 0xA4, 0x04, 0x00]).expect("tx"),
            [slot as u8, 0x90, 0x00]
        );
    }
    // Those of the second answer through opensc-tool pointed at its socket.
    for slot in READERS_PER_PCSCD..CARDS {
        let env = pcscd.client_env(pcscd.instance_of(slot));
        let reader = pcscd.reader_name(slot);
        let index = pcscd
            .readers_of(1)
            .iter()
            .position(|r| *r == reader)
            .expect("listed");
        Tool::new("opensc-tool")
            .args(["-r", &index.to_string(), "-s", "00 A4 04 00"])
            .envs(env)
            .quiet()
            .run()
            .ok()
            .has(&format!("Received (SW1=0x90, SW2=0x00):\n{slot:02X}"));
    }
    drop(slots);
}
