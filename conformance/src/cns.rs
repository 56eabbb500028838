//! Italian CNS checks that never change the card: the ATR OpenSC's itacns driver matches, the file
//! system (SELECT by FID and by path, FCP templates, READ BINARY at and past the end of an EF), the
//! files OpenSC's PKCS#15 emulator reads, and the PIN status, which spends no try. Cards whose ATR
//! does not say "CNS" skip them.

use apdu::{tlv, Response, StatusWord};

use crate::session::expect_sw;
use crate::{Check, Outcome, Session, Suite};

const SELECT_MF: &str = "00 A4 00 00 02 3F 00 00";
const SELECT_ID_CARTA: &str = "00 A4 08 00 04 10 00 10 03 00";
const SELECT_DATI_PERSONALI: &str = "00 A4 08 00 04 11 00 11 02 00";
const SELECT_CERTIFICATE: &str = "00 A4 08 00 04 11 00 11 01 00";
const SELECT_PUBLIC_KEY: &str = "00 A4 08 00 02 3F 01 00";
/// VERIFY without data on the CNS PIN (reference 10).
const PIN_STATUS: &str = "00 20 00 10";

pub fn suite() -> Suite {
    let checks = vec![
        Check {
            id: "cns.atr",
            description: "the ATR's 15 historical bytes are 00 6B …, 01 (a CNS), \"CNS\", version 1.0 or 1.1, 31 80: what OpenSC's itacns driver matches",
            run: |s| with_cns(s, |_, historical| {
                let ok = historical.starts_with(&[0x00, 0x6B])
                    && historical[6] == 0x01
                    && matches!(historical[12], 0x10 | 0x11)
                    && historical.ends_with(&[0x31, 0x80]);
                Ok(if ok {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("historical bytes {}", apdu::hex_spaced(historical)))
                })
            }),
        },
        Check {
            id: "cns.select-mf",
            description: "SELECT 3F00 answers an FCP template (62) describing a DF (descriptor 38) with FID 3F00",
            run: |s| with_cns(s, |s, _| {
                let r = s.send_collect(SELECT_MF)?;
                if r.sw != StatusWord::SUCCESS {
                    return Ok(expect_sw(&r, StatusWord::SUCCESS, "SELECT MF"));
                }
                let fcp = fcp(&r)?;
                let descriptor = tlv::find(fcp, 0x82u32).map_err(|e| e.to_string())?;
                let fid = tlv::find(fcp, 0x83u32).map_err(|e| e.to_string())?;
                Ok(match (descriptor, fid) {
                    (Some(d), Some([0x3F, 0x00])) if d.first() == Some(&0x38) => Outcome::Pass,
                    _ => Outcome::Fail(format!("FCP {}", apdu::hex_spaced(fcp))),
                })
            }),
        },
        Check {
            id: "cns.id-carta",
            description: "EF_IDCarta (3F00/1000/1003) selected by path is 16 bytes of letters and digits: the serial OpenSC reads",
            run: |s| with_cns(s, |s, _| {
                let (size, content) = read_ef(s, SELECT_ID_CARTA)?;
                Ok(if size == 16 && content.len() == 16 && content.iter().all(u8::is_ascii_alphanumeric) {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("FCP size {size}, content {}", apdu::hex_spaced(&content)))
                })
            }),
        },
        Check {
            id: "cns.read-at-end",
            description: "READ BINARY at the end of an EF answers no data and 62 82 (OpenSC reads in chunks until then)",
            run: |s| with_cns(s, |s, _| {
                let (size, _) = read_ef(s, SELECT_ID_CARTA)?;
                let r = s.send(&format!("00 B0 {:02X} {:02X} 10", size >> 8, size & 0xFF))?;
                Ok(if r.sw == StatusWord::END_OF_FILE && r.data.is_empty() {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("{} data bytes and {}", r.data.len(), r.sw))
                })
            }),
        },
        Check {
            id: "cns.read-past-end",
            description: "READ BINARY past the end of an EF answers 6B00",
            run: |s| with_cns(s, |s, _| {
                let (size, _) = read_ef(s, SELECT_ID_CARTA)?;
                let past = size + 1;
                let r = s.send(&format!("00 B0 {:02X} {:02X} 01", past >> 8, past & 0xFF))?;
                Ok(expect_sw(&r, StatusWord::WRONG_P1P2, "READ BINARY past the end"))
            }),
        },
        Check {
            id: "cns.missing-file",
            description: "SELECT of a path that does not exist answers 6A82",
            run: |s| with_cns(s, |s, _| {
                let r = s.send("00 A4 08 0C 04 11 00 11 99")?;
                Ok(expect_sw(&r, StatusWord::NOT_FOUND, "SELECT 3F00/1100/1199"))
            }),
        },
        Check {
            id: "cns.dati-personali",
            description: "EF_DatiPersonali holds its length in 6 hex digits, then length-prefixed fields with the holder's surname and name (the token label OpenSC makes)",
            run: |s| with_cns(s, |s, _| {
                let (_, content) = read_ef(s, SELECT_DATI_PERSONALI)?;
                if content.is_empty() {
                    return Ok(Outcome::Skip("the card is not personalized (EF_DatiPersonali is empty)".into()));
                }
                Ok(match holder_name(&content) {
                    Some(name) if !name.trim().is_empty() => Outcome::Pass,
                    _ => Outcome::Fail(format!("cannot read the holder from {:?}", String::from_utf8_lossy(&content))),
                })
            }),
        },
        Check {
            id: "cns.certificate-and-key",
            description: "the CNS0 certificate (3F00/1100/1101) is one DER SEQUENCE and EF 3F01 an RSAPublicKey of 1024 or 2048 bits",
            run: |s| with_cns(s, |s, _| {
                let (_, certificate) = read_ef(s, SELECT_CERTIFICATE)?;
                if certificate.is_empty() {
                    return Ok(Outcome::Skip("the card is not personalized (no certificate)".into()));
                }
                let mut reader = apdu::Reader::new(&certificate);
                let whole = tlv::read(&mut reader).map_err(|e| format!("certificate: {e}"))?;
                if whole.tag.0 != 0x30 || !reader.is_empty() {
                    return Ok(Outcome::Fail("the certificate is not exactly one SEQUENCE".into()));
                }
                let (_, key) = read_ef(s, SELECT_PUBLIC_KEY)?;
                let body = tlv::expect(&key, 0x30u32).map_err(|e| format!("EF 3F01: {e}"))?;
                let modulus = tlv::find(body, 0x02u32).map_err(|e| e.to_string())?.unwrap_or_default();
                let bits = modulus.iter().skip_while(|&&b| b == 0).count() * 8;
                Ok(if matches!(bits, 1024 | 2048) {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("a modulus of {bits} bits"))
                })
            }),
        },
        Check {
            id: "cns.pin-status-is-free",
            description: "VERIFY without data (PIN status) answers 63Cx or 9000, the same twice: it spends no try",
            run: |s| with_cns(s, |s, _| {
                let first = s.send(PIN_STATUS)?;
                let second = s.send(PIN_STATUS)?;
                let form = |r: &Response| r.sw.retries_left().is_some() || r.sw == StatusWord::SUCCESS || r.sw == StatusWord::AUTH_METHOD_BLOCKED;
                Ok(if form(&first) && first.sw == second.sw {
                    Outcome::Pass
                } else {
                    Outcome::Fail(format!("answered {} then {}", first.sw, second.sw))
                })
            }),
        },
        Check {
            id: "cns.unknown-instruction",
            description: "an unknown instruction answers 6D00 and the file system stays usable",
            run: |s| with_cns(s, |s, _| {
                let r = s.send("00 E2 00 00")?;
                if r.sw != StatusWord::INS_NOT_SUPPORTED {
                    return Ok(expect_sw(&r, StatusWord::INS_NOT_SUPPORTED, "unknown INS"));
                }
                let again = s.send_collect(SELECT_MF)?;
                Ok(expect_sw(&again, StatusWord::SUCCESS, "SELECT MF afterwards"))
            }),
        },
    ];
    Suite {
        name: "cns",
        checks,
    }
}

