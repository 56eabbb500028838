//! The printed insert of a sealed envelope: one A4 page in the PDF standard fonts (Helvetica and
//! Courier, WinAnsi-encoded: Latin-1 names print correctly, anything else prints as `?`).

use printpdf::{
    BuiltinFont, Color, Line, LinePoint, Mm, Op, PaintMode, PdfDocument, PdfFontHandle, PdfPage,
    PdfSaveOptions, Point, Pt, Rect, Rgb, TextItem,
};

use super::EnvelopeContent;

pub const TITLE: &str = "Busta sigillata / Sealed envelope – STAGING, NOT A REAL CARD";

const PAGE_WIDTH_MM: f32 = 210.0;
const PAGE_HEIGHT_MM: f32 = 297.0;
const MARGIN_MM: f32 = 18.0;

fn rgb(r: f32, g: f32, b: f32) -> Color {
    Color::Rgb(Rgb {
        r,
        g,
        b,
        icc_profile: None,
    })
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

/// Builds the page's operations top-down, tracking the baseline in millimetres from the top.
struct Page {
    ops: Vec<Op>,
    /// Distance of the next baseline from the top edge, in mm.
    y: f32,
}

impl Page {
    fn new() -> Self {
        Self {
            ops: Vec::new(),
            y: MARGIN_MM,
        }
    }

    fn text_at(&mut self, x_mm: f32, font: BuiltinFont, size: f32, color: Color, text: &str) {
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFillColor { col: color },
            Op::SetFont {
                font: PdfFontHandle::Builtin(font),
                size: Pt(size),
            },
            Op::SetTextCursor {
                pos: Point::new(Mm(x_mm), Mm(PAGE_HEIGHT_MM - self.y)),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_string())],
            },
            Op::EndTextSection,
        ]);
    }

    /// One line of text at the left margin, then moves down by `advance` mm.
    fn line(&mut self, font: BuiltinFont, size: f32, color: Color, text: &str, advance: f32) {
        self.text_at(MARGIN_MM, font, size, color, text);
        self.y += advance;
    }

    /// A word-wrapped paragraph at the left margin.
    fn paragraph(&mut self, font: BuiltinFont, size: f32, color: Color, text: &str, width_mm: f32) {
        let line_height = size * 0.3528 * 1.35;
        for line in wrap(text, width_mm, size) {
            let color = color.clone();
            self.line(font, size, color, &line, line_height);
        }
    }

    /// "label" in small grey, "value" in larger type beside it.
    fn field(&mut self, label: &str, value: &str) {
        self.text_at(MARGIN_MM, BuiltinFont::Helvetica, 9.0, grey(), label);
        self.text_at(
            MARGIN_MM + 55.0,
            BuiltinFont::HelveticaBold,
            12.0,
            black(),
            value,
        );
        self.y += 7.0;
    }

    fn rect(&mut self, top_mm: f32, height_mm: f32, mode: PaintMode, fill: Color, stroke: Color) {
        let width = PAGE_WIDTH_MM - 2.0 * MARGIN_MM;
        self.ops.extend([
            Op::SaveGraphicsState,
            Op::SetFillColor { col: fill },
            Op::SetOutlineColor { col: stroke },
            Op::SetOutlineThickness { pt: Pt(1.2) },
            Op::DrawRectangle {
                rectangle: Rect {
                    mode: Some(mode),
                    ..Rect::from_xywh(
                        Mm(MARGIN_MM - 3.0).into_pt(),
                        Mm(PAGE_HEIGHT_MM - top_mm - height_mm).into_pt(),
                        Mm(width + 6.0).into_pt(),
                        Mm(height_mm).into_pt(),
                    )
                },
            },
            Op::RestoreGraphicsState,
        ]);
    }

    fn rule(&mut self) {
        let y = Mm(PAGE_HEIGHT_MM - self.y).into_pt();
        let point = |x: f32| LinePoint {
            p: Point {
                x: Mm(x).into_pt(),
                y,
            },
            bezier: false,
        };
        self.ops.extend([
            Op::SaveGraphicsState,
            Op::SetOutlineColor { col: grey() },
            Op::SetOutlineThickness { pt: Pt(0.6) },
            Op::DrawLine {
                line: Line {
                    points: vec![point(MARGIN_MM), point(PAGE_WIDTH_MM - MARGIN_MM)],
                    is_closed: false,
                },
            },
            Op::RestoreGraphicsState,
        ]);
        self.y += 6.0;
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
        PaintMode::FillStroke,
        rgb(1.0, 0.90, 0.90),
        red(),
    );
    page.y += 2.0;
    page.line(BuiltinFont::HelveticaBold, 13.0, black(), TITLE, 6.5);
    page.line(
        BuiltinFont::HelveticaBold,
        9.0,
        red(),
        "AMBIENTE DI PROVA: questa carta non è valida per alcun servizio reale.",
        4.2,
    );
    page.line(
        BuiltinFont::HelveticaBold,
        9.0,
        red(),
        "STAGING ENVIRONMENT: this card is not valid for any real service.",
        12.0,
    );

    page.line(
        BuiltinFont::Helvetica,
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
        BuiltinFont::Helvetica,
        9.0,
        grey(),
        "File carta / Card file",
    );
    page.text_at(
        MARGIN_MM + 55.0,
        BuiltinFont::Courier,
        9.0,
        black(),
        &content.card_file,
    );
    page.y += 6.0;
    page.rule();

    // The secrets box.
    let box_top = page.y - 2.0;
    page.rect(
        box_top,
        52.0,
        PaintMode::Stroke,
        rgb(1.0, 1.0, 1.0),
        black(),
    );
    page.y += 5.0;
    page.line(
        BuiltinFont::HelveticaBold,
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
        page.text_at(MARGIN_MM, BuiltinFont::Helvetica, 11.0, black(), label);
        page.text_at(
            MARGIN_MM + 80.0,
            BuiltinFont::CourierBold,
            18.0,
            black(),
            value,
        );
        page.y += 11.0;
    }
    page.y = box_top + 52.0 + 10.0;

    // Instructions.
    page.line(BuiltinFont::HelveticaBold, 11.0, black(), "Istruzioni", 6.0);
    page.paragraph(
        BuiltinFont::Helvetica,
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
    page.line(
        BuiltinFont::HelveticaBold,
        11.0,
        black(),
        "Instructions",
        6.0,
    );
    page.paragraph(
        BuiltinFont::Helvetica,
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
        BuiltinFont::HelveticaOblique,
        9.0,
        grey(),
        "Esempio / Example: busta / envelope 1234 + e-mail 5678 = PIN 12345678",
        text_width,
    );

    page.y = PAGE_HEIGHT_MM - MARGIN_MM + 4.0;
    page.rule();
    page.line(
        BuiltinFont::Helvetica,
        8.0,
        grey(),
        &format!(
            "tessera staging bureau - {} - STAGING, NOT A REAL CARD",
            content.card_number
        ),
        4.0,
    );

    let mut document = PdfDocument::new(&format!("Envelope {}", content.card_number));
    let page = PdfPage::new(Mm(PAGE_WIDTH_MM), Mm(PAGE_HEIGHT_MM), page.ops);
    let mut warnings = Vec::new();
    document
        .with_pages(vec![page])
        .save(&PdfSaveOptions::default(), &mut warnings)
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wraps_on_words() {
        let lines = wrap("aaaa bbbb cccc dddd", 10.0 * 0.55 * 0.3528 * 10.0, 10.0);
        assert_eq!(lines, vec!["aaaa bbbb", "cccc dddd"]);
        assert!(wrap("", 100.0, 10.0).is_empty());
    }
}
