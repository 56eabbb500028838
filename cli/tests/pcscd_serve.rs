//! `tessera serve` through a real pcscd + vpcd: OpenSC's tools see the card, and it comes back by itself
//! when pcscd restarts.

use std::process::{Command, Stdio};
use std::time::Duration;

use card_transport::PcscReader;
use testkit::{wait_for, Pcscd, Terminating};

const TESSERA: &str = env!("CARGO_BIN_EXE_tessera");

fn opensc_tool(args: &[&str]) -> String {
    testkit::tool::run("opensc-tool", args).out
}

#[test]
fn served_card_is_seen_by_opensc_and_survives_a_pcscd_restart() {
    let mut pcscd = Pcscd::start().expect("start a private pcscd");
    let reader = pcscd.reader_name(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let card = dir.path().join("card.img");
    assert!(Command::new(TESSERA)
        .args(["card", "new", "--out"])
        .arg(&card)
        .status()
        .expect("card new")
        .success());

    let mut served = Terminating::new(
        Command::new(TESSERA)
            .arg("serve")
            .arg("--vpcd")
            .arg(pcscd.vpcd_addr(0).to_string())
            .arg(&card)
            .stdout(Stdio::null())
            .spawn()
            .expect("tessera serve"),
    );
    let present = || PcscReader::card_present(reader).unwrap_or(false);
    assert!(
        wait_for(present, Duration::from_secs(15)),
        "card never appeared\n{}",
        pcscd.log()
    );

    let list = opensc_tool(&["-l"]);
    let line = list
        .lines()
        .find(|l| l.contains(reader))
        .unwrap_or_else(|| panic!("{reader} not listed:\n{list}"));
    assert!(line.contains("Yes"), "card not present in: {line}");

    let atr = opensc_tool(&["-r", "0", "-a"]);
    assert!(
        atr.contains("3b:fb:13:00:00:81:31:fe:15:80:f9:a0:00:00:03:08:00:00:10:00:71"),
        "{atr}"
    );

    let select = opensc_tool(&["-r", "0", "-s", "00 A4 04 00 09 F0 74 65 73 73 65 72 61 01"]);
    assert!(select.contains("SW1=0x90, SW2=0x00"), "{select}");
    // The card reads as PIV, and OpenSC's PIV driver re-selects PIV whenever it takes the card lock;
    // raw APDU sequences to another applet therefore bind OpenSC's `default` driver.
    let increment = opensc_tool(&[
        "-r",
        "0",
        "-c",
        "default",
        "-s",
        "00 A4 04 00 09 F0 74 65 73 73 65 72 61 01",
        "-s",
        "80 10 00 00",
    ]);
    assert!(increment.contains("00 00 00 01"), "{increment}");

    // Kill and restart pcscd: the card comes back without restarting tessera.
    pcscd.restart().expect("restart pcscd");
    assert!(
        wait_for(present, Duration::from_secs(15)),
        "card did not come back after the pcscd restart\n{}",
        pcscd.log()
    );
    let again = opensc_tool(&[
        "-r",
        "0",
        "-c",
        "default",
        "-s",
        "00 A4 04 00 09 F0 74 65 73 73 65 72 61 01",
        "-s",
        "80 10 00 00",
    ]);
    assert!(
        again.contains("00 00 00 02"),
        "state lost across the restart: {again}"
    );

    // SIGTERM removes the card cleanly and exits 0.
    assert_eq!(served.terminate(), Some(0));
    assert!(
        wait_for(|| !present(), Duration::from_secs(10)),
        "card still present after tessera stopped"
    );
}
