//! Release of the second halves: an RFC 5322 message per card (Italian and English text plus
//! machine-readable `PIN-Second-Half:`/`PUK-Second-Half:`/`Password-Second-Half:` lines), kept
//! as `.eml` files in an outbox or sent through a real SMTP server (lettre over rustls).

mod smtp;

#[cfg(test)]
mod tests;

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::Message;

pub use smtp::send;

/// The header naming the card a message is about.
pub const CARD_HEADER: &str = "X-Tessera-Card";
/// The body lines carrying the halves (each alone on its line).
pub const PIN_LINE: &str = "PIN-Second-Half";
pub const PUK_LINE: &str = "PUK-Second-Half";
pub const PASSWORD_LINE: &str = "Password-Second-Half";
/// The domain of generated Message-IDs.
pub const MESSAGE_ID_DOMAIN: &str = "tessera.staging.invalid";

/// Why a message could not be composed, stored or sent. File problems name the file.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid e-mail address {address:?}: {problem}")]
    Address { address: String, problem: String },
    #[error("release field {field}: {problem}")]
    InvalidField {
        field: &'static str,
        problem: String,
    },
    #[error("composing the message failed: {0}")]
    Compose(String),
    #[error("SMTP without TLS is allowed only towards localhost, not {0}")]
    InsecureTransport(String),
    #[error("SMTP delivery to {server} failed: {detail}")]
    Smtp { server: String, detail: String },
    #[error("the operating system's random generator failed")]
    Random,
}

/// The second halves of one card, for its holder.
#[derive(Clone, PartialEq, Eq)]
pub struct Release {
    pub card_number: String,
    pub holder_name: String,
    /// The holder's personal institutional address.
    pub to: String,
    pub pin_second_half: String,
    pub puk_second_half: String,
    pub password_second_half: String,
    /// A re-send on request ("Invio PIN/PUK"): the subject says `[reinvio]`.
    pub resend: bool,
}

impl fmt::Debug for Release {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Release")
            .field("card_number", &self.card_number)
            .field("holder_name", &self.holder_name)
            .field("to", &self.to)
            .field("pin_second_half", &"<redacted>")
            .field("puk_second_half", &"<redacted>")
            .field("password_second_half", &"<redacted>")
            .field("resend", &self.resend)
            .finish()
    }
}

/// How the SMTP connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), usually port 587.
    Starttls,
    /// TLS from the first byte (SMTPS), usually port 465.
    Tls,
    /// No encryption: only for a server on localhost / a loopback address.
    None,
}

/// A real SMTP server to deliver through.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The envelope sender and `From:` address.
    pub from: String,
    pub tls: SmtpTls,
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("tls", &self.tls)
            .finish()
    }
}

#[derive(Clone)]
struct CardHeader(String);

impl Header for CardHeader {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str(CARD_HEADER)
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

pub(crate) fn parse_mailbox(address: &str) -> Result<Mailbox, MailError> {
    address
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::Address {
            address: address.to_string(),
            problem: e.to_string(),
        })
}

fn is_file_stem(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Release {
    fn validate(&self) -> Result<(), MailError> {
        let invalid = |field: &'static str, problem: &str| MailError::InvalidField {
            field,
            problem: problem.to_string(),
        };
        if !is_file_stem(&self.card_number) {
            return Err(invalid(
                "card_number",
                "must be 1-64 letters, digits, '-' or '_' (it names the outbox file)",
            ));
        }
        for (field, value) in [
            ("pin_second_half", &self.pin_second_half),
            ("puk_second_half", &self.puk_second_half),
            ("password_second_half", &self.password_second_half),
        ] {
            if value.is_empty()
                || value.len() > MAX_HALF
                || !value.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(invalid(
                    field,
                    "must be 1-40 printable ASCII characters without spaces",
                ));
            }
        }
        if self.holder_name.chars().any(char::is_control) || self.holder_name.len() > 200 {
            return Err(invalid(
                "holder_name",
                "holds control characters or is too long",
            ));
        }
        Ok(())
    }

    /// The subject line.
    pub fn subject(&self) -> String {
        let mut subject = format!(
            "Tessera staging: seconda metà di PIN/PUK – card {}",
            self.card_number
        );
        if self.resend {
            subject.push_str(" [reinvio]");
        }
        subject
    }

    /// The plain-text body (LF line endings; CRLF on the wire). Every line stays under 76 bytes,
    /// so the body goes out as 8bit (or 7bit) and is never re-encoded.
    pub fn body(&self) -> String {
        let holder = self.holder_name.trim();
        let fits = !holder.is_empty() && holder.len() <= MAX_NAME_IN_BODY;
        let (it_greeting, en_greeting) = if fits {
            (format!("Gentile {holder},"), format!("Dear {holder},"))
        } else {
            (
                "Gentile titolare,".to_string(),
                "Dear card holder,".to_string(),
            )
        };
        let card = &self.card_number;
        let mut text = String::new();
        if self.resend {
            text.push_str(
                "[reinvio su richiesta: i codici sono quelli del primo invio]\n\
                 [re-sent on request: the codes are those of the first message]\n\n",
            );
        }
        text.push_str(&format!(
            "{it_greeting}\n\
             \n\
             la consegna della sua carta tessera è stata registrata.\n\
             Carta n.: {card}\n\
             Qui sotto trova la SECONDA metà del PIN, del PUK e della password\n\
             di accesso. Il PIN completo è la metà stampata nella busta sigillata\n\
             seguita da questa metà; lo stesso vale per il PUK e la password.\n\
             Esempio: busta 1234 + e-mail 5678 = PIN 12345678.\n\
             Il PIN si blocca dopo 3 tentativi errati; per sbloccarlo servono\n\
             il PUK completo e un nuovo PIN. Non inoltri questo messaggio e non\n\
             lo conservi insieme alla busta.\n\
             \n\
             {en_greeting}\n\
             \n\
             the delivery of your tessera card has been registered.\n\
             Card no.: {card}\n\
             Below are the SECOND halves of your PIN, PUK and access password.\n\
             The full PIN is the half printed in your sealed envelope followed\n\
             by this half; likewise for the PUK and the password.\n\
             Example: envelope 1234 + e-mail 5678 = PIN 12345678.\n\
             The PIN blocks after 3 wrong attempts; unblocking takes the full\n\
             PUK and a new PIN. Do not forward this message and do not keep it\n\
             with the envelope.\n\
             \n\
             {PIN_LINE}: {pin}\n\
             {PUK_LINE}: {puk}\n\
             {PASSWORD_LINE}: {password}\n\
             \n\
             -- \n\
             tessera staging bureau\n\
             AMBIENTE DI PROVA, NON È UNA CARTA REALE\n\
             STAGING ENVIRONMENT, NOT A REAL CARD\n",
            pin = self.pin_second_half,
            puk = self.puk_second_half,
            password = self.password_second_half,
        ));
        text
    }
}

