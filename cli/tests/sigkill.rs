//! A process killed with SIGKILL in the middle of a stream of state-changing APDUs loses nothing that was
//! acknowledged: every answer the host saw describes state that was already on disk.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");
const SELECT_DEMO: &str = "00 A4 04 00 09 F0 74 65 73 73 65 72 61 01";

fn counter_on_disk(card: &std::path::Path) -> u32 {
    let out = Command::new(TESSERA)
        .args(["apdu", "--raw", "--card"])
        .arg(card)
        .args([SELECT_DEMO, "80 12 00 00"])
        .output()
        .expect("run tessera");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf8");
    let line = text.lines().last().expect("two answers").trim();
    assert!(line.ends_with("9000"), "read counter: {line}");
    u32::from_str_radix(&line[..8], 16).expect("hex counter")
}

#[test]
fn sigkill_mid_stream_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("card.img");
    let status = Command::new(TESSERA)
        .args(["card", "new", "--out"])
        .arg(&card)
        .status()
        .expect("card new");
    assert!(status.success());

    let mut expected_floor = 0u32;
    // Kill after a different number of acknowledgements each round.
    for acks_before_kill in [1usize, 17, 60, 150] {
        let mut child = Command::new(TESSERA)
            .args(["apdu", "--raw", "--card"])
            .arg(&card)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let mut stdin = child.stdin.take().expect("stdin");
        // The writer keeps the pipe full, so the process is always mid-stream when it dies.
        let writer = std::thread::spawn(move || {
            let _ = writeln!(stdin, "{SELECT_DEMO}");
            for _ in 0..100_000 {
                if stdin.write_all(b"80 10 00 00\n").is_err() {
                    break;
                }
            }
        });
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let select = lines.next().expect("an answer").expect("read");
        assert!(select.ends_with("9000"), "SELECT answered {select}");
        let mut last_ack = None;
        for _ in 0..acks_before_kill {
            let line = lines.next().expect("an answer").expect("read");
            assert!(line.ends_with("9000"), "increment answered {line}");
            last_ack = Some(u32::from_str_radix(&line[..8], 16).expect("hex"));
        }
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        let _ = writer.join();
        let acknowledged = last_ack.expect("at least one answer");
        assert!(acknowledged > expected_floor, "the counter went backwards");
        let on_disk = counter_on_disk(&card);
        // Everything acknowledged is on disk; at most the one command in flight (durable but not yet
        // read by us, or answered but not yet read) may be there too.
        assert!(
            on_disk >= acknowledged,
            "acknowledged {acknowledged} but only {on_disk} survived the kill"
        );
        assert!(
            on_disk <= acknowledged + 2,
            "{on_disk} is more than was sent"
        );
        expected_floor = on_disk;
    }
}
