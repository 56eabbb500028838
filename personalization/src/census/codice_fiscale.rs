//! The Italian *codice fiscale* of a natural person: structure, omocodia and check character.
//!
//! Layout (16 characters, positions 1-based):
//!
//! | positions | content |
//! |---|---|
//! | 1–6 | three letters of the surname, three of the name |
//! | 7–8 | year of birth (two digits) |
//! | 9 | month of birth, one of `ABCDEHLMPRST` |
//! | 10–11 | day of birth, `01`–`31` for men, `41`–`71` for women (day + 40) |
//! | 12–15 | municipality (Belfiore) code: a letter and three digits |
//! | 16 | check character |
//!
//! **Omocodia**: when two people would get the same code, the Agenzia delle Entrate replaces digits
//! (from the right) in positions 7, 8, 10, 11, 13, 14, 15 with the letters `LMNPQRSTUV` (standing for
//! `0`–`9`) and recomputes the check character. Such codes are accepted here.

/// Letters that replace the digits `0`–`9` in an omocodia code.
pub(crate) const OMOCODIA: &[u8; 10] = b"LMNPQRSTUV";

/// Month letters, January to December.
pub(crate) const MONTHS: &[u8; 12] = b"ABCDEHLMPRST";

/// 0-based indexes of the positions whose digits omocodia may replace.
pub(crate) const OMOCODIA_POSITIONS: [usize; 7] = [6, 7, 9, 10, 12, 13, 14];

/// Values of a character in an odd position (1st, 3rd, …) for the check character, `0`–`9` then `A`–`Z`.
const ODD: [u32; 36] = [
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // 0-9
    1, 0, 5, 7, 9, 13, 15, 17, 19, 21, // A-J
    2, 4, 18, 20, 11, 3, 6, 8, 12, 14, // K-T
    16, 10, 22, 25, 24, 23, // U-Z
];

/// Why a codice fiscale was rejected: its shape, or only its check character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Problem {
    /// Not the 16-character structure (the message says what is wrong).
    Malformed(String),
    /// Well formed, but the 16th character is not the one the first 15 call for.
    CheckCharacter { found: char, expected: char },
}

impl Problem {
    fn message(&self) -> String {
        match self {
            Problem::Malformed(why) => why.clone(),
            Problem::CheckCharacter { found, expected } => {
                format!("check character is {found}, expected {expected}")
            }
        }
    }
}

fn index_of(c: u8) -> Option<usize> {
    match c {
        b'0'..=b'9' => Some(usize::from(c - b'0')),
        b'A'..=b'Z' => Some(10 + usize::from(c - b'A')),
        _ => None,
    }
}

/// The check character (16th) for the first 15 characters of a codice fiscale, computed with the
/// official odd/even tables. Case-insensitive; `None` unless given exactly 15 ASCII letters/digits.
/// The result is an upper-case letter.
pub fn check_character(first15: &str) -> Option<char> {
    let bytes = first15.as_bytes();
    if bytes.len() != 15 {
        return None;
    }
    let mut sum = 0u32;
    for (i, &b) in bytes.iter().enumerate() {
        let c = b.to_ascii_uppercase();
        let idx = index_of(c)?;
        sum += if i % 2 == 0 {
            // 1-based odd position
            ODD[idx]
        } else if c.is_ascii_digit() {
            u32::from(c - b'0')
        } else {
            u32::from(c - b'A')
        };
    }
    let rem = u8::try_from(sum % 26).ok()?;
    Some(char::from(b'A' + rem))
}

/// The digit value of a character in an omocodia-capable position: a digit, or its omocodia letter.
fn omocodia_digit(c: u8) -> Option<u8> {
    if c.is_ascii_digit() {
        return Some(c - b'0');
    }
    OMOCODIA
        .iter()
        .position(|&l| l == c)
        .and_then(|p| u8::try_from(p).ok())
}

