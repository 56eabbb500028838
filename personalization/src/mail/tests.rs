use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn release(resend: bool) -> Release {
    Release {
        card_number: "0580910000042".into(),
        holder_name: "Rossi Mario Nicolò".into(),
        to: "mario.rossi@comune.roma.it".into(),
        pin_second_half: "6390".into(),
        puk_second_half: "1157".into(),
        password_second_half: "Tm4wZq".into(),
        resend,
    }
}

const FROM: &str = "tessera-staging-bureau@staging.invalid";

fn date() -> SystemTime {
    // 2025-03-10T09:30:00Z
    UNIX_EPOCH + Duration::from_secs(1_741_599_000)
}

/// Splits a raw message into (header lines, unfolded; body lines).
fn parse(raw: &[u8]) -> (Vec<(String, String)>, Vec<String>) {
    let text = std::str::from_utf8(raw).expect("the message is UTF-8");
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "every line ends in CRLF"
    );
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with(' ') || line.starts_with('\t') {
            headers.last_mut().unwrap().1.push_str(line);
        } else {
            let (name, value) = line.split_once(':').unwrap();
            headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    (headers, body.split("\r\n").map(str::to_string).collect())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
}

/// Decodes RFC 2047 encoded-words of the forms lettre writes (B and Q, UTF-8). Whitespace
/// between two encoded-words is dropped, elsewhere it is kept.
fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut previous_encoded = false;
    for word in value.split_whitespace() {
        let inner = word
            .strip_prefix("=?utf-8?")
            .or_else(|| word.strip_prefix("=?UTF-8?"))
            .and_then(|w| w.strip_suffix("?="));
        let joins_encoded = previous_encoded && inner.is_some();
        if !out.is_empty() && !joins_encoded {
            out.push(' ');
        }
        previous_encoded = inner.is_some();
        let Some(inner) = inner else {
            out.push_str(word);
            continue;
        };
        let (kind, data) = inner.split_at(2);
        let bytes = match kind {
            "b?" | "B?" => base64_decode(data),
            _ => {
                let mut bytes = Vec::new();
                let mut chars = data.bytes();
                while let Some(c) = chars.next() {
                    match c {
                        b'_' => bytes.push(b' '),
                        b'=' => {
                            let hex = [chars.next().unwrap(), chars.next().unwrap()];
                            let hex = std::str::from_utf8(&hex).unwrap();
                            bytes.push(u8::from_str_radix(hex, 16).unwrap());
                        }
                        c => bytes.push(c),
                    }
                }
                bytes
            }
        };
        out.push_str(&String::from_utf8(bytes).unwrap());
    }
    out
}

