//! Just enough HTTP/1.1 for the lab, over any byte stream: one request head (bounded), a body by
//! `Content-Length` (bounded; no chunked uploads), keep-alive, and responses with a length. A
//! malformed or oversized request is answered 400/413/501 and the connection closed — never a panic.

use std::io::{BufRead, Write};

/// Limits on what a client can make the lab hold.
pub const MAX_HEAD: usize = 16 * 1024;
pub const MAX_BODY: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The path without the query, percent-decoded is *not* applied (routes are plain ASCII).
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Why a request could not be read: the status to answer with before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("request head or body too large")]
    TooLarge,
    #[error("chunked request bodies are not supported; send Content-Length")]
    Chunked,
    #[error("connection: {0}")]
    Io(String),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Malformed(_) | HttpError::Io(_) => 400,
            HttpError::TooLarge => 413,
            HttpError::Chunked => 501,
        }
    }
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }

    /// The host part of the `Host` header (how the browser reached us: `localhost` or an address),
    /// so redirects between the two doors keep the same host and the session cookie follows.
    pub fn host(&self) -> Option<&str> {
        let host = self.header("host")?;
        if let Some(rest) = host.strip_prefix('[') {
            return rest.split(']').next();
        }
        Some(host.rsplit_once(':').map_or(host, |(h, _)| h))
    }

    /// The fields of an `application/x-www-form-urlencoded` or a JSON-object body (string values).
    pub fn fields(&self) -> Vec<(String, String)> {
        let is_json = self
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/json"));
        if is_json {
            let Ok(serde_json::Value::Object(map)) =
                serde_json::from_slice::<serde_json::Value>(&self.body)
            else {
                return Vec::new();
            };
            return map
                .into_iter()
                .filter_map(|(k, v)| match v {
                    serde_json::Value::String(s) => Some((k, s)),
                    serde_json::Value::Bool(b) => Some((k, b.to_string())),
                    _ => None,
                })
                .collect();
        }
        parse_urlencoded(&String::from_utf8_lossy(&self.body))
    }

    pub fn field(&self, name: &str) -> Option<String> {
        self.fields()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// Whether the client wants JSON: the API paths, or an `Accept` that prefers it.
    pub fn wants_json(&self) -> bool {
        self.path.starts_with("/api/")
            || self
                .header("accept")
                .is_some_and(|a| a.starts_with("application/json"))
    }

    pub fn keep_alive(&self) -> bool {
        !self
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decoding with `+` as space; invalid escapes are kept as they are.
pub fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push(high << 4 | low);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn encode_component(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn parse_urlencoded(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// Reads one request; `Ok(None)` when the client closed the connection between requests.
pub fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>, HttpError> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let limit = (MAX_HEAD + 1 - head.len().min(MAX_HEAD)) as u64;
        let read = std::io::Read::take(&mut *reader, limit)
            .read_until(b'\n', &mut line)
            .map_err(|e| HttpError::Io(e.to_string()))?;
        if read == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(HttpError::Malformed(
                    "the connection closed inside the head",
                ))
            };
        }
        if !line.ends_with(b"\n") {
            return Err(HttpError::TooLarge);
        }
        let is_blank = line == b"\r\n" || line == b"\n";
        if is_blank && head.is_empty() {
            continue; // tolerated empty lines before a request (RFC 9112 §2.2)
        }
        head.extend_from_slice(&line);
        if head.len() > MAX_HEAD {
            return Err(HttpError::TooLarge);
        }
        if is_blank {
            break;
        }
    }
    let head = std::str::from_utf8(&head).map_err(|_| HttpError::Malformed("head is not UTF-8"))?;
    let mut lines = head.lines();
    let request_line = lines
        .next()
        .ok_or(HttpError::Malformed("no request line"))?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HttpError::Malformed(
            "request line is not METHOD TARGET VERSION",
        ));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(HttpError::Malformed("not HTTP/1.x"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(HttpError::Malformed("bad method"));
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if !path.starts_with('/') {
        return Err(HttpError::Malformed("the target must be a path"));
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or(HttpError::Malformed("a header line without a colon"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(HttpError::Malformed("bad header name"));
        }
        headers.push((name.to_string(), value.trim().to_string()));
    }
    let mut request = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: parse_urlencoded(query),
        headers,
        body: Vec::new(),
    };
    if request
        .header("transfer-encoding")
        .is_some_and(|t| !t.eq_ignore_ascii_case("identity"))
    {
        return Err(HttpError::Chunked);
    }
    let length = match request.header("content-length") {
        None => 0,
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| HttpError::Malformed("Content-Length is not a number"))?,
    };
    if length > MAX_BODY {
        return Err(HttpError::TooLarge);
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .map_err(|e| HttpError::Io(e.to_string()))?;
    request.body = body;
    Ok(Some(request))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        303 => "See Other",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        _ => "",
    }
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body,
        }
    }

    pub fn html(status: u16, body: String) -> Self {
        Self::new(status, "text/html; charset=utf-8", body.into_bytes())
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
        body.push(b'\n');
        Self::new(status, "application/json", body)
    }

    pub fn redirect(location: &str) -> Self {
        let mut response = Self::new(303, "text/plain", Vec::new());
        response.headers.push(("Location".into(), location.into()));
        response
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn write_to(&self, out: &mut impl Write, keep_alive: bool) -> std::io::Result<()> {
        let mut head = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!(
            "Content-Length: {}\r\nCache-Control: no-store\r\nConnection: {}\r\n\r\n",
            self.body.len(),
            if keep_alive { "keep-alive" } else { "close" }
        ));
        out.write_all(head.as_bytes())?;
        out.write_all(&self.body)?;
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &[u8]) -> Result<Option<Request>, HttpError> {
        read_request(&mut std::io::BufReader::new(text))
    }

    #[test]
    fn a_form_post_is_read_with_its_fields_and_cookie() {
        let request = parse(
            b"POST /login/password?x=1 HTTP/1.1\r\nHost: localhost:8443\r\nCookie: a=b; tessera_lab_session=T0K\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 33\r\n\r\ncodice_fiscale=AB+C&password=p%3D",
        )
        .expect("request")
        .expect("one");
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/login/password");
        assert_eq!(request.query("x"), Some("1"));
        assert_eq!(request.cookie("tessera_lab_session"), Some("T0K"));
        assert_eq!(request.host(), Some("localhost"));
        assert_eq!(request.field("codice_fiscale").as_deref(), Some("AB C"));
        assert_eq!(request.field("password").as_deref(), Some("p="));
    }

    #[test]
    fn hostile_requests_get_a_status_not_a_panic() {
        assert_eq!(parse(b"").expect("eof"), None);
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n").map(|_| ()),
            Err(HttpError::TooLarge)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n").map(|_| ()),
            Err(HttpError::Chunked)
        );
        let huge = [
            b"GET / HTTP/1.1\r\nX: ".as_slice(),
            &vec![b'a'; MAX_HEAD + 10],
        ]
        .concat();
        assert_eq!(parse(&huge).map(|_| ()), Err(HttpError::TooLarge));
        for bad in [
            b"GET\r\n\r\n".as_slice(),
            b"GET http://x/ HTTP/1.1\r\n\r\n",
            b"get / HTTP/1.1\r\n\r\n",
            b"GET / SPDY/3\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab",
            b"GET / HTTP/1.1\r\nHost: a",
            b"\xff\xfe / HTTP/1.1\r\n\r\n",
        ] {
            let error = parse(bad).expect_err("refused");
            assert!((400..=501).contains(&error.status()), "{bad:?}: {error}");
        }
    }

    #[test]
    fn percent_decoding_keeps_what_it_cannot_decode() {
        assert_eq!(decode_component("a%20b%2"), "a b%2");
        assert_eq!(decode_component("%zz%"), "%zz%");
        assert_eq!(decode_component(&encode_component("é &=/")), "é &=/");
    }

    proptest::proptest! {
        /// Whatever a client sends, the parser answers a request or an error with a 4xx/5xx status.
        #[test]
        fn arbitrary_bytes_never_panic_the_parser(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048)) {
            if let Err(error) = parse(&bytes) {
                proptest::prop_assert!((400..=505).contains(&error.status()));
            }
        }

        /// Requests made of printable pieces are read back exactly: path, query field, header, body.
        #[test]
        fn well_formed_requests_are_read_back(
            path in "/[a-z0-9/]{0,20}",
            value in "[ -~]{0,30}",
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let text = [
                format!(
                    "POST {path}?v={} HTTP/1.1\r\nX-Test: {}\r\nContent-Length: {}\r\n\r\n",
                    encode_component(&value),
                    value.trim(),
                    body.len()
                )
                .into_bytes(),
                body.clone(),
            ]
            .concat();
            let request = parse(&text).expect("parsed").expect("a request");
            proptest::prop_assert_eq!(&request.path, &path);
            proptest::prop_assert_eq!(request.query("v"), Some(value.as_str()));
            proptest::prop_assert_eq!(request.header("x-test"), Some(value.trim()));
            proptest::prop_assert_eq!(&request.body, &body);
        }
    }
}
