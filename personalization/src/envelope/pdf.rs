//! The printed insert of a sealed envelope: one A4 page in the PDF standard fonts (Helvetica and
//! Courier, WinAnsi-encoded: Latin-1 names print correctly, anything else prints as `?`).
//!
//! The file is written here, not by a PDF library: a page of text, two boxes and two rules in the
//! standard fonts is a few objects and one content stream (ISO 32000-1 §7), and a bureau renders one
//! per card — a general PDF library cost more CPU per envelope than the card's own key generation.
//! `pdftotext` and `pdftoppm` read every envelope in the tests.

use std::fmt::Write as _;

use super::EnvelopeContent;

pub const TITLE: &str = "Busta sigillata / Sealed envelope – STAGING, NOT A REAL CARD";

const PAGE_WIDTH_MM: f32 = 210.0;
const PAGE_HEIGHT_MM: f32 = 297.0;
const MARGIN_MM: f32 = 18.0;

/// PostScript points per millimetre.
const PT_PER_MM: f32 = 72.0 / 25.4;

fn pt(mm: f32) -> f32 {
    mm * PT_PER_MM
}

/// The standard fonts the page uses (every PDF reader has them; nothing is embedded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Font {
    Helvetica,
    HelveticaBold,
    HelveticaOblique,
    Courier,
    CourierBold,
}

impl Font {
    const ALL: [Font; 5] = [
        Font::Helvetica,
        Font::HelveticaBold,
        Font::HelveticaOblique,
        Font::Courier,
        Font::CourierBold,
    ];

    fn base_font(self) -> &'static str {
        match self {
            Font::Helvetica => "Helvetica",
            Font::HelveticaBold => "Helvetica-Bold",
            Font::HelveticaOblique => "Helvetica-Oblique",
            Font::Courier => "Courier",
            Font::CourierBold => "Courier-Bold",
        }
    }

    /// The resource name the content stream uses (`/F1` …).
    fn resource(self) -> usize {
        Font::ALL.iter().position(|f| *f == self).unwrap_or(0) + 1
    }
}

#[derive(Debug, Clone, Copy)]
struct Color(f32, f32, f32);

fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color(r, g, b)
}

fn black() -> Color {
    rgb(0.0, 0.0, 0.0)
}

fn grey() -> Color {
    rgb(0.35, 0.35, 0.35)
}

fn red() -> Color {
    rgb(0.75, 0.05, 0.05)
}

#[derive(Debug, Clone, Copy)]
enum Paint {
    Stroke,
    FillAndStroke,
}

/// A number as a PDF real: at most two decimals, no exponent, no trailing zeros. (Integer arithmetic:
/// float formatting was a tenth of an envelope's cost; and written straight into the page, not into a
/// string of its own: a page has a few hundred numbers.)
fn num(value: f32) -> Num {
    Num((value * 100.0).round() as i64)
}

/// A number in hundredths, displayed as [`num`] says.
struct Num(i64);

impl std::fmt::Display for Num {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let centi = self.0;
        if centi < 0 {
            f.write_str("-")?;
        }
        let centi = centi.unsigned_abs();
        let (whole, fraction) = (centi / 100, centi % 100);
        match (fraction, fraction % 10) {
            (0, _) => write!(f, "{whole}"),
            (_, 0) => write!(f, "{whole}.{}", fraction / 10),
            _ => write!(f, "{whole}.{fraction:02}"),
        }
    }
}

/// `text` as a PDF literal string in WinAnsiEncoding: `(`, `)` and `\` escaped, every byte outside
/// printable ASCII as an octal escape (so the file stays ASCII), characters WinAnsi lacks as `?`.
fn literal(text: &str) -> Literal<'_> {
    Literal(text)
}

struct Literal<'a>(&'a str);

impl std::fmt::Display for Literal<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::fmt::Write as _;
        f.write_char('(')?;
        for c in self.0.chars() {
            let byte = win_ansi(c);
            match byte {
                b'(' | b')' | b'\\' => {
                    f.write_char('\\')?;
                    f.write_char(char::from(byte))?;
                }
                0x20..=0x7E => f.write_char(char::from(byte))?,
                _ => write!(f, "\\{byte:03o}")?,
            }
        }
        f.write_char(')')
    }
}