fn base64_decode(data: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for c in data.bytes().filter(|&c| c != b'=') {
        let v = ALPHABET.iter().position(|&a| a == c).unwrap() as u32;
        bits = (bits << 6) | v;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

fn assert_halves(body: &[String], pin: &str, puk: &str, password: &str) {
    for expected in [
        format!("PIN-Second-Half: {pin}"),
        format!("PUK-Second-Half: {puk}"),
        format!("Password-Second-Half: {password}"),
    ] {
        assert_eq!(
            body.iter().filter(|l| **l == expected).count(),
            1,
            "{expected:?} not alone on one line in {body:#?}"
        );
    }
}

#[test]
fn composes_a_plain_8bit_message_with_the_halves_on_their_own_lines() {
    let raw = compose(&release(false), FROM, date()).unwrap();
    let (headers, body) = parse(&raw);
    assert_eq!(header(&headers, "From"), FROM);
    assert_eq!(header(&headers, "To"), "mario.rossi@comune.roma.it");
    assert_eq!(
        decode_words(header(&headers, "Subject")),
        "Tessera staging: seconda metà di PIN/PUK – card 0580910000042"
    );
    assert_eq!(header(&headers, "Date"), "Mon, 10 Mar 2025 09:30:00 +0000");
    let id = header(&headers, "Message-ID");
    assert!(
        id.starts_with("<0580910000042.1741599000.") && id.ends_with("@tessera.staging.invalid>"),
        "{id}"
    );
    assert_eq!(header(&headers, "MIME-Version"), "1.0");
    assert_eq!(
        header(&headers, "Content-Type").to_ascii_lowercase(),
        "text/plain; charset=utf-8"
    );
    assert_eq!(header(&headers, "Content-Transfer-Encoding"), "8bit");
    assert_eq!(header(&headers, "X-Tessera-Card"), "0580910000042");
    assert_halves(&body, "6390", "1157", "Tm4wZq");
    let text = body.join("\n");
    assert!(text.contains("Gentile Rossi Mario Nicolò,"), "{text}");
    let flowing = body.join(" ");
    assert!(
        flowing.contains(
            "Il PIN completo è la metà stampata nella busta sigillata seguita da questa metà"
        ),
        "{flowing}"
    );
    assert!(
        flowing.contains(
            "The full PIN is the half printed in your sealed envelope followed by this half"
        ),
        "{flowing}"
    );
    assert!(text.contains("Carta n.: 0580910000042") && text.contains("Card no.: 0580910000042"));
    assert!(body.iter().all(|l| l.len() < 76), "{body:#?}");
    assert!(!text.contains("reinvio"));
}

#[test]
fn resend_is_marked_and_message_ids_differ() {
    let first = compose(&release(false), FROM, date()).unwrap();
    let again = compose(&release(true), FROM, date()).unwrap();
    let (h1, _) = parse(&first);
    let (h2, body) = parse(&again);
    assert_eq!(
        decode_words(header(&h2, "Subject")),
        "Tessera staging: seconda metà di PIN/PUK – card 0580910000042 [reinvio]"
    );
    assert_ne!(header(&h1, "Message-ID"), header(&h2, "Message-ID"));
    assert_halves(&body, "6390", "1157", "Tm4wZq");
}

#[test]
fn display_names_and_ascii_bodies() {
    let mut r = release(false);
    r.holder_name = "Rossi Mario".into();
    r.to = "Mario Rossi <mario.rossi@comune.roma.it>".into();
    let raw = compose(&r, "Tessera Bureau <bureau@staging.invalid>", date()).unwrap();
    let (headers, body) = parse(&raw);
    assert!(header(&headers, "To").contains("<mario.rossi@comune.roma.it>"));
    assert!(header(&headers, "From").contains("<bureau@staging.invalid>"));
    // Italian text has accents, so the body stays 8bit and is never re-encoded.
    assert_eq!(header(&headers, "Content-Transfer-Encoding"), "8bit");
    assert_halves(&body, "6390", "1157", "Tm4wZq");
}

#[test]
fn long_values_keep_lines_short() {
    let mut r = release(true);
    r.holder_name =
        "De La Vallée Poussin Bianchi Ferraris Esposito, Maria Antonietta Chiara".into();
    r.card_number = "0".repeat(64);
    r.password_second_half = "P".repeat(40);
    let (headers, body) = parse(&compose(&r, FROM, date()).unwrap());
    assert_eq!(header(&headers, "Content-Transfer-Encoding"), "8bit");
    assert!(body.iter().all(|l| l.len() < 76), "{body:#?}");
    assert!(body.contains(&"Gentile titolare,".to_string()));
    assert_halves(&body, "6390", "1157", &"P".repeat(40));
    r.password_second_half = "P".repeat(41);
    assert!(compose(&r, FROM, date()).is_err());
}

#[test]
fn rejects_bad_releases() {
    let mut r = release(false);
    r.to = "not an address".into();
    assert!(matches!(
        compose(&r, FROM, date()),
        Err(MailError::Address { .. })
    ));
    assert!(matches!(
        compose(&release(false), "bureau", date()),
        Err(MailError::Address { .. })
    ));
    let mut r = release(false);
    r.pin_second_half = "12\r\nBcc: x@y.z".into();
    assert!(matches!(
        compose(&r, FROM, date()),
        Err(MailError::InvalidField {
            field: "pin_second_half",
            ..
        })
    ));
    let mut r = release(false);
    r.card_number = "../../x".into();
    assert!(compose(&r, FROM, date()).is_err());
    let mut r = release(false);
    r.holder_name = "Rossi\r\nBcc: evil@example.org".into();
    assert!(compose(&r, FROM, date()).is_err());
}

#[test]
fn debug_output_redacts_secrets() {
    let shown = format!("{:?}", release(false));
    assert!(!shown.contains("6390") && !shown.contains("Tm4wZq"));
    let config = SmtpConfig {
        host: "smtp.example.org".into(),
        port: 587,
        username: Some("bureau".into()),
        password: Some("hunter2".into()),
        from: FROM.into(),
        tls: SmtpTls::Starttls,
    };
    assert!(!format!("{config:?}").contains("hunter2"));
}

#[test]
fn outbox_numbers_files_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let first = write_outbox(&outbox, &release(false), FROM, date()).unwrap();
    assert_eq!(first, outbox.join("0580910000042-1.eml"));
    let second = write_outbox(&outbox, &release(true), FROM, date()).unwrap();
    assert_eq!(second, outbox.join("0580910000042-2.eml"));
    // Another card's files and stray names do not disturb the numbering.
    let mut other = release(false);
    other.card_number = "05809100000420".into();
    assert_eq!(
        write_outbox(&outbox, &other, FROM, date()).unwrap(),
        outbox.join("05809100000420-1.eml")
    );
    std::fs::write(outbox.join("0580910000042-7.eml.bak"), "x").unwrap();
    std::fs::write(outbox.join("0580910000042-5.eml"), "older").unwrap();
    assert_eq!(
        write_outbox(&outbox, &release(true), FROM, date()).unwrap(),
        outbox.join("0580910000042-6.eml")
    );
    for path in [&first, &second] {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let (headers, body) = parse(&std::fs::read(&first).unwrap());
    assert_eq!(header(&headers, "X-Tessera-Card"), "0580910000042");
    assert_halves(&body, "6390", "1157", "Tm4wZq");
    assert!(!std::fs::read_dir(&outbox).unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

#[test]
fn concurrent_outbox_writers_get_distinct_files() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = dir.path().join("outbox");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let outbox = outbox.clone();
            std::thread::spawn(move || write_outbox(&outbox, &release(true), FROM, date()).unwrap())
        })
        .collect();
    let mut paths: Vec<PathBuf> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 8);
}

