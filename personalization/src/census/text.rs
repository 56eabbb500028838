//! Characters a census must never carry into envelopes, cards and e-mails.
//!
//! Names, surnames, entity names and e-mail addresses are printed on PIN envelopes, written on the
//! card and put in e-mail headers. A control character there (BEL, ESC, NUL) can drive a terminal
//! or a printer; a bidirectional override or isolate makes text display in an order other than
//! the one stored (`"Rossi\u{202E}"`); an invisible character (zero-width space, soft hyphen, word
//! joiner) makes two names that look alike compare different. None of them belongs in a name, so
//! the cell is refused with the character named.
//!
//! Tabs and line breaks are the exception: a spreadsheet cell may wrap (`"Comune di⏎Frascati"`),
//! so they are folded into a single space instead.

use std::borrow::Cow;

/// Why a character is refused: its class and, where it has one, its short name.
pub(crate) fn forbidden(c: char) -> Option<&'static str> {
    let u = u32::from(c);
    named(u).or_else(|| class(u))
}

/// The refused characters a reader may know by name.
fn named(u: u32) -> Option<&'static str> {
    Some(match u {
        0x00 => "NUL, a control character",
        0x07 => "BEL, a control character",
        0x08 => "BS, a control character",
        0x1B => "ESC, a control character",
        0x7F => "DEL, a control character",
        0x85 => "NEL, a control character",
        0x202A => "LEFT-TO-RIGHT EMBEDDING, a bidirectional control",
        0x202B => "RIGHT-TO-LEFT EMBEDDING, a bidirectional control",
        0x202C => "POP DIRECTIONAL FORMATTING, a bidirectional control",
        0x202D => "LEFT-TO-RIGHT OVERRIDE, a bidirectional override",
        0x202E => "RIGHT-TO-LEFT OVERRIDE, a bidirectional override",
        0x2066 => "LEFT-TO-RIGHT ISOLATE, a bidirectional isolate",
        0x2067 => "RIGHT-TO-LEFT ISOLATE, a bidirectional isolate",
        0x2068 => "FIRST STRONG ISOLATE, a bidirectional isolate",
        0x2069 => "POP DIRECTIONAL ISOLATE, a bidirectional isolate",
        0x200B => "ZERO WIDTH SPACE, an invisible character",
        0x200C => "ZERO WIDTH NON-JOINER, an invisible character",
        0x200D => "ZERO WIDTH JOINER, an invisible character",
        0x2060 => "WORD JOINER, an invisible character",
        0xFEFF => "ZERO WIDTH NO-BREAK SPACE (byte order mark), an invisible character",
        0x00AD => "SOFT HYPHEN, an invisible character",
        0x2028 => "LINE SEPARATOR, a line break",
        0x2029 => "PARAGRAPH SEPARATOR, a line break",
        0xFFFD => "REPLACEMENT CHARACTER, left where the file's bytes were not valid text",
        _ => return None,
    })
}

/// The classes of refused characters.
fn class(u: u32) -> Option<&'static str> {
    Some(match u {
        0x00..=0x1F | 0x80..=0x9F => "a control character",
        0x061C | 0x200E | 0x200F => "a bidirectional mark",
        // The rest of Unicode's format characters (general category Cf): invisible.
        0x0600..=0x0605
        | 0x06DD
        | 0x070F
        | 0x0890..=0x0891
        | 0x08E2
        | 0x180E
        | 0x2061..=0x2064
        | 0x206A..=0x206F
        | 0xFFF9..=0xFFFB
        | 0x110BD
        | 0x110CD
        | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A
        | 0xE0001
        | 0xE0020..=0xE007F => "a format character, invisible",
        0xFDD0..=0xFDEF => "a noncharacter",
        _ if u & 0xFFFE == 0xFFFE => "a noncharacter",
        0xE000..=0xF8FF | 0xF0000..=0x10FFFF => "a private-use character",
        _ => return None,
    })
}

/// A refused character of a cell: its 1-based position (in characters) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Forbidden {
    pub position: usize,
    pub character: char,
    pub why: &'static str,
}

impl Forbidden {
    /// `character 3 is U+202E (RIGHT-TO-LEFT OVERRIDE, a bidirectional override)`.
    pub fn describe(&self) -> String {
        format!(
            "character {} is U+{:04X} ({})",
            self.position,
            u32::from(self.character),
            self.why
        )
    }
}

/// A text cell as it may be printed: tabs and line breaks folded into one space; or the first
/// forbidden character.
pub(crate) fn printable(cell: &str) -> Result<Cow<'_, str>, Forbidden> {
    // Most cells are printable ASCII: nothing to look up.
    if cell.bytes().all(|b| (0x20..0x7F).contains(&b)) {
        return Ok(Cow::Borrowed(cell));
    }
    let mut folds = false;
    for (i, c) in cell.chars().enumerate() {
        if matches!(c, '\t' | '\n' | '\r') {
            folds = true;
        } else if let Some(why) = forbidden(c) {
            return Err(Forbidden {
                position: i + 1,
                character: c,
                why,
            });
        }
    }
    if !folds {
        return Ok(Cow::Borrowed(cell));
    }
    let mut out = String::with_capacity(cell.len());
    let mut in_break = false;
    for c in cell.chars() {
        if matches!(c, '\t' | '\n' | '\r') || (in_break && c == ' ') {
            if !in_break && !out.ends_with(' ') {
                out.push(' ');
            }
            in_break = true;
        } else {
            in_break = false;
            out.push(c);
        }
    }
    Ok(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass_unchanged() {
        for name in [
            "Rossi",
            "D\u{2019}Angelo",
            "Niccolò",
            "Maria Grazia",
            "Comune di Genzano di Roma",
            "Ça\u{00A0}va",
            "Ελένη",
            "O'Brien-Smith",
        ] {
            assert_eq!(printable(name), Ok(Cow::Borrowed(name)));
        }
    }

    #[test]
    fn line_breaks_fold_into_one_space() {
        assert_eq!(
            printable("Comune di\r\nFrascati").unwrap(),
            "Comune di Frascati"
        );
        assert_eq!(
            printable("Comune\tdi\n  Frascati").unwrap(),
            "Comune di Frascati"
        );
    }

    #[test]
    fn each_class_is_refused_with_its_code_point() {
        for (text, position, code) in [
            ("Ros\u{0}si", 4, 0x0),
            ("\u{7}Rossi", 1, 0x7),
            ("Rossi\u{1B}[2J", 6, 0x1B),
            ("Ro\u{7F}ssi", 3, 0x7F),
            ("Ro\u{9B}ssi", 3, 0x9B),
            ("Rossi\u{202E}", 6, 0x202E),
            ("\u{202A}Rossi", 1, 0x202A),
            ("Ro\u{2066}ssi\u{2069}", 3, 0x2066),
            ("Ro\u{200B}ssi", 3, 0x200B),
            ("Ros\u{AD}si", 4, 0xAD),
            ("Rossi\u{FEFF}", 6, 0xFEFF),
            ("Ro\u{2028}ssi", 3, 0x2028),
            ("Ro\u{E0041}ssi", 3, 0xE0041),
            ("Ro\u{E000}ssi", 3, 0xE000),
            ("Ro\u{FFFF}ssi", 3, 0xFFFF),
            ("Niccol\u{FFFD}", 7, 0xFFFD),
        ] {
            let refused = printable(text).unwrap_err();
            assert_eq!(refused.position, position, "{text:?}");
            assert_eq!(u32::from(refused.character), code, "{text:?}");
            assert!(
                refused.describe().contains(&format!("U+{code:04X}")),
                "{}",
                refused.describe()
            );
        }
    }
}