/// The WinAnsiEncoding byte of `c` (ISO 32000-1 Annex D.2), `?` if it has none.
fn win_ansi(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        '\u{A0}'..='\u{FF}' => c as u32 as u8,
        '€' => 0x80,
        '‚' => 0x82,
        '„' => 0x84,
        '…' => 0x85,
        '‘' => 0x91,
        '’' => 0x92,
        '“' => 0x93,
        '”' => 0x94,
        '•' => 0x95,
        '–' => 0x96,
        '—' => 0x97,
        'Š' => 0x8A,
        'š' => 0x9A,
        'Œ' => 0x8C,
        'œ' => 0x9C,
        'Ž' => 0x8E,
        'ž' => 0x9E,
        'Ÿ' => 0x9F,
        _ => b'?',
    }
}

/// Builds the page's content stream top-down, tracking the baseline in millimetres from the top.
struct Page {
    content: String,
    /// Distance of the next baseline from the top edge, in mm.
    y: f32,
}

impl Page {
    fn new() -> Self {
        Self {
            content: String::with_capacity(8 * 1024),
            y: MARGIN_MM,
        }
    }

    fn text_at(&mut self, x_mm: f32, font: Font, size: f32, color: Color, text: &str) {
        let Color(r, g, b) = color;
        let _ = writeln!(
            self.content,
            "BT {} {} {} rg /F{} {} Tf {} {} Td {} Tj ET",
            num(r),
            num(g),
            num(b),
            font.resource(),
            num(size),
            num(pt(x_mm)),
            num(pt(PAGE_HEIGHT_MM - self.y)),
            literal(text)
        );
    }

    /// One line of text at the left margin, then moves down by `advance` mm.
    fn line(&mut self, font: Font, size: f32, color: Color, text: &str, advance: f32) {
        self.text_at(MARGIN_MM, font, size, color, text);
        self.y += advance;
    }

    /// A word-wrapped paragraph at the left margin.
    fn paragraph(&mut self, font: Font, size: f32, color: Color, text: &str, width_mm: f32) {
        let line_height = size * 0.3528 * 1.35;
        for line in wrap(text, width_mm, size) {
            self.line(font, size, color, &line, line_height);
        }
    }

    /// "label" in small grey, "value" in larger type beside it.
    fn field(&mut self, label: &str, value: &str) {
        self.text_at(MARGIN_MM, Font::Helvetica, 9.0, grey(), label);
        self.text_at(MARGIN_MM + 55.0, Font::HelveticaBold, 12.0, black(), value);
        self.y += 7.0;
    }

    fn rect(&mut self, top_mm: f32, height_mm: f32, paint: Paint, fill: Color, stroke: Color) {
        let width = PAGE_WIDTH_MM - 2.0 * MARGIN_MM;
        let (Color(fr, fg, fb), Color(sr, sg, sb)) = (fill, stroke);
        let operator = match paint {
            Paint::Stroke => "S",
            Paint::FillAndStroke => "B",
        };
        let _ = writeln!(
            self.content,
            "q {} {} {} rg {} {} {} RG 1.2 w {} {} {} {} re {operator} Q",
            num(fr),
            num(fg),
            num(fb),
            num(sr),
            num(sg),
            num(sb),
            num(pt(MARGIN_MM - 3.0)),
            num(pt(PAGE_HEIGHT_MM - top_mm - height_mm)),
            num(pt(width + 6.0)),
            num(pt(height_mm)),
        );
    }

    fn rule(&mut self) {
        let Color(r, g, b) = grey();
        let y = num(pt(PAGE_HEIGHT_MM - self.y));
        let _ = writeln!(
            self.content,
            "q {} {} {} RG 0.6 w {} {y} m {} {y} l S Q",
            num(r),
            num(g),
            num(b),
            num(pt(MARGIN_MM)),
            num(pt(PAGE_WIDTH_MM - MARGIN_MM)),
        );
        self.y += 6.0;
    }

