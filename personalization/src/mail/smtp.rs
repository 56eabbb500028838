//! Delivery through a real SMTP server: lettre's blocking transport, TLS by rustls with the
//! webpki root store (no OpenSSL). Plaintext is refused unless the server is on this machine.

use std::net::IpAddr;
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::extension::ClientId;
use lettre::{SmtpTransport, Transport};

use super::{parse_mailbox, MailError, SmtpConfig, SmtpTls, MESSAGE_ID_DOMAIN};

/// How long one SMTP command may take.
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

fn is_local(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

/// Sends the composed `message` (as from [`super::compose`]) to `to`, with `config.from` as the
/// envelope sender. STARTTLS is required when asked for (no silent downgrade); `SmtpTls::None`
/// is accepted only for localhost / loopback addresses.
pub fn send(config: &SmtpConfig, message: &[u8], to: &str) -> Result<(), MailError> {
    let server = format!("{}:{}", config.host, config.port);
    let smtp = |e: lettre::transport::smtp::Error| MailError::Smtp {
        server: server.clone(),
        detail: e.to_string(),
    };
    let from = parse_mailbox(&config.from)?.email;
    let recipient = parse_mailbox(to)?.email;
    let envelope = Envelope::new(Some(from), vec![recipient]).map_err(|e| MailError::Address {
        address: to.to_string(),
        problem: e.to_string(),
    })?;

    let builder = match config.tls {
        SmtpTls::Starttls => SmtpTransport::starttls_relay(&config.host).map_err(smtp)?,
        SmtpTls::Tls => SmtpTransport::relay(&config.host).map_err(smtp)?,
        SmtpTls::None => {
            if !is_local(&config.host) {
                return Err(MailError::InsecureTransport(config.host.clone()));
            }
            SmtpTransport::builder_dangerous(
                config.host.trim_start_matches('[').trim_end_matches(']'),
            )
        }
    };
    let mut builder = builder
        .port(config.port)
        .timeout(Some(SMTP_TIMEOUT))
        .hello_name(ClientId::Domain(MESSAGE_ID_DOMAIN.to_string()));
    match (&config.username, &config.password) {
        (Some(user), Some(password)) => {
            builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
        }
        (None, None) => {}
        _ => {
            return Err(MailError::Smtp {
                server,
                detail: "username and password must be given together".into(),
            })
        }
    }
    let transport = builder.build();
    transport.send_raw(&envelope, message).map_err(smtp)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_local;

    #[test]
    fn only_loopback_counts_as_local() {
        for host in [
            "localhost",
            "LOCALHOST.",
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "[::1]",
        ] {
            assert!(is_local(host), "{host}");
        }
        for host in [
            "smtp.example.org",
            "10.0.0.1",
            "localhost.example.org",
            "0.0.0.0",
        ] {
            assert!(!is_local(host), "{host}");
        }
    }
}
