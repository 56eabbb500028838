//! PIV checks that never change the card: they read objects, ask the PIN status (which spends no try)
//! and probe error answers, so QA can run them against a physical PIV card as safely as a virtual one.
//! Cards without a PIV application skip them.

use apdu::{tlv, StatusWord};

use crate::session::expect_sw;
use crate::{Check, Outcome, Session, Suite};

const SELECT_PIV_PREFIX: &str = "00 A4 04 00 05 A0 00 00 03 08 00";
const PIV_AID: [u8; 11] = [
    0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00,
];

pub fn suite() -> Suite {
    let checks = vec![
        Check {
            id: "piv.select-template",
            description: "SELECT by the 5-byte prefix answers an application property template (61) naming the PIV AID",
            run: |s| with_piv(s, |_, template| {
                let body = tlv::expect(template, 0x61u32).map_err(|e| format!("not a 61 template: {e}"))?;
                let aid = tlv::find(body, 0x4Fu32).map_err(|e| e.to_string())?.ok_or("no 4F in the template")?;
                // The template names the PIX (`00 00 10 00 01 00`) or the whole AID.
                Ok(if !aid.is_empty() && PIV_AID.ends_with(aid) {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("4F names {}", apdu::hex_spaced(aid)))
                })
            }),
        },
        Check {
            id: "piv.no-secure-messaging-advertised",
            description: "the template does not advertise secure messaging (AC with 80 27/80 2E), which OpenSC would try",
            run: |s| with_piv(s, |_, template| {
                let body = tlv::expect(template, 0x61u32).map_err(|e| e.to_string())?;
                Ok(match tlv::find(body, 0xACu32).map_err(|e| e.to_string())? {
                    Some(ac) if ac.windows(2).any(|w| w == [0x80, 0x27] || w == [0x80, 0x2E]) => {
                        Outcome::Fail("AC advertises an SM algorithm".into())
                    }
                    _ => Outcome::Pass,
                })
            }),
        },
        Check {
            id: "piv.discovery",
            description: "the Discovery object (7E) names the PIV AID and a PIN usage policy",
            run: |s| with_piv(s, |s, _| {
                let r = s.send_collect("00 CB 3F FF 03 5C 01 7E 00")?;
                if r.sw != StatusWord::SUCCESS {
                    return Ok(expect_sw(&r, StatusWord::SUCCESS, "GET DATA Discovery"));
                }
                let body = tlv::expect(&r.data, 0x7Eu32).map_err(|e| format!("not a 7E object: {e}"))?;
                let aid = tlv::find(body, 0x4Fu32).map_err(|e| e.to_string())?;
                let policy = tlv::find(body, 0x5F2Fu32).map_err(|e| e.to_string())?;
                Ok(match (aid, policy) {
                    (Some(_), Some(p)) if p.len() == 2 => Outcome::Pass,
                    _ => Outcome::Fail("Discovery lacks 4F or a 2-byte 5F2F PIN policy".into()),
                })
            }),
        },
        Check {
            id: "piv.chuid-guid",
            description: "the CHUID carries a 16-byte GUID (tag 34) that is not all zeros",
            run: |s| with_piv(s, |s, _| {
                let r = s.send_collect("00 CB 3F FF 05 5C 03 5F C1 02 00")?;
                if r.sw != StatusWord::SUCCESS {
                    return Ok(expect_sw(&r, StatusWord::SUCCESS, "GET DATA CHUID"));
                }
                let body = tlv::expect(&r.data, 0x53u32).map_err(|e| format!("not a 53 object: {e}"))?;
                Ok(match tlv::find(body, 0x34u32).map_err(|e| e.to_string())? {
                    Some(guid) if guid.len() == 16 && guid.iter().any(|&b| b != 0) => Outcome::Pass,
                    Some(guid) => Outcome::Fail(format!("GUID {} is not a unique 16-byte value", apdu::hex_spaced(guid))),
                    None => Outcome::Fail("no GUID (34) in the CHUID".into()),
                })
            }),
        },
        Check {
            id: "piv.absent-object",
            description: "GET DATA of an unused retired-key certificate object answers 6A82",
            run: |s| with_piv(s, |s, _| {
                let r = s.send("00 CB 3F FF 05 5C 03 5F C1 20 00")?;
                Ok(if r.sw == StatusWord::NOT_FOUND || r.sw == StatusWord::SUCCESS {
                    // A card may hold a key in slot 95; only a wrong status word is a failure.
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("answered {}", r.sw))
                })
            }),
        },
        Check {
            id: "piv.malformed-get-data",
            description: "GET DATA with a malformed tag list answers 6A80, not a crash or a success",
            run: |s| with_piv(s, |s, _| {
                let r = s.send("00 CB 3F FF 04 5C 05 5F C1 00")?;
                Ok(if r.sw == StatusWord::INCORRECT_DATA || r.sw == StatusWord::WRONG_LENGTH {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("answered {}", r.sw))
                })
            }),
        },
        Check {
            id: "piv.pin-status-is-free",
            description: "VERIFY without data (PIN status) answers 63Cx or 9000 and never spends a try",
            run: |s| with_piv(s, |s, _| {
                let a = s.send("00 20 00 80")?;
                let b = s.send("00 20 00 80")?;
                Ok(match (a.sw.retries_left(), b.sw.retries_left()) {
                    (Some(x), Some(y)) if x == y && x > 0 => Outcome::Pass,
                    (Some(x), Some(y)) if x == y => Outcome::Skip("the PIN is blocked".into()),
                    _ if a.sw == b.sw && (a.sw == StatusWord::SUCCESS || a.sw == StatusWord::AUTH_METHOD_BLOCKED) => Outcome::Pass,
                    _ => Outcome::Fail(format!("status answered {} then {}", a.sw, b.sw)),
                })
            }),
        },
        Check {
            id: "piv.verify-wrong-length",
            description: "VERIFY with a 3-byte PIN field is refused as malformed without spending a try",
            run: |s| with_piv(s, |s, _| {
                let before = s.send("00 20 00 80")?;
                let r = s.send_secret("00 20 00 80 03 31 32 33")?;
                let after = s.send("00 20 00 80")?;
                if r.sw.retries_left().is_some() || r.sw == StatusWord::SUCCESS {
                    return Ok(Outcome::Fail(format!("a 3-byte PIN field was compared ({})", r.sw)));
                }
                Ok(if before.sw == after.sw {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("the try counter moved: {} → {}", before.sw, after.sw))
                })
            }),
        },
        Check {
            id: "piv.management-witness",
            description: "GENERAL AUTHENTICATE 9B witness request answers one encrypted block in 7C 80",
            run: |s| with_piv(s, |s, _| {
                // Ask the card which algorithm its management key uses (YubiKey F7), 3DES if it cannot say.
                let meta = s.send("00 F7 00 9B 00")?;
                let alg = if meta.sw == StatusWord::SUCCESS {
                    tlv::find(&meta.data, 0x01u32).ok().flatten().and_then(|v| v.first().copied()).unwrap_or(0x03)
                } else {
                    0x03
                };
                let r = s.send_collect(&format!("00 87 {alg:02X} 9B 04 7C 02 80 00 00"))?;
                if r.sw != StatusWord::SUCCESS {
                    return Ok(expect_sw(&r, StatusWord::SUCCESS, "witness request"));
                }
                let block = if alg == 0x03 { 8 } else { 16 };
                let body = tlv::expect(&r.data, 0x7Cu32).map_err(|e| e.to_string())?;
                Ok(match tlv::find(body, 0x80u32).map_err(|e| e.to_string())? {
                    Some(w) if w.len() == block => Outcome::Pass,
                    Some(w) => Outcome::Fail(format!("witness of {} bytes, expected {block}", w.len())),
                    None => Outcome::Fail("no 80 witness".into()),
                })
            }),
        },
        Check {
            id: "piv.unknown-instruction",
            description: "an unknown instruction answers 6D00 and PIV stays usable",
            run: |s| with_piv(s, |s, _| {
                let r = s.send("00 E2 00 00")?;
                if r.sw != StatusWord::INS_NOT_SUPPORTED {
                    return Ok(expect_sw(&r, StatusWord::INS_NOT_SUPPORTED, "unknown INS"));
                }
                let status = s.send("00 20 00 80")?;
                Ok(if status.sw.retries_left().is_some() || status.sw == StatusWord::SUCCESS {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("PIV stopped answering: {}", status.sw))
                })
            }),
        },
    ];
    Suite {
        name: "piv",
        checks,
    }
}

/// Selects PIV by prefix, then runs `steps` with the SELECT answer; skips cards without PIV.
fn with_piv(
    s: &mut Session<'_>,
    steps: impl FnOnce(&mut Session<'_>, &[u8]) -> Result<Outcome, String>,
) -> Outcome {
    match s.send_collect(SELECT_PIV_PREFIX) {
        Ok(r) if r.sw == StatusWord::SUCCESS => Outcome::from_result(steps(s, &r.data)),
        Ok(r) if r.sw == StatusWord::NOT_FOUND => {
            Outcome::Skip("the card has no PIV application".into())
        }
        Ok(r) => Outcome::Fail(format!("SELECT PIV answered {}", r.sw)),
        Err(e) => Outcome::Fail(e),
    }
}