/// Longest holder name (bytes) the greeting line carries; longer ones get a generic greeting.
const MAX_NAME_IN_BODY: usize = 60;
/// Longest second half accepted (keeps the `...-Second-Half:` lines short).
const MAX_HALF: usize = 40;

fn message_id(card: &str, date: SystemTime) -> Result<String, MailError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|_| MailError::Random)?;
    let secs = date
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(format!(
        "<{card}.{secs}.{}@{MESSAGE_ID_DOMAIN}>",
        hex::encode(nonce)
    ))
}

/// The RFC 5322 message (CRLF line endings) for `release`: From, To, Subject (RFC 2047 encoded),
/// Date, Message-ID, MIME-Version, `Content-Type: text/plain; charset=utf-8`,
/// `Content-Transfer-Encoding: 8bit` (7bit when the text is ASCII), `X-Tessera-Card`.
pub fn compose(release: &Release, from: &str, date: SystemTime) -> Result<Vec<u8>, MailError> {
    release.validate()?;
    let from = parse_mailbox(from)?;
    let to = parse_mailbox(&release.to)?;
    let text = release.body();
    let encoding = if text.is_ascii() {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    let body = Body::new_with_encoding(text, encoding)
        .map_err(|_| MailError::Compose("the body cannot be sent as 7bit/8bit".into()))?;
    let part = SinglePart::builder()
        .header(ContentType::TEXT_PLAIN)
        .body(body);
    let message = Message::builder()
        .from(from)
        .to(to)
        .subject(release.subject())
        .date(date)
        .message_id(Some(message_id(&release.card_number, date)?))
        .header(CardHeader(release.card_number.clone()))
        .singlepart(part)
        .map_err(|e| MailError::Compose(e.to_string()))?;
    Ok(message.formatted())
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> MailError + '_ {
    move |source| MailError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The sequence number of an outbox file of `card`, if `name` is one (`<card>-<n>.eml`).
fn outbox_number(card: &str, name: &str) -> Option<u64> {
    let rest = name.strip_prefix(card)?.strip_prefix('-')?;
    let digits = rest.strip_suffix(".eml")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Composes the message and stores it as `<dir>/<card_number>-<n>.eml`, `n` one more than the
/// highest already there (from 1), so re-sends never overwrite. The file is mode 0600 and appears
/// atomically, complete, under its final name (written to a temporary file, then hard-linked
/// without replacing anything). Creates `dir` (0700) if missing.
pub fn write_outbox(
    dir: &Path,
    release: &Release,
    from: &str,
    date: SystemTime,
) -> Result<PathBuf, MailError> {
    let message = compose(release, from, date)?;
    crate::private_file::create_dir(dir).map_err(io(dir))?;
    let card = &release.card_number;

    let mut nonce = [0u8; 6];
    getrandom::fill(&mut nonce).map_err(|_| MailError::Random)?;
    let temp = dir.join(format!(".{card}.{}.eml.tmp", hex::encode(nonce)));
    let written = crate::private_file::create_new(&temp, &message, 0o600).map_err(io(&temp));
    let result = written.and_then(|()| {
        let mut next = 1 + fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|entry| entry.ok())
            .filter_map(|entry| outbox_number(card, &entry.file_name().to_string_lossy()))
            .max()
            .unwrap_or(0);
        loop {
            let target = dir.join(format!("{card}-{next}.eml"));
            match fs::hard_link(&temp, &target) {
                Ok(()) => {
                    // INVARIANT: the message's name is on disk before we say it is in the outbox.
                    crate::private_file::sync_dir_of(&target).map_err(io(&target))?;
                    return Ok(target);
                }
                // Another writer took this number meanwhile: try the next one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
                Err(e) => return Err(io(&target)(e)),
            }
        }
    });
    let _ = fs::remove_file(&temp);
    result
}