/// Classifies a codice fiscale: normalized (upper case) or the problem.
pub(crate) fn classify(cf: &str) -> Result<String, Problem> {
    let upper = cf.trim().to_ascii_uppercase();
    let b = upper.as_bytes();
    if !upper.is_ascii() {
        return Err(Problem::Malformed(
            "contains characters other than letters and digits".into(),
        ));
    }
    if b.len() != 16 {
        return Err(Problem::Malformed(format!(
            "has {} characters, expected 16",
            b.len()
        )));
    }
    if let Some(p) = b.iter().position(|c| !c.is_ascii_alphanumeric()) {
        return Err(Problem::Malformed(format!(
            "character {} ({:?}) is not a letter or a digit",
            p + 1,
            char::from(b[p])
        )));
    }
    if let Some(p) = b[..6].iter().position(|c| !c.is_ascii_uppercase()) {
        return Err(Problem::Malformed(format!(
            "character {} must be a letter (surname/name)",
            p + 1
        )));
    }
    for &p in &OMOCODIA_POSITIONS {
        if omocodia_digit(b[p]).is_none() {
            return Err(Problem::Malformed(format!(
                "character {} must be a digit (or an omocodia letter {})",
                p + 1,
                "LMNPQRSTUV"
            )));
        }
    }
    if !MONTHS.contains(&b[8]) {
        return Err(Problem::Malformed(format!(
            "character 9 ({}) is not a month letter (ABCDEHLMPRST)",
            char::from(b[8])
        )));
    }
    let d1 = omocodia_digit(b[9]).unwrap_or(0);
    let d2 = omocodia_digit(b[10]).unwrap_or(0);
    let day = d1 * 10 + d2;
    if !((1..=31).contains(&day) || (41..=71).contains(&day)) {
        return Err(Problem::Malformed(format!(
            "day of birth {day:02} is not 01-31 (men) or 41-71 (women)"
        )));
    }
    if !b[11].is_ascii_uppercase() {
        return Err(Problem::Malformed(
            "character 12 must be a letter (municipality code)".into(),
        ));
    }
    if !b[15].is_ascii_uppercase() {
        return Err(Problem::Malformed(
            "character 16 (check character) must be a letter".into(),
        ));
    }
    let expected = check_character(&upper[..15])
        .ok_or_else(|| Problem::Malformed("cannot compute the check character".into()))?;
    let found = char::from(b[15]);
    if found != expected {
        return Err(Problem::CheckCharacter { found, expected });
    }
    Ok(upper)
}

