//! `tessera serve --control` driven by `tessera ctl` while a private pcscd, opensc-tool and pkcs11-tool
//! watch: remove/insert are real removals and insertions to pcsc-lite, a torn command gets no answer and
//! the card comes back with the state from before that command, snapshot/restore rewinds the card, the
//! clock can be fixed, and the APDU trace of it all replays byte for byte (with the PIN redacted).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use card_transport::{PcscReader, Transport};
use serde_json::Value;
use testkit::tool::{Run, Tool};
use testkit::{wait_for, Pcscd, Terminating};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");
const OPENSC_PKCS11: &str = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so";
const SHOW: Duration = Duration::from_secs(15);

const SELECT_DEMO: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xF0, 0x74, 0x65, 0x73, 0x73, 0x65, 0x72, 0x61, 0x01,
];
const INCREMENT: &[u8] = &[0x80, 0x10, 0x00, 0x00, 0x04];
const READ_COUNTER: &[u8] = &[0x80, 0x12, 0x00, 0x00, 0x04];
const RANDOM_16: &[u8] = &[0x80, 0x70, 0x10, 0x00, 0x10];
const READ_CLOCK: &[u8] = &[0x80, 0x72, 0x00, 0x00, 0x08];
/// VERIFY of the demo PIN "1234" (ASCII 31 32 33 34).
const VERIFY_DEMO_PIN: &[u8] = &[0x00, 0x20, 0x00, 0x81, 0x04, 0x31, 0x32, 0x33, 0x34];
/// 2030-01-01T00:00:00Z.
const FIXED_TIME: u64 = 1_893_456_000;

fn tessera(args: &[&str]) -> Run {
    Tool::new(TESSERA).args(args).run()
}

/// `tessera ctl --control SOCK --json args…`, parsed.
fn ctl(socket: &Path, args: &[&str]) -> (Run, Value) {
    let run = Tool::new(TESSERA)
        .arg("ctl")
        .arg("--control")
        .arg(socket)
        .arg("--json")
        .args(args)
        .separate_stderr()
        .run();
    let answer = serde_json::from_str(run.out.trim())
        .unwrap_or_else(|e| panic!("ctl printed no JSON answer ({e}):{}", run.describe()));
    (run, answer)
}

/// `ctl` that must succeed; returns its answer.
#[track_caller]
fn ctl_ok(socket: &Path, args: &[&str]) -> Value {
    let (run, answer) = ctl(socket, args);
    assert_eq!(answer["ok"], true, "{args:?} refused:{}", run.describe());
    run.ok();
    answer
}

fn present(reader: &str) -> bool {
    PcscReader::card_present(reader).unwrap_or(false)
}

/// What `opensc-tool -l` says about `reader`: "Yes" or "No" in its Card column.
fn opensc_sees_card(reader: &str) -> bool {
    let run = Tool::new("opensc-tool").arg("-l").run().ok();
    let line = run
        .out
        .lines()
        .find(|l| l.ends_with(reader))
        .unwrap_or_else(|| panic!("{reader} not listed:{}", run.describe()))
        .to_owned();
    line.split_whitespace().nth(1) == Some("Yes")
}

/// `pkcs11-tool -L`: the lines of the slot that names `reader`, up to the next slot.
fn pkcs11_slot(reader: &str) -> String {
    let run = Tool::new("pkcs11-tool")
        .args(["--module", OPENSC_PKCS11, "-L"])
        .run()
        .ok();
    let mut lines = run.out.lines().skip_while(|l| !l.contains(reader));
    let mut text: Vec<&str> = lines.next().into_iter().collect();
    text.extend(lines.take_while(|l| !l.starts_with("Slot ")));
    assert!(
        !text.is_empty(),
        "{reader} not among the PKCS#11 slots:{}",
        run.describe()
    );
    text.join("\n")
}

/// Connects and selects the demo applet, retrying while the card is coming back (after a tear or an
/// insertion pcscd may still be catching up), and returns the connection.
fn demo(reader: &str) -> PcscReader {
    let mut connection = None;
    let mut last = String::new();
    let selected = wait_for(
        || {
            let attempt = PcscReader::connect(reader)
                .map_err(|e| e.to_string())
                .and_then(|mut card| {
                    let answer = card.transmit_raw(SELECT_DEMO).map_err(|e| e.to_string())?;
                    if answer.ends_with(&[0x90, 0x00]) {
                        Ok(card)
                    } else {
                        Err(format!("SELECT answered {answer:02X?}"))
                    }
                });
            match attempt {
                Ok(card) => connection = Some(card),
                Err(error) => last = error,
            }
            connection.is_some()
        },
        SHOW,
    );
    assert!(selected, "no usable card in {reader}: {last}");
    connection.expect("connected")
}