    /// The whole file: catalog, page tree, the page, its content stream, the fonts, the document
    /// information, the cross-reference table and the trailer.
    fn finish(self, title: &str) -> Vec<u8> {
        let fonts: String = Font::ALL
            .iter()
            .map(|font| format!("/F{} {} 0 R", font.resource(), 5 + font.resource()))
            .collect::<Vec<_>>()
            .join(" ");
        let mut objects = vec![
            "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {} {}] /Resources << /Font << {fonts} >> >> /Contents 4 0 R >>",
                num(pt(PAGE_WIDTH_MM)),
                num(pt(PAGE_HEIGHT_MM))
            ),
            format!(
                "<< /Length {} >>\nstream\n{}endstream",
                self.content.len(),
                self.content
            ),
            format!(
                "<< /Title {} /Producer (tessera staging bureau) >>",
                literal(title)
            ),
        ];
        for font in Font::ALL {
            objects.push(format!(
                "<< /Type /Font /Subtype /Type1 /BaseFont /{} /Encoding /WinAnsiEncoding >>",
                font.base_font()
            ));
        }
        // The comment of four bytes above 127 marks the file as binary for transfer tools (§7.5.2).
        let mut bytes = Vec::with_capacity(self.content.len() + 2048);
        bytes.extend_from_slice(b"%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
        let mut offsets = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            offsets.push(bytes.len());
            bytes.extend_from_slice(format!("{} 0 obj\n{object}\nendobj\n", index + 1).as_bytes());
        }
        let xref = bytes.len();
        let mut table = format!("xref\n0 {}\n0000000000 65535 f\r\n", objects.len() + 1);
        for offset in offsets {
            let _ = write!(table, "{offset:010} 00000 n\r\n");
        }
        let _ = write!(
            table,
            "trailer\n<< /Size {} /Root 1 0 R /Info 5 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        );
        bytes.extend_from_slice(table.as_bytes());
        bytes
    }
}

