//! The sealed envelope of a card: a printable one-page PDF insert and a JSON manifest with the
//! same facts, both holding only the FIRST halves of the PIN, PUK and access password. The
//! second halves travel by e-mail (see [`crate::mail`]) once the card's delivery is registered.

mod pdf;

#[cfg(test)]
mod tests;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use pdf::TITLE;

/// Why an envelope could not be produced. File problems name the file.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("envelope field {field}: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("encoding the manifest failed: {0}")]
    Json(String),
}

/// What goes into a card's envelope.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvelopeContent {
    pub card_number: String,
    pub codice_fiscale: String,
    /// "Surname Name".
    pub holder_name: String,
    /// Names of the entities the card is valid for.
    pub entities: Vec<String>,
    /// `YYYY-MM-DD`.
    pub expiry: String,
    /// The card image the personalization produced (path or file name).
    pub card_file: String,
    pub pin_first_half: String,
    pub puk_first_half: String,
    pub password_first_half: String,
}

impl fmt::Debug for EnvelopeContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeContent")
            .field("card_number", &self.card_number)
            .field("codice_fiscale", &self.codice_fiscale)
            .field("holder_name", &self.holder_name)
            .field("entities", &self.entities)
            .field("expiry", &self.expiry)
            .field("card_file", &self.card_file)
            .field("pin_first_half", &"<redacted>")
            .field("puk_first_half", &"<redacted>")
            .field("password_first_half", &"<redacted>")
            .finish()
    }
}

impl EnvelopeContent {
    /// The manifest: pretty JSON with every field under its snake_case name.
    pub fn manifest_json(&self) -> String {
        // Plain strings and a list of strings always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    fn validate(&self) -> Result<(), EnvelopeError> {
        let invalid = |field: &'static str, problem: &str| EnvelopeError::InvalidField {
            field,
            problem: problem.to_string(),
        };
        if !is_file_stem(&self.card_number) {
            return Err(invalid(
                "card_number",
                "must be 1-64 letters, digits, '-' or '_' (it names the files)",
            ));
        }
        let single_line = [
            ("codice_fiscale", &self.codice_fiscale),
            ("holder_name", &self.holder_name),
            ("expiry", &self.expiry),
            ("card_file", &self.card_file),
            ("pin_first_half", &self.pin_first_half),
            ("puk_first_half", &self.puk_first_half),
            ("password_first_half", &self.password_first_half),
        ];
        for (field, value) in single_line {
            if value.chars().any(char::is_control) {
                return Err(invalid(field, "holds control characters"));
            }
        }
        for (field, value) in [
            ("pin_first_half", &self.pin_first_half),
            ("puk_first_half", &self.puk_first_half),
            ("password_first_half", &self.password_first_half),
        ] {
            if value.is_empty() {
                return Err(invalid(field, "is empty"));
            }
        }
        if self
            .entities
            .iter()
            .any(|e| e.chars().any(char::is_control))
        {
            return Err(invalid("entities", "holds control characters"));
        }
        Ok(())
    }
}

fn is_file_stem(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The printable insert: one A4 page with the STAGING title, holder, card number, expiry, the
/// three first halves and the instructions (Italian and English).
pub fn render_pdf(content: &EnvelopeContent) -> Result<Vec<u8>, EnvelopeError> {
    content.validate()?;
    Ok(pdf::render(content))
}

/// An envelope rendered in memory: the printable PDF and its JSON manifest.
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub json: String,
}

/// Renders both files of an envelope, writing nothing (a batch writes a group of them at once).
pub fn render(content: &EnvelopeContent) -> Result<Rendered, EnvelopeError> {
    let pdf = render_pdf(content)?;
    let json = content.manifest_json();
    if json.is_empty() {
        return Err(EnvelopeError::Json("empty manifest".into()));
    }
    Ok(Rendered { pdf, json })
}

/// Where the two files of card `card_number`'s envelope live in `dir`: (pdf, json).
pub fn paths(dir: &Path, card_number: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{card_number}.pdf")),
        dir.join(format!("{card_number}.json")),
    )
}

/// Writes `<card_number>.pdf` and `<card_number>.json` into `dir` (created 0700 if missing), each
/// mode 0600 and written atomically (temporary file, fsync, rename). Returns (pdf, json).
pub fn write(dir: &Path, content: &EnvelopeContent) -> Result<(PathBuf, PathBuf), EnvelopeError> {
    let rendered = render(content)?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| EnvelopeError::Io { path, source }
    };
    crate::private_file::create_dir(dir).map_err(io(dir))?;
    let (pdf_path, json_path) = paths(dir, &content.card_number);
    crate::private_file::write_atomic(&pdf_path, &rendered.pdf).map_err(io(&pdf_path))?;
    crate::private_file::write_atomic(&json_path, rendered.json.as_bytes())
        .map_err(io(&json_path))?;
    Ok((pdf_path, json_path))
}
