//! Answer-to-reset parsing (ISO 7816-3 §8): enough to check that an ATR is well formed and to read its
//! protocols and historical bytes.

/// A parsed ATR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atr {
    /// Protocols the interface bytes announce (T=0 if none is named).
    pub protocols: Vec<u8>,
    pub historical: Vec<u8>,
    /// Whether a TCK byte is present (required unless only T=0 is indicated).
    pub has_tck: bool,
}

/// Parses an ATR; the error names the first problem.
pub fn parse_atr(atr: &[u8]) -> Result<Atr, String> {
    let ts = *atr.first().ok_or("the ATR is empty")?;
    if ts != 0x3B && ts != 0x3F {
        return Err(format!(
            "TS is {ts:02X}; it must be 3B (direct) or 3F (inverse)"
        ));
    }
    let t0 = *atr.get(1).ok_or("the ATR has no T0 byte")?;
    let historical_len = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2;
    let mut protocols = Vec::new();
    loop {
        for mask in [0x1, 0x2, 0x4] {
            if y & mask != 0 {
                i += 1;
            }
        }
        if y & 0x8 == 0 {
            break;
        }
        let td = *atr
            .get(i)
            .ok_or("the ATR ends inside its interface bytes")?;
        protocols.push(td & 0x0F);
        y = td >> 4;
        i += 1;
    }
    if protocols.is_empty() {
        protocols.push(0);
    }
    let historical = atr
        .get(i..i + historical_len)
        .ok_or("the ATR is shorter than T0's historical byte count")?
        .to_vec();
    i += historical_len;
    let needs_tck = protocols.iter().any(|&p| p != 0);
    let has_tck = i < atr.len();
    if needs_tck {
        if !has_tck {
            return Err("a protocol other than T=0 is indicated but TCK is missing".into());
        }
        let xor = atr[1..=i].iter().fold(0u8, |acc, b| acc ^ b);
        if xor != 0 {
            return Err(format!(
                "TCK is wrong: the XOR of T0..TCK is {xor:02X}, not 00"
            ));
        }
        i += 1;
    }
    if i != atr.len() {
        return Err(format!(
            "{} unexpected byte(s) after the ATR",
            atr.len() - i
        ));
    }
    Ok(Atr {
        protocols,
        historical,
        has_tck,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piv_atr_is_t1_with_correct_tck() {
        let atr = [
            0x3B, 0xFB, 0x13, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x15, 0x80, 0xF9, 0xA0, 0x00, 0x00,
            0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x71,
        ];
        let parsed = parse_atr(&atr).unwrap();
        assert_eq!(parsed.protocols, [1, 1]);
        assert_eq!(parsed.historical.len(), 11);
        let mut bad = atr;
        bad[20] ^= 1;
        assert!(parse_atr(&bad).unwrap_err().contains("TCK"));
    }

    #[test]
    fn cns_atr_from_the_domain_is_well_formed() {
        let atr = [
            0x3B, 0xFF, 0x18, 0x00, 0x00, 0x81, 0x31, 0xFE, 0x55, 0x00, 0x6B, 0x02, 0x09, 0x17,
            0x17, 0x01, 0x01, 0x01, 0x43, 0x4E, 0x53, 0x10, 0x31, 0x80, 0x62,
        ];
        assert!(parse_atr(&atr).is_ok());
        assert!(parse_atr(&[0x3B]).is_err());
        assert!(parse_atr(&[0x12, 0x00]).is_err());
        assert!(parse_atr(&[]).is_err());
    }
}
