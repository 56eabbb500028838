//! A check's conversation with the card, recorded as a transcript (with secrets redacted).

use apdu::{Response, StatusWord};
use virtual_reader::Transport;

use crate::Outcome;

pub struct Session<'t> {
    transport: &'t mut dyn Transport,
    transcript: Vec<String>,
}

impl<'t> Session<'t> {
    pub fn new(transport: &'t mut dyn Transport) -> Self {
        Self {
            transport,
            transcript: Vec::new(),
        }
    }

    pub fn reset(&mut self) -> Result<(), String> {
        self.transcript.push("-- reset".into());
        self.transport.reset().map_err(|e| e.to_string())
    }

    pub fn atr(&mut self) -> Result<Vec<u8>, String> {
        self.transport.atr().map_err(|e| e.to_string())
    }

    /// Sends a hex APDU (spaces allowed) and records both directions.
    pub fn send(&mut self, hex_apdu: &str) -> Result<Response, String> {
        self.exchange(&decode_hex(hex_apdu)?, false)
    }

    /// Like [`Session::send`], but the command data (a PIN, a key) is redacted in the transcript.
    pub fn send_secret(&mut self, hex_apdu: &str) -> Result<Response, String> {
        self.exchange(&decode_hex(hex_apdu)?, true)
    }

    pub fn send_bytes(&mut self, apdu: &[u8]) -> Result<Response, String> {
        self.exchange(apdu, false)
    }

    fn exchange(&mut self, apdu: &[u8], secret: bool) -> Result<Response, String> {
        let shown = if secret && apdu.len() > 5 {
            format!("{} <redacted>", apdu::hex_spaced(&apdu[..5]))
        } else {
            apdu::hex_spaced(apdu)
        };
        self.transcript.push(format!("> {shown}"));
        let bytes = self.transport.transmit(apdu).map_err(|e| e.to_string())?;
        let response = Response::from_bytes(&bytes).map_err(|e| e.to_string())?;
        self.transcript.push(format!(
            "< {} {}",
            apdu::hex_spaced(&response.data),
            response.sw
        ));
        Ok(response)
    }

    /// Sends and fetches every `61 xx` piece with GET RESPONSE; returns all data and the final status.
    pub fn send_collect(&mut self, hex_apdu: &str) -> Result<Response, String> {
        let mut response = self.send(hex_apdu)?;
        let mut data = std::mem::take(&mut response.data);
        while response.sw.sw1() == 0x61 {
            let get = [0x00, 0xC0, 0x00, 0x00, response.sw.sw2()];
            response = self.send_bytes(&get)?;
            data.append(&mut response.data);
        }
        Ok(Response::new(data, response.sw))
    }

    pub fn into_transcript(self) -> Vec<String> {
        self.transcript
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