/// Validates a codice fiscale (case-insensitive, surrounding spaces ignored; omocodia accepted).
/// Returns the normalized (upper-case) code, or why it is invalid.
pub fn validate(cf: &str) -> Result<String, String> {
    classify(cf).map_err(|p| p.message())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_codes() {
        // Widely published sample codes.
        assert_eq!(check_character("RSSMRA85T10A562"), Some('S'));
        assert_eq!(validate("RSSMRA85T10A562S").unwrap(), "RSSMRA85T10A562S");
        assert_eq!(validate(" rssmra85t10a562s ").unwrap(), "RSSMRA85T10A562S");
        assert_eq!(check_character("MRTMTT25D09F205"), Some('Z'));
    }

    #[test]
    fn rejections() {
        assert!(matches!(
            classify("RSSMRA85T10A562T"),
            Err(Problem::CheckCharacter {
                found: 'T',
                expected: 'S'
            })
        ));
        assert!(matches!(
            classify("RSSMRA85T10A562"),
            Err(Problem::Malformed(_))
        ));
        assert!(matches!(
            classify("RSSMRA85Z10A562S"),
            Err(Problem::Malformed(_))
        )); // month
        assert!(matches!(
            classify("RSSMRA85T32A562S"),
            Err(Problem::Malformed(_))
        )); // day 32
        assert!(matches!(
            classify("RSSMRA85T00A562S"),
            Err(Problem::Malformed(_))
        )); // day 00
        assert!(matches!(
            classify("RSSMRA85T72A562S"),
            Err(Problem::Malformed(_))
        )); // day 72
        assert!(matches!(
            classify("RSSMR185T10A562S"),
            Err(Problem::Malformed(_))
        )); // digit in name
        assert!(matches!(
            classify("RSSMRAA5T10A562S"),
            Err(Problem::Malformed(_))
        )); // A is not omocodia
        assert!(matches!(
            classify("RSSMRA85T10A56-S"),
            Err(Problem::Malformed(_))
        ));
        assert!(matches!(
            classify("RSSMRA85T10À562S"),
            Err(Problem::Malformed(_))
        ));
        assert_eq!(check_character("RSSMRA85T10A56"), None);
        assert_eq!(check_character("RSSMRA85T10A56-"), None);
    }

    #[test]
    fn omocodia_code() {
        // Last digit of the municipality code replaced: 2 -> N.
        let first15 = "RSSMRA85T10A56N";
        let cf = format!("{first15}{}", check_character(first15).unwrap());
        assert_eq!(validate(&cf).unwrap(), cf);
        // Every omocodia position replaced.
        let first15 = "RSSMRAURTLMAQTN";
        let cf = format!("{first15}{}", check_character(first15).unwrap());
        assert_eq!(validate(&cf.to_lowercase()).unwrap(), cf);
    }

    /// A generated well-formed first 15 characters of a codice fiscale.
    fn first15() -> impl Strategy<Value = String> {
        (
            "[A-Z]{6}",
            0u8..100,
            0usize..12,
            prop_oneof![1u8..=31, 41u8..=71],
            "[A-Z]",
            0u16..1000,
        )
            .prop_map(|(letters, year, month, day, town, number)| {
                format!(
                    "{letters}{year:02}{}{day:02}{town}{number:03}",
                    char::from(MONTHS[month])
                )
            })
    }

    proptest! {
        #[test]
        fn check_character_round_trips(f in first15()) {
            let c = check_character(&f).unwrap();
            let cf = format!("{f}{c}");
            prop_assert_eq!(validate(&cf), Ok(cf.clone()));
            prop_assert_eq!(validate(&cf.to_lowercase()), Ok(cf.clone()));
            prop_assert_eq!(check_character(&cf[..15]), Some(c));
            // Any other check letter is reported as a wrong check character.
            let other = char::from(b'A' + (c as u8 - b'A' + 1) % 26);
            let wrong = format!("{f}{other}");
            let is_check_problem = matches!(classify(&wrong), Err(Problem::CheckCharacter { .. }));
            prop_assert!(is_check_problem);
        }

        #[test]
        fn omocodia_keeps_validity(f in first15(), mask in 1u8..128) {
            let mut bytes = f.into_bytes();
            for (bit, &pos) in OMOCODIA_POSITIONS.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    bytes[pos] = OMOCODIA[usize::from(bytes[pos] - b'0')];
                }
            }
            let f = String::from_utf8(bytes).unwrap();
            let cf = format!("{f}{}", check_character(&f).unwrap());
            prop_assert_eq!(validate(&cf), Ok(cf.clone()));
        }

        #[test]
        fn single_substitution_is_detected(f in first15(), pos in 0usize..15, shift in 1u8..10) {
            let cf = format!("{f}{}", check_character(&f).unwrap());
            let mut bytes = cf.clone().into_bytes();
            let c = bytes[pos];
            // Replace with another character of the same class (letter or digit).
            bytes[pos] = if c.is_ascii_digit() {
                b'0' + (c - b'0' + shift) % 10
            } else {
                b'A' + (c - b'A' + shift) % 26
            };
            let changed = String::from_utf8(bytes).unwrap();
            // Either the structure breaks (month letter, day) or the check character catches it.
            prop_assert!(classify(&changed).is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(s in "\\PC{0,20}") {
            let _ = validate(&s);
            let _ = check_character(&s);
        }
    }
}
