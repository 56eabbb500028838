//! A check's conversation with the card, recorded as a transcript (with secrets redacted).

use apdu::{Command, Response, StatusWord};
use card_transport::{Transport, TransportError};

use crate::Outcome;

pub struct Session<'t> {
    recorder: Recorder<'t>,
}

/// The transport of a check, writing both directions of every APDU (GET RESPONSE included) into the
/// transcript.
struct Recorder<'t> {
    transport: &'t mut dyn Transport,
    transcript: Vec<String>,
    /// The next command carries a secret (a PIN, a key): only its header is written down.
    redact_next: bool,
}

impl Transport for Recorder<'_> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let shown = if std::mem::take(&mut self.redact_next) && apdu.len() > 5 {
            format!("{} <redacted>", apdu::hex_spaced(&apdu[..5]))
        } else {
            apdu::hex_spaced(apdu)
        };
        self.transcript.push(format!("> {shown}"));
        let bytes = self.transport.transmit_raw(apdu)?;
        if let [data @ .., sw1, sw2] = &bytes[..] {
            self.transcript.push(format!(
                "< {} {}",
                apdu::hex_spaced(data),
                StatusWord::from_bytes(*sw1, *sw2)
            ));
        }
        Ok(bytes)
    }

    fn atr(&mut self) -> Result<Vec<u8>, TransportError> {
        self.transport.atr()
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.transcript.push("-- reset".into());
        self.transport.reset()
    }

    fn name(&self) -> String {
        self.transport.name()
    }
}

impl<'t> Session<'t> {
    pub fn new(transport: &'t mut dyn Transport) -> Self {
        Self {
            recorder: Recorder {
                transport,
                transcript: Vec::new(),
                redact_next: false,
            },
        }
    }

    pub fn reset(&mut self) -> Result<(), String> {
        self.recorder.reset().map_err(|e| e.to_string())
    }

    pub fn atr(&mut self) -> Result<Vec<u8>, String> {
        self.recorder.atr().map_err(|e| e.to_string())
    }

    /// Sends a hex APDU (spaces allowed) and records both directions.
    pub fn send(&mut self, hex_apdu: &str) -> Result<Response, String> {
        self.send_bytes(&decode_hex(hex_apdu)?)
    }

    /// Like [`Session::send`], but the command data (a PIN, a key) is redacted in the transcript.
    pub fn send_secret(&mut self, hex_apdu: &str) -> Result<Response, String> {
        self.recorder.redact_next = true;
        self.send_bytes(&decode_hex(hex_apdu)?)
    }

    /// Sends bytes as they are (a malformed APDU too: checks probe the card's answers to those).
    pub fn send_bytes(&mut self, apdu: &[u8]) -> Result<Response, String> {
        let bytes = self
            .recorder
            .transmit_raw(apdu)
            .map_err(|e| e.to_string())?;
        Response::from_bytes(&bytes).map_err(|e| e.to_string())
    }

    /// Sends a well-formed hex APDU and fetches every `61 xx` piece with GET RESPONSE (the transport's
    /// one exchange rule); returns all data and the final status.
    pub fn send_collect(&mut self, hex_apdu: &str) -> Result<Response, String> {
        let command = Command::from_bytes(&decode_hex(hex_apdu)?)
            .map_err(|e| format!("{hex_apdu:?} is not a command APDU: {e}"))?;
        self.recorder.exchange(&command).map_err(|e| e.to_string())
    }

    /// Sends a command whose data may need several APDUs as a CLA-10 chain (the transport's one chaining
    /// rule), then collects the answer like [`Session::send_collect`].
    pub fn send_chained(&mut self, command: &Command) -> Result<Response, String> {
        self.recorder
            .exchange_chained(command)
            .map_err(|e| e.to_string())
    }

    pub fn into_transcript(self) -> Vec<String> {
        self.recorder.transcript
    }
}

fn decode_hex(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(clean).map_err(|e| format!("{text:?} is not hex: {e}"))
}

/// `Pass` if the status word is the expected one, else a failure naming both.
pub fn expect_sw(response: &Response, expected: StatusWord, what: &str) -> Outcome {
    if response.sw == expected {
        Outcome::Pass
    } else {
        Outcome::Fail(format!(
            "{what}: expected {expected}, card answered {}",
            response.sw
        ))
    }
}
