//! The host side of PIV, as a personalization machine speaks it: every operation is APDUs over a
//! [`Transport`], so the same code drives an in-process card or a physical one through PC/SC.

use apdu::{tlv, StatusWord};
use card_os::crypto::{BlockCipher, Crypto};
use thiserror::Error;
use virtual_reader::{Transport, TransportError};
use zeroize::Zeroizing;

const SELECT_PIV: [u8; 11] = [
    0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
];

#[derive(Debug, Error)]
pub enum PivError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("{operation} answered {sw}")]
    Refused {
        operation: &'static str,
        sw: StatusWord,
    },
    #[error("{operation}: unexpected answer ({detail})")]
    Unexpected {
        operation: &'static str,
        detail: String,
    },
}

/// A PIV management key: algorithm id (`03`, `08`, `0A`, `0C`) and key bytes.
pub struct ManagementKey {
    pub algorithm: u8,
    pub key: Zeroizing<Vec<u8>>,
}

impl ManagementKey {
    /// The factory key every new PIV card starts with.
    pub fn factory() -> Self {
        Self {
            algorithm: 0x03,
            key: Zeroizing::new(piv_applet::DEFAULT_MANAGEMENT_KEY.to_vec()),
        }
    }

    fn cipher(&self) -> Result<BlockCipher, PivError> {
        Ok(match self.algorithm {
            0x03 => BlockCipher::TripleDes,
            0x08 => BlockCipher::Aes128,
            0x0A => BlockCipher::Aes192,
            0x0C => BlockCipher::Aes256,
            other => {
                return Err(PivError::Unexpected {
                    operation: "management key",
                    detail: format!("unknown algorithm {other:02X}"),
                })
            }
        })
    }
}

/// A PIV session on one card.
pub struct PivSession<'t> {
    transport: &'t mut dyn Transport,
}

/// Pads a PIN or PUK with `FF` to 8 bytes.
fn padded(value: &str) -> Zeroizing<[u8; 8]> {
    let mut out = Zeroizing::new([0xFFu8; 8]);
    for (slot, byte) in out.iter_mut().zip(value.bytes()) {
        *slot = byte;
    }
    out
}

impl<'t> PivSession<'t> {
    /// Selects the PIV application.
    pub fn open(transport: &'t mut dyn Transport) -> Result<Self, PivError> {
        let mut session = Self { transport };
        session.expect_ok("SELECT PIV", &SELECT_PIV)?;
        Ok(session)
    }

    /// One command, following `61 xx` with GET RESPONSE; returns all data and the final status.
    fn exchange(&mut self, apdu: &[u8]) -> Result<(Vec<u8>, StatusWord), PivError> {
        let mut response = self.transport.transmit(apdu)?;
        let mut data = Vec::new();
        loop {
            let n = response.len();
            if n < 2 {
                return Err(unexpected("exchange", "an answer without a status word"));
            }
            data.extend_from_slice(&response[..n - 2]);
            let sw = StatusWord::from_bytes(response[n - 2], response[n - 1]);
            if sw.sw1() != 0x61 {
                return Ok((data, sw));
            }
            response = self
                .transport
                .transmit(&[0x00, 0xC0, 0x00, 0x00, sw.sw2()])?;
        }
    }

    fn expect_ok(&mut self, operation: &'static str, apdu: &[u8]) -> Result<Vec<u8>, PivError> {
        let (data, sw) = self.exchange(apdu)?;
        if sw != StatusWord::SUCCESS {
            return Err(PivError::Refused { operation, sw });
        }
        Ok(data)
    }

    /// A command with data longer than one APDU, sent as a CLA-10 chain of 255-byte links.
    fn chained(
        &mut self,
        operation: &'static str,
        header: [u8; 4],
        data: &[u8],
    ) -> Result<Vec<u8>, PivError> {
        let links: Vec<&[u8]> = data.chunks(255).collect();
        let mut answer = Vec::new();
        for (i, link) in links.iter().enumerate() {
            let last = i + 1 == links.len();
            let cla = if last { header[0] } else { header[0] | 0x10 };
            let mut apdu = vec![cla, header[1], header[2], header[3], link.len() as u8];
            apdu.extend_from_slice(link);
            answer = self.expect_ok(operation, &apdu)?;
        }
        Ok(answer)
    }

    /// Mutual authentication with the management key (9B).
    pub fn authenticate(&mut self, key: &ManagementKey) -> Result<(), PivError> {
        let cipher = key.cipher()?;
        let block = cipher.block_len();
        let alg = key.algorithm;
        let witness = self.expect_ok(
            "GENERAL AUTHENTICATE (witness)",
            &[0x00, 0x87, alg, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00, 0x00],
        )?;
        let template = tlv::expect(&witness, 0x7Cu32).map_err(|e| unexpected("witness", e))?;
        let encrypted = tlv::find(template, 0x80u32)
            .map_err(|e| unexpected("witness", e))?
            .filter(|w| w.len() == block)
            .ok_or_else(|| unexpected("witness", "no 80 witness of one block"))?;
        let decrypted = Zeroizing::new(
            Crypto::block_decrypt(cipher, &key.key, encrypted)
                .map_err(|e| unexpected("witness", e))?,
        );
        let mut challenge = vec![0u8; block];
        getrandom::fill(&mut challenge).map_err(|e| unexpected("challenge", e))?;
        let mut body = Vec::new();
        tlv::write_nested(&mut body, 0x7Cu32, |inner| {
            tlv::write(inner, 0x80u32, &decrypted);
            tlv::write(inner, 0x81u32, &challenge);
        });
        let mut apdu = vec![0x00, 0x87, alg, 0x9B, body.len() as u8];
        apdu.extend_from_slice(&body);
        apdu.push(0x00);
        let answer = self.expect_ok("GENERAL AUTHENTICATE (mutual)", &apdu)?;
        let template = tlv::expect(&answer, 0x7Cu32).map_err(|e| unexpected("response", e))?;
        let response = tlv::find(template, 0x82u32)
            .map_err(|e| unexpected("response", e))?
            .ok_or_else(|| unexpected("response", "no 82 response"))?;
        let expected = Crypto::block_encrypt(cipher, &key.key, &challenge)
            .map_err(|e| unexpected("response", e))?;
        if !card_os::ct_eq(response, &expected) {
            // The card did not prove it knows the key: not the card we think it is.
            return Err(unexpected(
                "GENERAL AUTHENTICATE",
                "the card's response to our challenge is wrong",
            ));
        }
        Ok(())
    }