fn counter(card: &mut PcscReader) -> u32 {
    let answer = card.transmit_raw(READ_COUNTER).expect("read counter");
    assert_eq!(answer.len(), 6, "{answer:02X?}");
    u32::from_be_bytes([answer[0], answer[1], answer[2], answer[3]])
}

fn new_card(path: &Path, seed: &str) {
    tessera(&[
        "card",
        "new",
        "--seed",
        seed,
        "--out",
        path.to_str().expect("utf-8"),
    ])
    .ok();
}

struct Rig {
    served: Terminating,
    socket: PathBuf,
    reader: &'static str,
    dir: tempfile::TempDir,
    pcscd: Pcscd,
}

impl Rig {
    fn start() -> Self {
        let pcscd = Pcscd::start().expect("private pcscd");
        let dir = tempfile::tempdir().expect("tempdir");
        let (golden, work, other) = (
            dir.path().join("golden.img"),
            dir.path().join("work.img"),
            dir.path().join("other.img"),
        );
        new_card(&golden, "7");
        fs::copy(&golden, &work).expect("copy");
        new_card(&other, "8");
        let socket = dir.path().join("ctl.sock");
        let log = fs::File::create(dir.path().join("serve.log")).expect("log");
        let child = Command::new(TESSERA)
            .arg("serve")
            .arg("--vpcd")
            .arg(pcscd.vpcd_addr(0).to_string())
            .arg("--control")
            .arg(&socket)
            .arg(&work)
            .arg(&other)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("tessera serve");
        let reader = pcscd.reader_name(0);
        let rig = Self {
            served: Terminating::new(child),
            socket,
            reader,
            dir,
            pcscd,
        };
        assert!(
            wait_for(|| present(reader), SHOW),
            "card never appeared\n{}",
            rig.log()
        );
        rig
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn log(&self) -> String {
        format!(
            "serve log:\n{}\n{}",
            fs::read_to_string(self.path("serve.log")).unwrap_or_default(),
            self.pcscd.log()
        )
    }

    fn slot0(&self) -> Value {
        ctl_ok(&self.socket, &["list"])["slots"][0].clone()
    }
}

#[test]
fn remove_insert_tear_snapshot_restore_clock_and_trace_through_the_control_socket() {
    let mut rig = Rig::start();
    let socket = rig.socket.clone();
    let reader = rig.reader;
    let mode = fs::metadata(&socket).expect("socket").permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );

