//! A debug trace names the refusal behind every status word, and never shows PIN data.

mod support;

use std::sync::{Arc, Mutex};

use support::*;

/// Collects what the tracing subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).into_owned()
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
    captured.text()
}

#[test]
fn each_refusal_is_named_next_to_its_status_word() {
    let log = traced(|| {
        let mut card = demo_card();
        assert_eq!(tx(&mut card, "80 12 00 00"), "6D00");
        tx(&mut card, SELECT_DEMO);
        assert_eq!(tx(&mut card, "00 A4 04 00 05 A0 00 00 00 99"), "6A82");
        assert_eq!(tx(&mut card, "00 C0 00 00 00"), "6985");
        assert_eq!(tx(&mut card, "01 12 00 00"), "6881");
        assert_eq!(tx(&mut card, "FF 12 00 00"), "6E00");
        assert_eq!(tx(&mut card, "00 24 00 81 04 35353535"), "6982");
        assert_eq!(tx(&mut card, "00 20 00 81 04 30303030"), "63C2");
        assert_eq!(tx(&mut card, "80 22 07 00"), "6A83");
    });
    for (error, sw) in [
        ("NoApplicationSelected", "6D00"),
        ("ApplicationNotFound", "6A82"),
        ("NoResponsePending", "6985"),
        ("ChannelClosed { channel: 1 }", "6881"),
        ("InvalidClass { cla: 255 }", "6E00"),
        ("SecurityStatusNotSatisfied(Pin)", "6982"),
        ("WrongPin { tries_left: 2 }", "63C2"),
        ("RecordNotFound", "6A83"),
    ] {
        let line = log
            .lines()
            .find(|line| line.contains("refused") && line.contains(error))
            .unwrap_or_else(|| panic!("no trace names {error}:\n{log}"));
        assert!(line.contains(sw), "{error} traced without {sw}: {line}");
    }
    // The demo applet marks VERIFY and CHANGE REFERENCE DATA sensitive: their data never shows.
    assert!(!log.contains("30 30 30 30"), "a PIN in the trace:\n{log}");
    assert!(!log.contains("35 35 35 35"), "a PIN in the trace:\n{log}");
    assert!(log.contains("<redacted>"));
}
