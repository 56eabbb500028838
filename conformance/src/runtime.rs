//! Checks of the card runtime. Those that need tessera's demo applet skip on cards without it.

use apdu::{Command, StatusWord};

use crate::session::expect_sw;
use crate::{parse_atr, Check, Outcome, Session, Suite};

const SELECT_DEMO: &str = "00 A4 04 00 09 F0 74 65 73 73 65 72 61 01 00";

pub fn suite() -> Suite {
    let checks = vec![
        Check {
            id: "runtime.atr-well-formed",
            description: "the ATR follows ISO 7816-3 (TS, interface bytes, historical bytes, TCK)",
            run: |s| match s.atr().and_then(|atr| parse_atr(&atr)) {
                Ok(_) => Outcome::Pass,
                Err(why) => Outcome::Fail(why),
            },
        },
        Check {
            id: "runtime.unknown-aid",
            description: "SELECT of an AID the card does not hold answers 6A82",
            run: |s| {
                Outcome::from_result(
                    s.send("00 A4 04 00 06 A0 00 00 00 00 99")
                        .map(|r| expect_sw(&r, StatusWord::NOT_FOUND, "SELECT of an unknown AID")),
                )
            },
        },
        Check {
            id: "runtime.select-by-prefix",
            description: "SELECT with a 5-byte prefix of the demo AID selects it",
            run: |s| {
                with_demo(s, |s| {
                    let r = s.send_collect("00 A4 04 00 05 F0 74 65 73 73 00")?;
                    Ok(expect_sw(&r, StatusWord::SUCCESS, "SELECT by prefix"))
                })
            },
        },
        Check {
            id: "runtime.unknown-aid-keeps-selection",
            description: "a failed SELECT leaves the current application selected",
            run: |s| {
                with_demo(s, |s| {
                    s.send("00 A4 04 00 06 A0 00 00 00 00 99")?;
                    let r = s.send("80 12 00 00 04")?;
                    Ok(expect_sw(
                        &r,
                        StatusWord::SUCCESS,
                        "a command after the failed SELECT",
                    ))
                })
            },
        },
        Check {
            id: "runtime.unknown-ins-and-cla",
            description: "unknown INS answers 6D00 and unknown CLA 6E00",
            run: |s| {
                with_demo(s, |s| {
                    let ins = s.send("80 EE 00 00")?;
                    if ins.sw != StatusWord::INS_NOT_SUPPORTED {
                        return Ok(expect_sw(
                            &ins,
                            StatusWord::INS_NOT_SUPPORTED,
                            "unknown INS",
                        ));
                    }
                    let cla = s.send("90 12 00 00")?;
                    Ok(expect_sw(
                        &cla,
                        StatusWord::CLA_NOT_SUPPORTED,
                        "unknown CLA",
                    ))
                })
            },
        },
        Check {
            id: "runtime.get-response",
            description:
                "a 600-byte response arrives in ≤256-byte pieces through 61xx / GET RESPONSE",
            run: |s| {
                with_demo(s, |s| {
                    let first = s.send("80 30 02 58 00")?;
                    if first.data.len() > 256 || first.sw.sw1() != 0x61 {
                        return Ok(Outcome::Fail(format!(
                            "first piece: {} bytes with {}, expected ≤256 bytes and 61xx",
                            first.data.len(),
                            first.sw
                        )));
                    }
                    let whole = s.send_collect("80 30 02 58 00")?;
                    let expected: Vec<u8> = (0..600).map(|i| i as u8).collect();
                    Ok(if whole.sw != StatusWord::SUCCESS {
                        Outcome::Fail(format!("last piece ended with {}", whole.sw))
                    } else if whole.data != expected {
                        Outcome::Fail(format!(
                            "reassembled {} bytes, not the 600 expected",
                            whole.data.len()
                        ))
                    } else {
                        Outcome::Pass
                    })
                })
            },
        },
        Check {
            id: "runtime.le-probe",
            description: "a short Le (08) gets exactly 8 bytes, then 61xx for the rest",
            run: |s| {
                with_demo(s, |s| {
                    let r = s.send("80 30 00 20 08")?;
                    Ok(
                        if r.data.len() == 8 && r.sw == StatusWord::bytes_remaining(24) {
                            Outcome::Pass
                        } else {
                            Outcome::Fail(format!("got {} bytes with {}", r.data.len(), r.sw))
                        },
                    )
                })
            },
        },
        Check {
            id: "runtime.command-chaining",
            description: "a 600-byte command sent as a CLA-10 chain is reassembled",
            run: |s| {
                with_demo(s, |s| {
                    let data: Vec<u8> = (0..600u32).map(|i| (i * 3) as u8).collect();
                    let echo = Command::new(0x00, 0x30, 0, 0).with_data(data.clone());
                    let r = s.send_chained(&echo)?;
                    Ok(if r.sw != StatusWord::SUCCESS {
                        Outcome::Fail(format!("the chain was answered {}", r.sw))
                    } else if r.data == data {
                        Outcome::Pass
                    } else {
                        Outcome::Fail(format!("echoed {} bytes, not the 600 sent", r.data.len()))
                    })
                })
            },
        },
        Check {
            id: "runtime.logical-channels",
            description: "MANAGE CHANNEL opens channel 1, it keeps its own selection, and closes",
            run: |s| {
                with_demo(s, |s| {
                    let open = s.send("00 70 00 00 01")?;
                    if open.sw != StatusWord::SUCCESS || open.data != [1] {
                        return Ok(Outcome::Fail(format!(
                            "MANAGE CHANNEL open answered {:02X?} {}",
                            open.data, open.sw
                        )));
                    }
                    let select = s.send("01 A4 04 00 09 F0 74 65 73 73 65 72 61 01 00")?;
                    if select.sw != StatusWord::SUCCESS {
                        return Ok(expect_sw(
                            &select,
                            StatusWord::SUCCESS,
                            "SELECT on channel 1",
                        ));
                    }
                    let close = s.send("00 70 80 01")?;
                    if close.sw != StatusWord::SUCCESS {
                        return Ok(expect_sw(
                            &close,
                            StatusWord::SUCCESS,
                            "MANAGE CHANNEL close",
                        ));
                    }
                    let closed = s.send("81 12 00 00")?;
                    Ok(expect_sw(
                        &closed,
                        StatusWord::LOGICAL_CHANNEL_NOT_SUPPORTED,
                        "a command on the closed channel",
                    ))
                })
            },
        },
        Check {
            id: "runtime.pin-status-is-free",
            description: "asking the PIN status (VERIFY without data) never spends a try",
            run: |s| {
                with_demo(s, |s| {
                    let a = s.send("00 20 00 81")?;
                    let b = s.send("00 20 00 81")?;
                    Ok(match (a.sw.retries_left(), b.sw.retries_left()) {
                        (Some(x), Some(y)) if x == y => Outcome::Pass,
                        _ => Outcome::Fail(format!("status answered {} then {}", a.sw, b.sw)),
                    })
                })
            },
        },
        Check {
            id: "runtime.state-survives-reset",
            description:
                "a persistent write is still there after a warm reset; transient data is not",
            run: |s| {
                with_demo(s, |s| {
                    let before = s.send("80 10 00 00 04")?;
                    s.send("80 60 00 00 01 55")?;
                    s.reset()?;
                    s.send(SELECT_DEMO)?;
                    let after = s.send("80 12 00 00 04")?;
                    if after.data != before.data {
                        return Ok(Outcome::Fail(format!(
                            "counter was {:02X?} before the reset and {:02X?} after",
                            before.data, after.data
                        )));
                    }
                    let transient = s.send("80 62 00 00")?;
                    Ok(expect_sw(
                        &transient,
                        StatusWord::REFERENCE_NOT_FOUND,
                        "transient value after reset",
                    ))
                })
            },
        },
    ];
    Suite {
        name: "runtime",
        checks,
    }
}

/// Selects the demo applet, then runs `steps`; skips the check on cards without the demo applet.
fn with_demo(
    s: &mut Session<'_>,
    steps: impl FnOnce(&mut Session<'_>) -> Result<Outcome, String>,
) -> Outcome {
    match s.send_collect(SELECT_DEMO) {
        Ok(r) if r.sw == StatusWord::SUCCESS => Outcome::from_result(steps(s)),
        Ok(r) if r.sw == StatusWord::NOT_FOUND => {
            Outcome::Skip("the card has no tessera demo applet".into())
        }
        Ok(r) => Outcome::Fail(format!("SELECT of the demo applet answered {}", r.sw)),
        Err(e) => Outcome::Fail(e),
    }
}
