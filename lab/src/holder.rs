//! What a card holder does with the two halves: the envelope's (the JSON beside each envelope PDF)
//! and the e-mail's (the latest release for the card in the batch outbox), joined into the PIN and
//! the access password. `tessera demo` logs in with them; a person reads the same two files.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} has no {field}")]
    Missing { path: PathBuf, field: &'static str },
    #[error(
        "no e-mail with the second halves of card {0} in the outbox: register its delivery first"
    )]
    NotReleased(String),
}

/// The joined secrets of one card.
pub struct Joined {
    pub pin: Zeroizing<String>,
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Joined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Joined { <redacted> }")
    }
}

fn read(path: &Path) -> Result<Zeroizing<String>, HolderError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|source| HolderError::Read {
            path: path.to_path_buf(),
            source,
        })
}

/// The latest released e-mail for `card_number` in `BATCH/outbox`.
fn latest_release(
    batch_dir: &Path,
    card_number: &str,
) -> Result<(PathBuf, Zeroizing<String>), HolderError> {
    let outbox = batch_dir.join("outbox");
    let mut mails: Vec<PathBuf> = match std::fs::read_dir(&outbox) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "eml"))
            .collect(),
        Err(_) => Vec::new(),
    };
    mails.sort();
    let marker = format!("X-Tessera-Card: {card_number}");
    for path in mails.into_iter().rev() {
        let text = read(&path)?;
        if text.lines().any(|l| l.trim() == marker) {
            return Ok((path, text));
        }
    }
    Err(HolderError::NotReleased(card_number.to_string()))
}

fn mail_field(text: &str, path: &Path, field: &'static str) -> Result<String, HolderError> {
    text.lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix(field)?
                .strip_prefix(": ")
                .map(str::to_string)
        })
        .ok_or_else(|| HolderError::Missing {
            path: path.to_path_buf(),
            field,
        })
}

/// Envelope half + e-mail half of the PIN and of the access password of `card_number`.
pub fn join(batch_dir: &Path, card_number: &str) -> Result<Joined, HolderError> {
    let envelope_path = batch_dir
        .join("envelopes")
        .join(format!("{card_number}.json"));
    let envelope_text = read(&envelope_path)?;
    let envelope: serde_json::Value =
        serde_json::from_str(&envelope_text).map_err(|_| HolderError::Missing {
            path: envelope_path.clone(),
            field: "JSON",
        })?;
    let half = |field: &'static str| {
        envelope[field]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| HolderError::Missing {
                path: envelope_path.clone(),
                field,
            })
    };
    let (mail_path, mail) = latest_release(batch_dir, card_number)?;
    let pin = format!(
        "{}{}",
        half("pin_first_half")?,
        mail_field(&mail, &mail_path, "PIN-Second-Half")?
    );
    let password = format!(
        "{}{}",
        half("password_first_half")?,
        mail_field(&mail, &mail_path, "Password-Second-Half")?
    );
    Ok(Joined {
        pin: Zeroizing::new(pin),
        password: Zeroizing::new(password),
    })
}
