//! The control protocol of `tessera serve --control`: JSON lines, one request per line, one answer line
//! per request, over a Unix socket (0600) or a loopback TCP port.
//!
//! ```text
//! → {"verb":"remove","slot":1}
//! ← {"ok":true,"message":"slot 1: card removed"}
//! → {"verb":"tear","slot":9,"at_write":1}
//! ← {"ok":false,"error":"slot 9 does not exist: this serve has slots 0 to 1"}
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The longest request line `serve` reads; a longer one is refused and the connection closed.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

/// One request. Slots are numbered from 0 in the order `serve` was given the cards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Slots, their card files and states.
    List,
    /// Takes the card out of the reader (pcscd sees a removal).
    Remove { slot: usize },
    /// Puts the slot's card back, or `card` (an absolute path of a card image) instead.
    Insert {
        slot: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card: Option<PathBuf>,
    },
    /// Warm reset of the card: its volatile state (selection, PIN verified) is gone.
    Reset { slot: usize },
    /// Cuts the card's power at the `at_write`-th persistent write (from 1) of its next command;
    /// `torn` leaves that write half-done.
    Tear {
        slot: usize,
        at_write: u32,
        #[serde(default)]
        torn: bool,
    },
    /// Keeps a copy of the card's durable state under `name`.
    Snapshot { slot: usize, name: String },
    /// Brings a snapshot back (the card is power-cycled into it).
    Restore { slot: usize, name: String },
    /// Fixes the card's clock at `set` (RFC 3339), or lets it follow the host's clock again (`null`).
    Clock {
        slot: usize,
        #[serde(default)]
        set: Option<String>,
    },
    /// Starts an APDU trace into `file` (an absolute path, created 0600).
    TraceStart { slot: usize, file: PathBuf },
    /// Ends the slot's trace.
    TraceStop { slot: usize },
}

impl Request {
    /// Parses one request line; the error is one sentence.
    pub fn parse(line: &str) -> Result<Self, String> {
        serde_json::from_str(line.trim()).map_err(|e| {
            format!("bad request ({e}); a request is one JSON object such as {{\"verb\":\"list\"}}")
        })
    }
}

/// One slot as `list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotInfo {
    pub slot: usize,
    /// The card image served in this slot.
    pub card: PathBuf,
    /// The vpcd address the slot connects to.
    pub vpcd: String,
    /// In the reader (not removed).
    pub inserted: bool,
    /// TCP-connected to vpcd: pcscd sees the card.
    pub connected: bool,
    pub powered: bool,
    /// `system`, or the fixed time in RFC 3339.
    pub clock: String,
    /// The trace file, while tracing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<PathBuf>,
    pub snapshots: Vec<String>,
    /// What became of the last `tear`: armed, cut, or not reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tear: Option<String>,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    /// Why the request was refused, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done, in one sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slots: Option<Vec<SlotInfo>>,
}

impl Response {
    pub fn done(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            error: None,
            message: Some(message.into()),
            slots: None,
        }
    }

    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            ok: false,
            error: Some(error.into()),
            message: None,
            slots: None,
        }
    }

    pub fn slots(slots: Vec<SlotInfo>) -> Self {
        Self {
            ok: true,
            error: None,
            message: None,
            slots: Some(slots),
        }
    }

    /// One JSON line (no newline).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"ok":false,"error":"the answer could not be encoded"}"#.to_owned()
        })
    }
}

/// Where the control socket listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlAddr {
    Unix(PathBuf),
    /// Loopback only.
    Tcp(SocketAddr),
}

impl ControlAddr {
    /// `IP:PORT` is TCP and must be a loopback address; anything else is a Unix socket path.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err(
                "the control address is empty: give a socket path or 127.0.0.1:PORT".into(),
            );
        }
        let looks_tcp =
            !text.starts_with('/') && !text.starts_with('.') && text.rsplit_once(':').is_some();
        if !looks_tcp {
            return Ok(Self::Unix(PathBuf::from(text)));
        }
        let addr: SocketAddr = text.parse().map_err(|_| {
            format!(
                "control address {text:?} is neither a socket path nor IP:PORT \
                 (use 127.0.0.1:PORT, or ./name for a socket file)"
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(format!(
                "control address {addr} is not loopback: the control socket is a privilege \
                 (it can pull cards and cut their power), so TCP listens only on 127.0.0.1 or [::1]"
            ));
        }
        Ok(Self::Tcp(addr))
    }
}

impl std::fmt::Display for ControlAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "{}", path.display()),
            Self::Tcp(addr) => write!(f, "{addr}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_by_verb() {
        assert_eq!(
            Request::parse(r#"{"verb":"remove","slot":1}"#),
            Ok(Request::Remove { slot: 1 })
        );
        assert_eq!(
            Request::parse(r#" {"verb":"tear","slot":0,"at_write":3} "#),
            Ok(Request::Tear {
                slot: 0,
                at_write: 3,
                torn: false
            })
        );
        assert_eq!(
            Request::parse(r#"{"verb":"trace-start","slot":2,"file":"/t/x.trace"}"#),
            Ok(Request::TraceStart {
                slot: 2,
                file: PathBuf::from("/t/x.trace")
            })
        );
        let line = serde_json::to_string(&Request::Insert {
            slot: 1,
            card: None,
        })
        .expect("encode");
        assert_eq!(line, r#"{"verb":"insert","slot":1}"#);
    }

    #[test]
    fn bad_requests_get_one_sentence() {
        for (line, needle) in [
            ("", "EOF"),
            ("not json", "expected"),
            (
                r#"{"verb":"explode","slot":1}"#,
                "unknown variant `explode`",
            ),
            (r#"{"verb":"remove"}"#, "missing field `slot`"),
            (r#"{"verb":"remove","slot":-1}"#, "invalid value"),
            (
                r#"{"verb":"remove","slot":1,"sloth":2}"#,
                "unknown field `sloth`",
            ),
            (r#"[1,2]"#, "expected"),
        ] {
            let error = Request::parse(line).expect_err(line);
            assert!(error.contains(needle), "{line}: {error}");
            assert!(!error.contains('\n'), "{error}");
        }
    }

    #[test]
    fn tcp_is_loopback_only() {
        assert_eq!(
            ControlAddr::parse("127.0.0.1:7000"),
            Ok(ControlAddr::Tcp("127.0.0.1:7000".parse().expect("addr")))
        );
        assert!(matches!(
            ControlAddr::parse("[::1]:7000"),
            Ok(ControlAddr::Tcp(_))
        ));
        let refused = ControlAddr::parse("0.0.0.0:7000").expect_err("not loopback");
        assert!(refused.contains("not loopback"), "{refused}");
        assert!(ControlAddr::parse("192.168.1.4:7000").is_err());
        assert!(ControlAddr::parse("localhost:7000")
            .expect_err("hostname")
            .contains("IP:PORT"));
        assert_eq!(
            ControlAddr::parse("/run/tessera.sock"),
            Ok(ControlAddr::Unix(PathBuf::from("/run/tessera.sock")))
        );
        assert_eq!(
            ControlAddr::parse("ctl.sock"),
            Ok(ControlAddr::Unix(PathBuf::from("ctl.sock")))
        );
    }
}