    /// Generates a P-256 key in `slot` on the card; returns the uncompressed public point.
    pub fn generate_p256(&mut self, slot: u8) -> Result<Vec<u8>, PivError> {
        let answer = self.expect_ok(
            "GENERATE ASYMMETRIC KEY PAIR",
            &[
                0x00, 0x47, 0x00, slot, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11, 0x00,
            ],
        )?;
        let template = tlv::expect(&answer, 0x7F49u32).map_err(|e| unexpected("generate", e))?;
        let point = tlv::find(template, 0x86u32)
            .map_err(|e| unexpected("generate", e))?
            .filter(|p| p.len() == 65 && p[0] == 0x04)
            .ok_or_else(|| unexpected("generate", "no 86 uncompressed point"))?;
        Ok(point.to_vec())
    }

    /// PUT DATA of a data object (`tag` like `5F C1 05`), value already wrapped in `53`.
    pub fn put_object(&mut self, tag: &[u8], object: &[u8]) -> Result<(), PivError> {
        let mut data = Vec::with_capacity(object.len() + 6);
        tlv::write(&mut data, 0x5Cu32, tag);
        data.extend_from_slice(object);
        self.chained("PUT DATA", [0x00, 0xDB, 0x3F, 0xFF], &data)
            .map(|_| ())
    }

    /// GET DATA of a data object; returns the `53` value.
    pub fn get_object(&mut self, tag: &[u8]) -> Result<Vec<u8>, PivError> {
        let mut apdu = vec![
            0x00,
            0xCB,
            0x3F,
            0xFF,
            tag.len() as u8 + 2,
            0x5C,
            tag.len() as u8,
        ];
        apdu.extend_from_slice(tag);
        apdu.push(0x00);
        let answer = self.expect_ok("GET DATA", &apdu)?;
        Ok(tlv::expect(&answer, 0x53u32)
            .map_err(|e| unexpected("GET DATA", e))?
            .to_vec())
    }

    /// YubiKey ATTEST (`F9`): a certificate for the slot's key, signed by the card's attestation key.
    pub fn attest(&mut self, slot: u8) -> Result<Vec<u8>, PivError> {
        self.expect_ok("ATTEST", &[0x00, 0xF9, slot, 0x00, 0x00])
    }

    /// Writes a certificate into a slot's certificate object.
    pub fn put_certificate(&mut self, object_tag: &[u8], der: &[u8]) -> Result<(), PivError> {
        let mut object = Vec::with_capacity(der.len() + 12);
        tlv::write_nested(&mut object, 0x53u32, |inner| {
            tlv::write(inner, 0x70u32, der);
            tlv::write(inner, 0x71u32, &[0x00]);
            tlv::write(inner, 0xFEu32, &[]);
        });
        self.put_object(object_tag, &object)
    }

    /// CHANGE REFERENCE DATA for the PIN (`80`) or PUK (`81`).
    pub fn change_reference(
        &mut self,
        reference: u8,
        old: &str,
        new: &str,
    ) -> Result<(), PivError> {
        let mut apdu = Zeroizing::new(vec![0x00, 0x24, 0x00, reference, 0x10]);
        apdu.extend_from_slice(padded(old).as_ref());
        apdu.extend_from_slice(padded(new).as_ref());
        self.expect_ok("CHANGE REFERENCE DATA", &apdu).map(|_| ())
    }

    /// VERIFY the PIN; returns the status word (`90 00`, `63 Cx`, `69 83`).
    pub fn verify_pin(&mut self, pin: &str) -> Result<StatusWord, PivError> {
        let mut apdu = Zeroizing::new(vec![0x00, 0x20, 0x00, 0x80, 0x08]);
        apdu.extend_from_slice(padded(pin).as_ref());
        Ok(self.exchange(&apdu)?.1)
    }

    /// The PIN's status without spending a try.
    pub fn pin_status(&mut self) -> Result<StatusWord, PivError> {
        Ok(self.exchange(&[0x00, 0x20, 0x00, 0x80])?.1)
    }

    /// Replaces the management key (YubiKey `FF`); the session must be authenticated.
    pub fn set_management_key(&mut self, new: &ManagementKey) -> Result<(), PivError> {
        let mut apdu = Zeroizing::new(vec![
            0x00,
            0xFF,
            0xFF,
            0xFF,
            (new.key.len() + 3) as u8,
            new.algorithm,
            0x9B,
            new.key.len() as u8,
        ]);
        apdu.extend_from_slice(&new.key);
        self.expect_ok("SET MANAGEMENT KEY", &apdu).map(|_| ())
    }
}

fn unexpected(operation: &'static str, detail: impl std::fmt::Display) -> PivError {
    PivError::Unexpected {
        operation,
        detail: detail.to_string(),
    }
}