    let list = ctl_ok(&socket, &["list"]);
    let slots = list["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 2);
    assert_eq!(slots[0]["inserted"], true);
    assert!(slots[0]["card"]
        .as_str()
        .expect("card")
        .ends_with("work.img"));
    assert!(opensc_sees_card(reader));

    // The trace covers everything from here on.
    let trace = rig.path("session.trace");
    ctl_ok(
        &socket,
        &["trace", "0", "--start", trace.to_str().expect("utf-8")],
    );
    let mut card = demo(reader);
    assert_eq!(
        card.transmit_raw(VERIFY_DEMO_PIN).expect("verify"),
        [0x90, 0x00]
    );
    assert_eq!(counter(&mut card), 0);
    assert_eq!(
        card.transmit_raw(INCREMENT).expect("increment")[..4],
        [0, 0, 0, 1]
    );
    let random = card.transmit_raw(RANDOM_16).expect("random");
    assert_eq!(random.len(), 18);

    // Clock: a fixed time, read back through the demo applet.
    ctl_ok(&socket, &["clock", "0", "--set", "2030-01-01T00:00:00Z"]);
    assert_eq!(rig.slot0()["clock"], "2030-01-01T00:00:00Z");
    let clock = card.transmit_raw(READ_CLOCK).expect("clock");
    assert_eq!(clock[..8], FIXED_TIME.to_be_bytes());

    // Snapshot at counter 1.
    ctl_ok(&socket, &["snapshot", "0", "one"]);

    // Tear: the next command loses power at its first persistent write. The host gets no answer...
    ctl_ok(&socket, &["tear", "0", "--at-write", "1"]);
    assert!(rig.slot0()["tear"]
        .as_str()
        .expect("tear")
        .starts_with("armed"));
    let torn = card.transmit_raw(INCREMENT);
    assert!(
        torn.is_err(),
        "a torn command must not be answered: {torn:?}"
    );
    assert!(rig.slot0()["tear"]
        .as_str()
        .expect("tear")
        .starts_with("power cut"));
    // ...then the card is back, with the counter from before the torn command (recovery rolled it back).
    let mut card = demo(reader);
    assert_eq!(counter(&mut card), 1, "the torn increment must not count");
    assert_eq!(
        card.transmit_raw(INCREMENT).expect("increment")[..4],
        [0, 0, 0, 2]
    );

    // Restore rewinds to the snapshot (counter 1); the card was power-cycled, so select again.
    ctl_ok(&socket, &["restore", "0", "one"]);
    assert!(card
        .transmit_raw(SELECT_DEMO)
        .expect("select")
        .ends_with(&[0x90, 0x00]));
    assert_eq!(counter(&mut card), 1);
    drop(card);

    // Remove: pcscd, opensc-tool and pkcs11-tool see an empty reader; insert: the card is back.
    assert!(
        pkcs11_slot(reader).contains("token label"),
        "{}",
        pkcs11_slot(reader)
    );
    ctl_ok(&socket, &["remove", "0"]);
    assert!(
        wait_for(|| !present(reader), SHOW),
        "pcscd still sees a card\n{}",
        rig.log()
    );
    assert!(!opensc_sees_card(reader));
    let empty = pkcs11_slot(reader);
    assert!(!empty.contains("token label"), "{empty}");
    assert_eq!(rig.slot0()["inserted"], false);
    let (run, refused) = ctl(&socket, &["remove", "0"]);
    run.exits(1);
    assert!(refused["error"]
        .as_str()
        .expect("error")
        .contains("already empty"));

    ctl_ok(&socket, &["insert", "0"]);
    assert!(
        wait_for(|| present(reader), SHOW),
        "card not back\n{}",
        rig.log()
    );
    assert!(opensc_sees_card(reader));
    assert!(pkcs11_slot(reader).contains("token label"));
    let mut card = demo(reader);
    assert_eq!(counter(&mut card), 1, "state survives a removal");
    drop(card);

    let stopped = ctl_ok(&socket, &["trace", "0", "--stop"]);
    assert!(stopped["message"]
        .as_str()
        .expect("message")
        .contains("command"));
    let text = fs::read_to_string(&trace).expect("trace");
    assert!(
        !text.contains("31 32 33 34"),
        "the PIN is in the trace:\n{text}"
    );
    assert!(text.contains("<secret:1>"), "{text}");
    assert!(text.contains("< mute"), "{text}");
    assert!(
        text.contains("tear 1 clean") && text.contains("restore one"),
        "{text}"
    );

    // Replay against the golden image (the card as it was when the trace started): every byte matches.
    let golden = rig.path("golden.img");
    let golden_arg = golden.to_str().expect("utf-8");
    let trace_arg = trace.to_str().expect("utf-8");
    Tool::new(TESSERA)
        .args([
            "replay",
            "--card",
            golden_arg,
            trace_arg,
            "--secret",
            "1=31323334",
        ])
        .run()
        .ok()
        .has("every response matches");
    // Without the secret it says which one it needs; with a wrong one the first difference is named.
    Tool::new(TESSERA)
        .args(["replay", "--card", golden_arg, trace_arg])
        .run()
        .exits(2)
        .has("--secret 1=HEX");
    Tool::new(TESSERA)
        .args([
            "replay",
            "--card",
            golden_arg,
            trace_arg,
            "--secret",
            "1=pin:9999",
        ])
        .run()
        .exits(1)
        .has("the response differs at byte 0");
    // Another card's image is refused before anything is sent.
    let other = rig.path("other.img");
    Tool::new(TESSERA)
        .args([
            "replay",
            "--card",
            other.to_str().expect("utf-8"),
            trace_arg,
            "--secret",
            "1=31323334",
        ])
        .run()
        .exits(2)
        .has("seed 8");

    // Bad requests are answered and serve goes on.
    for (args, needle) in [
        (&["remove", "5"][..], "slot 5 does not exist"),
        (&["tear", "0", "--at-write", "0"][..], "from 1"),
        (&["restore", "0", "never"][..], "no snapshot \"never\""),
        (&["clock", "0", "--set", "tomorrow"][..], "RFC 3339"),
        (&["trace", "0", "--stop"][..], "not tracing"),
        (&["snapshot", "0", "bad name"][..], "must be 1 to 64"),
    ] {
        let (run, answer) = ctl(&socket, args);
        run.exits(1);
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{args:?}: {error}");
    }
    assert_eq!(ctl_ok(&socket, &["list"])["slots"][0]["inserted"], true);

    assert_eq!(rig.served.terminate(), Some(0), "{}", rig.log());
    assert!(!socket.exists(), "the control socket is removed at exit");
}

#[test]
fn a_tcp_control_address_must_be_loopback() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("card.img");
    new_card(&card, "1");
    tessera(&[
        "serve",
        "--control",
        "0.0.0.0:7070",
        card.to_str().expect("utf-8"),
    ])
    .exits(2)
    .has("not loopback");
    tessera(&[
        "serve",
        card.to_str().expect("utf-8"),
        card.to_str().expect("utf-8"),
    ])
    .exits(2)
    .has("same card image");
    tessera(&[
        "ctl",
        "--control",
        &dir.path().join("nobody.sock").display().to_string(),
        "list",
    ])
    .exits(2)
    .has("cannot reach tessera serve");
}