/// Greedy word wrap for Helvetica, with a conservative average glyph width of 0.55 em.
fn wrap(text: &str, width_mm: f32, size_pt: f32) -> Vec<String> {
    let char_mm = size_pt * 0.55 * 0.3528;
    let max = ((width_mm / char_mm) as usize).max(10);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        let needed =
            current.chars().count() + usize::from(!current.is_empty()) + word.chars().count();
        if !current.is_empty() && needed > max {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

pub fn render(content: &EnvelopeContent) -> Vec<u8> {
    let text_width = PAGE_WIDTH_MM - 2.0 * MARGIN_MM;
    let mut page = Page::new();

    // Banner.
    page.rect(
        MARGIN_MM - 6.0,
        23.0,
        Paint::FillAndStroke,
        rgb(1.0, 0.90, 0.90),
        red(),
    );
    page.y += 2.0;
    page.line(Font::HelveticaBold, 13.0, black(), TITLE, 6.5);
    page.line(
        Font::HelveticaBold,
        9.0,
        red(),
        "AMBIENTE DI PROVA: questa carta non è valida per alcun servizio reale.",
        4.2,
    );
    page.line(
        Font::HelveticaBold,
        9.0,
        red(),
        "STAGING ENVIRONMENT: this card is not valid for any real service.",
        12.0,
    );

    page.line(
        Font::Helvetica,
        9.0,
        grey(),
        "Da consegnare chiusa al titolare / To be handed over sealed to the holder",
        8.0,
    );
    page.field("Titolare / Holder", &content.holder_name);
    page.field("Codice fiscale / Tax code", &content.codice_fiscale);
    page.field("Numero carta / Card number", &content.card_number);
    page.field("Scadenza / Expiry", &content.expiry);
    let entities = if content.entities.is_empty() {
        "-".to_string()
    } else {
        content.entities.join(", ")
    };
    let entity_lines = wrap(&entities, text_width - 55.0, 12.0);
    for (i, line) in entity_lines.iter().enumerate() {
        if i == 0 {
            page.field("Enti / Entities", line);
        } else {
            page.field("", line);
        }
    }
    page.text_at(
        MARGIN_MM,
        Font::Helvetica,
        9.0,
        grey(),
        "File carta / Card file",
    );
    page.text_at(
        MARGIN_MM + 55.0,
        Font::Courier,
        9.0,
        black(),
        &content.card_file,
    );
    page.y += 6.0;
    page.rule();

    // The secrets box.
    let box_top = page.y - 2.0;
    page.rect(box_top, 52.0, Paint::Stroke, rgb(1.0, 1.0, 1.0), black());
    page.y += 5.0;
    page.line(
        Font::HelveticaBold,
        11.0,
        black(),
        "Codici riservati - SOLO LA PRIMA METÀ / Secret codes - FIRST HALF ONLY",
        11.0,
    );
    for (label, value) in [
        (
            "PIN - prima metà / first half",
            content.pin_first_half.as_str(),
        ),
        (
            "PUK - prima metà / first half",
            content.puk_first_half.as_str(),
        ),
        (
            "Password - prima metà / first half",
            content.password_first_half.as_str(),
        ),
    ] {
        page.text_at(MARGIN_MM, Font::Helvetica, 11.0, black(), label);
        page.text_at(MARGIN_MM + 80.0, Font::CourierBold, 18.0, black(), value);
        page.y += 11.0;
    }
    page.y = box_top + 52.0 + 10.0;

    // Instructions.
    page.line(Font::HelveticaBold, 11.0, black(), "Istruzioni", 6.0);
    page.paragraph(
        Font::Helvetica,
        10.0,
        black(),
        "Questa busta contiene solo la PRIMA metà del PIN, del PUK e della password di accesso. \
         La SECONDA metà arriva per e-mail all'indirizzo personale del titolare dopo che la consegna \
         della carta è stata registrata (\"Registra Smart Card\"). Il PIN completo è la metà di questa \
         busta seguita dalla metà ricevuta per e-mail; lo stesso vale per PUK e password. \
         Il PIN si blocca dopo 3 tentativi errati: per sbloccarlo servono il PUK completo e un nuovo PIN.",
        text_width,
    );
    page.y += 4.0;
    page.line(Font::HelveticaBold, 11.0, black(), "Instructions", 6.0);
    page.paragraph(
        Font::Helvetica,
        10.0,
        black(),
        "This envelope holds only the FIRST half of the PIN, the PUK and the access password. \
         The SECOND halves arrive by e-mail at the holder's personal address after the card's \
         delivery is registered (\"Registra Smart Card\"). The full PIN is this envelope's half \
         followed by the half in the e-mail; likewise for the PUK and the password. \
         The PIN blocks after 3 wrong attempts: unblocking takes the full PUK and a new PIN.",
        text_width,
    );
    page.y += 4.0;
    page.paragraph(
        Font::HelveticaOblique,
        9.0,
        grey(),
        "Esempio / Example: busta / envelope 1234 + e-mail 5678 = PIN 12345678",
        text_width,
    );

    page.y = PAGE_HEIGHT_MM - MARGIN_MM + 4.0;
    page.rule();
    page.line(
        Font::Helvetica,
        8.0,
        grey(),
        &format!(
            "tessera staging bureau - {} - STAGING, NOT A REAL CARD",
            content.card_number
        ),
        4.0,
    );

    page.finish(&format!("Envelope {}", content.card_number))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_on_words() {
        let lines = wrap("aaaa bbbb cccc dddd", 10.0 * 0.55 * 0.3528 * 10.0, 10.0);
        assert_eq!(lines, vec!["aaaa bbbb", "cccc dddd"]);
        assert!(wrap("", 100.0, 10.0).is_empty());
    }

    #[test]
    fn numbers_have_at_most_two_decimals_and_no_trailing_zeros() {
        for (value, text) in [
            (0.0, "0"),
            (12.0, "12"),
            (0.35, "0.35"),
            (1.2, "1.2"),
            (841.8898, "841.89"),
            (-3.004, "-3"),
            (-0.5, "-0.5"),
        ] {
            assert_eq!(num(value).to_string(), text, "{value}");
        }
    }

    #[test]
    fn text_is_escaped_and_win_ansi_encoded() {
        assert_eq!(literal("a(b)c\\d").to_string(), "(a\\(b\\)c\\\\d)");
        assert_eq!(
            literal("Nicolò – €").to_string(),
            "(Nicol\\362 \\226 \\200)"
        );
        assert_eq!(literal("日本").to_string(), "(??)");
    }

    #[test]
    fn the_cross_reference_table_points_at_every_object() {
        let mut page = Page::new();
        page.line(Font::Helvetica, 10.0, black(), "x", 5.0);
        let pdf = page.finish("t");
        // Everything after the binary comment is ASCII, so byte offsets and text offsets agree there.
        let tail_at = pdf.len() - 40;
        let tail = std::str::from_utf8(&pdf[tail_at..]).expect("ASCII tail");
        let start: usize = tail
            .rsplit("startxref\n")
            .next()
            .and_then(|t| t.lines().next())
            .and_then(|n| n.parse().ok())
            .expect("startxref");
        assert!(pdf[start..].starts_with(b"xref\n"));
        let table = std::str::from_utf8(&pdf[start..]).expect("ASCII table");
        let entries: Vec<usize> = table
            .lines()
            .skip(3)
            .take_while(|l| l.ends_with(" n"))
            .map(|l| l[..10].parse().expect("offset"))
            .collect();
        assert_eq!(entries.len(), 10);
        for (index, offset) in entries.iter().enumerate() {
            let header = format!("{} 0 obj\n", index + 1);
            assert!(
                pdf[*offset..].starts_with(header.as_bytes()),
                "object {}",
                index + 1
            );
        }
    }
}