/// A one-connection SMTP server on 127.0.0.1 that records the DATA it receives.
fn tiny_smtp_server() -> (u16, std::thread::JoinHandle<(Vec<String>, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut writer = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        let mut commands = Vec::new();
        let mut data = String::new();
        writer.write_all(b"220 localhost tiny ESMTP\r\n").unwrap();
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                break;
            }
            let command = line.trim_end().to_string();
            commands.push(command.clone());
            let verb = command
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" | "HELO" => writer
                    .write_all(b"250-localhost\r\n250-8BITMIME\r\n250 SIZE 1000000\r\n")
                    .unwrap(),
                "MAIL" | "RCPT" | "RSET" | "NOOP" => writer.write_all(b"250 OK\r\n").unwrap(),
                "DATA" => {
                    writer.write_all(b"354 go ahead\r\n").unwrap();
                    loop {
                        let mut data_line = String::new();
                        if reader.read_line(&mut data_line).unwrap() == 0 {
                            break;
                        }
                        if data_line == ".\r\n" {
                            break;
                        }
                        data.push_str(&data_line);
                    }
                    writer.write_all(b"250 queued\r\n").unwrap();
                }
                "QUIT" => {
                    writer.write_all(b"221 bye\r\n").unwrap();
                    break;
                }
                _ => writer.write_all(b"502 not implemented\r\n").unwrap(),
            }
        }
        (commands, data)
    });
    (port, handle)
}

#[test]
fn sends_through_smtp_on_loopback() {
    let (port, server) = tiny_smtp_server();
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        from: FROM.into(),
        tls: SmtpTls::None,
    };
    let message = compose(&release(true), &config.from, date()).unwrap();
    send(&config, &message, "mario.rossi@comune.roma.it").unwrap();
    let (commands, data) = server.join().unwrap();
    assert!(commands[0].starts_with("EHLO "), "{commands:?}");
    assert!(
        commands
            .iter()
            .any(|c| c.starts_with(&format!("MAIL FROM:<{FROM}>"))),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c == "RCPT TO:<mario.rossi@comune.roma.it>"),
        "{commands:?}"
    );
    let (headers, body) = parse(data.as_bytes());
    assert_eq!(header(&headers, "X-Tessera-Card"), "0580910000042");
    assert_halves(&body, "6390", "1157", "Tm4wZq");
}

#[test]
fn plaintext_smtp_is_refused_off_loopback() {
    let config = SmtpConfig {
        host: "smtp.example.org".into(),
        port: 25,
        username: None,
        password: None,
        from: FROM.into(),
        tls: SmtpTls::None,
    };
    let message = compose(&release(false), FROM, date()).unwrap();
    assert!(matches!(
        send(&config, &message, "mario.rossi@comune.roma.it"),
        Err(MailError::InsecureTransport(_))
    ));
}

#[test]
fn smtp_failures_name_the_server() {
    // A closed port on loopback: connection refused.
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let config = SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        from: FROM.into(),
        tls: SmtpTls::None,
    };
    let message = compose(&release(false), FROM, date()).unwrap();
    let err = send(&config, &message, "mario.rossi@comune.roma.it").unwrap_err();
    assert!(
        err.to_string().contains(&format!("127.0.0.1:{port}")),
        "{err}"
    );
}