/// Runs `steps` with the ATR's historical bytes; skips cards whose ATR does not say CNS.
fn with_cns(
    s: &mut Session<'_>,
    steps: impl FnOnce(&mut Session<'_>, &[u8]) -> Result<Outcome, String>,
) -> Outcome {
    let historical = match s.atr().and_then(|atr| crate::parse_atr(&atr)) {
        Ok(atr) => atr.historical,
        Err(e) => return Outcome::Fail(format!("unreadable ATR: {e}")),
    };
    if historical.len() != 15 || &historical[9..12] != b"CNS" {
        return Outcome::Skip(
            "the card is not a CNS (its ATR's historical bytes do not say CNS)".into(),
        );
    }
    Outcome::from_result(steps(s, &historical))
}

fn fcp(r: &Response) -> Result<&[u8], String> {
    tlv::expect(&r.data, 0x62u32).map_err(|e| format!("not an FCP template: {e}"))
}

/// Selects an EF with its FCP and reads it whole: (size the FCP says, content).
fn read_ef(s: &mut Session<'_>, select: &str) -> Result<(usize, Vec<u8>), String> {
    let r = s.send_collect(select)?;
    if r.sw != StatusWord::SUCCESS {
        return Err(format!("{select} answered {}", r.sw));
    }
    let size = tlv::find(fcp(&r)?, 0x80u32)
        .map_err(|e| e.to_string())?
        .map_or(0, |b| {
            b.iter().fold(0usize, |n, &x| (n << 8) | usize::from(x))
        });
    let mut content = Vec::with_capacity(size);
    while content.len() < size {
        let offset = content.len();
        let want = (size - offset).min(255);
        let r = s.send(&format!(
            "00 B0 {:02X} {:02X} {want:02X}",
            offset >> 8,
            offset & 0xFF
        ))?;
        if r.data.is_empty() || !(r.sw == StatusWord::SUCCESS || r.sw == StatusWord::END_OF_FILE) {
            return Err(format!("READ BINARY at {offset} answered {}", r.sw));
        }
        content.extend_from_slice(&r.data);
    }
    Ok((size, content))
}

/// First and last name from EF_DatiPersonali: after the 6-digit length, fields of 2 hex digits of
/// length each; surname is the 4th, name the 5th.
fn holder_name(file: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(file).ok()?;
    let total = usize::from_str_radix(text.get(..6)?, 16).ok()?;
    let body = text.get(6..6 + total)?;
    let mut fields = Vec::new();
    let mut at = 0;
    for _ in 0..5 {
        let len = usize::from_str_radix(body.get(at..at + 2)?, 16).ok()?;
        fields.push(body.get(at + 2..at + 2 + len)?);
        at += 2 + len;
    }
    Some(format!("{} {}", fields[4], fields[3]))
}

#[cfg(test)]
mod tests {
    use super::holder_name;

    #[test]
    fn the_holder_is_read_as_opensc_reads_it() {
        // Issuer, issue and expiry dates empty, surname, name, then two empty fields: 24 bytes.
        let body = "000000".to_string() + "05ROSSI" + "05MARIO" + "0000";
        let file = format!("{:06X}{body}", body.len());
        assert_eq!(holder_name(file.as_bytes()).as_deref(), Some("MARIO ROSSI"));
        assert_eq!(holder_name(b"0000FFxx"), None, "a length past the file");
        assert_eq!(holder_name(b""), None);
    }
}
