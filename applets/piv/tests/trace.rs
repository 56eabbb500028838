//! The PIV applet's refusals are told apart in a debug trace: each `69 82` names what was missing.

#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use support::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with a debug-level subscriber; returns what it logged.
fn traced(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    let bytes = captured.0.lock().unwrap().clone();
    String::from_utf8(bytes).unwrap()
}

/// The refusals traced, in order.
fn refusals(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.split_once("refused error=").map(|(_, rest)| rest))
        .map(|rest| rest.split(" sw=").next().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn every_security_refusal_says_what_was_missing() {
    let eight = "00".repeat(8);
    let log = traced(|| {
        let mut card = card();
        // PUT DATA without the management key.
        assert_eq!(tx(&mut card, "00 DB 3F FF 07 5C 03 5F C1 09 53 00"), "6982");
        // Printed information without the PIN.
        assert_eq!(get_object(&mut card, &[0x5F, 0xC1, 0x09]).1, 0x6982);
        // 9B: an answer to no witness, to no challenge, and a wrong witness.
        let mutual = format!("00 87 03 9B 16 7C 14 80 08 {eight} 81 08 {eight}");
        assert_eq!(tx(&mut card, &mutual), "6982");
        assert_eq!(
            tx(&mut card, &format!("00 87 03 9B 0C 7C 0A 82 08 {eight}")),
            "6982"
        );
        assert_eq!(sw(&tx(&mut card, "00 87 03 9B 04 7C 02 80 00 00")), "9000");
        assert_eq!(tx(&mut card, &mutual), "6982");
        // A PIN-always key (9C) signs once per VERIFY.
        default_auth(&mut card);
        generate(&mut card, 0x9C);
        assert_eq!(tx(&mut card, VERIFY_DEFAULT_PIN), "9000");
        assert_eq!(sign(&mut card, 0x9C, &[7; 32]).1, 0x9000);
        assert_eq!(sign(&mut card, 0x9C, &[7; 32]).1, 0x6982);
        // A wrong PIN.
        assert_eq!(tx(&mut card, "00 20 00 80 08 3939393939393939"), "63C2");
    });
    assert_eq!(
        refusals(&log),
        [
            "SecurityStatusNotSatisfied(KeyAuthentication)",
            "SecurityStatusNotSatisfied(Pin)",
            "SecurityStatusNotSatisfied(PendingChallenge)",
            "SecurityStatusNotSatisfied(PendingChallenge)",
            "SecurityStatusNotSatisfied(CorrectCryptogram)",
            "SecurityStatusNotSatisfied(PinForEachUse)",
            "WrongPin { tries_left: 2 }",
        ],
        "{log}"
    );
    assert!(!log.contains("39 39 39 39"), "a PIN in the trace:\n{log}");
    assert!(!log.contains("31 32 33 34"), "a PIN in the trace:\n{log}");
}
