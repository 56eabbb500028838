//! The host side of an Italian CNS card: what a personalization bureau and a test send it, typed.
//!
//! [`CnsSession`] works over any [`Transport`] (the in-process reader on the bureau's line, PC/SC
//! for a card in a reader), and [`PersonalData`] writes `EF_DatiPersonali` in the format OpenSC's
//! itacns emulator reads the holder's name from. The card's side is `applets/cns`.

use aes::cipher::{BlockCipherEncrypt, KeyInit};
use apdu::{Command, Response, StatusWord};
use card_transport::{Transport, TransportError};
use thiserror::Error;
use zeroize::Zeroizing;

/// Paths (from the MF, without `3F00`) of the files a bureau writes and reads.
pub mod path {
    pub const ID_CARTA: &[u16] = &[0x1000, 0x1003];
    pub const CERTIFICATE: &[u16] = &[0x1100, 0x1101];
    pub const DATI_PERSONALI: &[u16] = &[0x1100, 0x1102];
    pub const PUBLIC_KEY: &[u16] = &[0x3F01];
}

/// PIN references (VERIFY's P2) and the card's key reference (MSE `83 01 01`).
const PIN_REFERENCE: u8 = 0x10;
const PUK_REFERENCE: u8 = 0x11;
const KEY_REFERENCE: u8 = 0x01;
const PERSONALIZATION_KEY_REFERENCE: u8 = 0x01;
const CHALLENGE_LEN: usize = 16;
const PIN_BLOCK_LEN: usize = 8;
/// One short APDU's worth of file data.
const CHUNK: usize = 255;

#[derive(Debug, Error)]
pub enum CnsError {
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
    #[error("{what} does not fit: {detail}")]
    DoesNotFit { what: &'static str, detail: String },
}

impl CnsError {
    pub fn status_word(&self) -> Option<StatusWord> {
        match self {
            CnsError::Refused { sw, .. } => Some(*sw),
            _ => None,
        }
    }
}

/// The outcome of a PIN or PUK presentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinOutcome {
    Verified,
    Wrong { tries_left: u8 },
    Blocked,
}

/// Which secret a VERIFY presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secret {
    Pin,
    Puk,
}

/// The card's RSA public key as GENERATE KEY PAIR answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsaPublicKey {
    pub modulus: Vec<u8>,
    pub exponent: Vec<u8>,
}

impl RsaPublicKey {
    /// DER `SubjectPublicKeyInfo` (rsaEncryption), for the certificate request.
    pub fn spki_der(&self) -> Result<Vec<u8>, CnsError> {
        use rsa::pkcs8::EncodePublicKey as _;
        let key = rsa::PublicKey::new(
            rsa::BoxedUint::from_be_slice_vartime(&self.modulus),
            rsa::BoxedUint::from_be_slice_vartime(&self.exponent),
        )
        .map_err(|e| CnsError::Unexpected {
            operation: "GENERATE KEY PAIR",
            detail: format!("not an RSA public key: {e}"),
        })?;
        key.to_public_key_der()
            .map(|d| d.as_bytes().to_vec())
            .map_err(|e| CnsError::Unexpected {
                operation: "GENERATE KEY PAIR",
                detail: e.to_string(),
            })
    }
}

/// A session with a CNS card.
pub struct CnsSession<'t, T: Transport + ?Sized> {
    transport: &'t mut T,
}

fn command(ins: u8, p1: u8, p2: u8) -> Command {
    Command::new(0x00, ins, p1, p2)
}

fn path_bytes(path: &[u16]) -> Vec<u8> {
    path.iter().flat_map(|fid| fid.to_be_bytes()).collect()
}

impl<'t, T: Transport + ?Sized> CnsSession<'t, T> {
    pub fn new(transport: &'t mut T) -> Self {
        Self { transport }
    }

    fn exchange(&mut self, operation: &'static str, c: &Command) -> Result<Response, CnsError> {
        let response = self.transport.exchange(c)?;
        if response.sw == StatusWord::SUCCESS {
            Ok(response)
        } else {
            Err(CnsError::Refused {
                operation,
                sw: response.sw,
            })
        }
    }

    /// SELECT by path from the MF; returns the EF's size from its FCP.
    pub fn select(&mut self, path: &[u16]) -> Result<usize, CnsError> {
        let select = command(0xA4, 0x08, 0x04)
            .with_data(path_bytes(path))
            .with_le(256)
            .map_err(TransportError::from)?;
        let fcp = self.exchange("SELECT", &select)?.data;
        let inner = apdu::tlv::expect(&fcp, 0x62u32).map_err(|e| CnsError::Unexpected {
            operation: "SELECT",
            detail: format!("no FCP: {e}"),
        })?;
        Ok(match apdu::tlv::find(inner, 0x80u32) {
            Ok(Some(size)) => size.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b)),
            _ => 0,
        })
    }

    /// The whole content of an EF.
    pub fn read_file(&mut self, path: &[u16]) -> Result<Vec<u8>, CnsError> {
        let size = self.select(path)?;
        let mut out = Vec::with_capacity(size);
        while out.len() < size {
            let offset = u16::try_from(out.len()).map_err(|_| CnsError::DoesNotFit {
                what: "the file",
                detail: format!("{size} bytes"),
            })?;
            let [hi, lo] = offset.to_be_bytes();
            let read = command(0xB0, hi, lo)
                .with_le(CHUNK.min(size - out.len()))
                .map_err(TransportError::from)?;
            let piece = self.exchange("READ BINARY", &read)?.data;
            if piece.is_empty() {
                break;
            }
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    /// Writes an EF's content from offset 0 (personalization key authenticated first).
    pub fn write_file(&mut self, path: &[u16], bytes: &[u8]) -> Result<(), CnsError> {
        self.select(path)?;
        for (i, chunk) in bytes.chunks(CHUNK).enumerate() {
            let offset = u16::try_from(i * CHUNK).map_err(|_| CnsError::DoesNotFit {
                what: "the file",
                detail: format!("{} bytes", bytes.len()),
            })?;
            let [hi, lo] = offset.to_be_bytes();
            self.exchange(
                "UPDATE BINARY",
                &command(0xD6, hi, lo).with_data(chunk.to_vec()),
            )?;
        }
        Ok(())
    }

    /// EXTERNAL AUTHENTICATE with the personalization key (AES-128 over the card's challenge).
    pub fn authenticate(&mut self, key: &[u8; 16]) -> Result<(), CnsError> {
        let challenge = self
            .exchange(
                "GET CHALLENGE",
                &command(0x84, 0, 0)
                    .with_le(CHALLENGE_LEN)
                    .map_err(TransportError::from)?,
            )?
            .data;
        let mut block =
            aes::Block::try_from(challenge.as_slice()).map_err(|_| CnsError::Unexpected {
                operation: "GET CHALLENGE",
                detail: format!("{} bytes instead of {CHALLENGE_LEN}", challenge.len()),
            })?;
        aes::Aes128::new(&(*key).into()).encrypt_block(&mut block);
        self.exchange(
            "EXTERNAL AUTHENTICATE",
            &command(0x82, 0, PERSONALIZATION_KEY_REFERENCE).with_data(block.to_vec()),
        )?;
        Ok(())
    }

    /// Generates the card's RSA key (1024 or 2048 bits) and returns its public half.
    pub fn generate_key(&mut self, bits: u16) -> Result<RsaPublicKey, CnsError> {
        let generate = command(0x46, 0, KEY_REFERENCE)
            .with_data(bits.to_be_bytes().to_vec())
            .with_le(256)
            .map_err(TransportError::from)?;
        let answer = self.exchange("GENERATE KEY PAIR", &generate)?.data;
        let unexpected = |detail: String| CnsError::Unexpected {
            operation: "GENERATE KEY PAIR",
            detail,
        };
        let inner = apdu::tlv::expect(&answer, 0x7F49u32).map_err(|e| unexpected(e.to_string()))?;
        let field = |tag: u32| {
            apdu::tlv::find(inner, tag)
                .map_err(|e| unexpected(e.to_string()))?
                .map(<[u8]>::to_vec)
                .ok_or_else(|| unexpected(format!("no tag {tag:02X}")))
        };
        Ok(RsaPublicKey {
            modulus: field(0x81)?,
            exponent: field(0x82)?,
        })
    }

    /// VERIFY the PIN or the PUK.
    pub fn verify(&mut self, which: Secret, value: &str) -> Result<PinOutcome, CnsError> {
        let reference = match which {
            Secret::Pin => PIN_REFERENCE,
            Secret::Puk => PUK_REFERENCE,
        };
        let block = pin_block(value)?;
        let response = self
            .transport
            .exchange(&command(0x20, 0, reference).with_data(block.to_vec()))?;
        pin_outcome("VERIFY", response.sw)
    }

    /// CHANGE REFERENCE DATA of the PIN.
    pub fn change_pin(&mut self, old: &str, new: &str) -> Result<PinOutcome, CnsError> {
        self.change(Secret::Pin, old, new)
    }

    /// CHANGE REFERENCE DATA of the PIN or the PUK.
    pub fn change(&mut self, which: Secret, old: &str, new: &str) -> Result<PinOutcome, CnsError> {
        let reference = match which {
            Secret::Pin => PIN_REFERENCE,
            Secret::Puk => PUK_REFERENCE,
        };
        let mut data = Zeroizing::new(pin_block(old)?.to_vec());
        data.extend_from_slice(pin_block(new)?.as_ref());
        let response = self
            .transport
            .exchange(&command(0x24, 0, reference).with_data(data.to_vec()))?;
        pin_outcome("CHANGE REFERENCE DATA", response.sw)
    }

    /// Replaces the personalization key (after [`CnsSession::authenticate`] with the current one).
    pub fn change_personalization_key(&mut self, new: &[u8; 16]) -> Result<(), CnsError> {
        self.exchange(
            "CHANGE REFERENCE DATA",
            &command(0x24, 0x01, PERSONALIZATION_KEY_REFERENCE).with_data(new.to_vec()),
        )?;
        Ok(())
    }

    /// RESET RETRY COUNTER: the PUK and a new PIN.
    pub fn unblock_pin(&mut self, puk: &str, new_pin: &str) -> Result<PinOutcome, CnsError> {
        let mut data = Zeroizing::new(pin_block(puk)?.to_vec());
        data.extend_from_slice(pin_block(new_pin)?.as_ref());
        let response = self
            .transport
            .exchange(&command(0x2C, 0, PIN_REFERENCE).with_data(data.to_vec()))?;
        pin_outcome("RESET RETRY COUNTER", response.sw)
    }

    /// Signs a DigestInfo (the card pads it, PKCS#1 v1.5) with the card's key: the security
    /// environment restored and set as OpenSC does, then PSO COMPUTE DIGITAL SIGNATURE.
    pub fn sign_digest_info(&mut self, digest_info: &[u8]) -> Result<Vec<u8>, CnsError> {
        self.exchange(
            "MSE RESTORE",
            &command(0x22, 0xF3, 0x03)
                .with_le(256)
                .map_err(TransportError::from)?,
        )?;
        self.exchange(
            "MSE SET",
            &command(0x22, 0xF1, 0xB6).with_data(vec![0x83, 0x01, KEY_REFERENCE]),
        )?;
        let sign = command(0x2A, 0x9E, 0x9A)
            .with_data(digest_info.to_vec())
            .with_le(256)
            .map_err(TransportError::from)?;
        Ok(self.exchange("PSO COMPUTE DIGITAL SIGNATURE", &sign)?.data)
    }
}

fn pin_block(value: &str) -> Result<Zeroizing<[u8; PIN_BLOCK_LEN]>, CnsError> {
    if value.is_empty() || value.len() > PIN_BLOCK_LEN {
        return Err(CnsError::DoesNotFit {
            what: "a PIN",
            detail: format!("{} characters, at most {PIN_BLOCK_LEN}", value.len()),
        });
    }
    let mut block = Zeroizing::new([0xFF; PIN_BLOCK_LEN]);
    block[..value.len()].copy_from_slice(value.as_bytes());
    Ok(block)
}

fn pin_outcome(operation: &'static str, sw: StatusWord) -> Result<PinOutcome, CnsError> {
    match (sw.sw1(), sw.sw2()) {
        (0x90, 0x00) => Ok(PinOutcome::Verified),
        (0x63, x) if x & 0xF0 == 0xC0 => Ok(PinOutcome::Wrong {
            tries_left: x & 0x0F,
        }),
        (0x69, 0x83) => Ok(PinOutcome::Blocked),
        _ => Err(CnsError::Refused { operation, sw }),
    }
}

/// The holder data of `EF_DatiPersonali`, in the CNS format: six ASCII hex digits giving the
/// length of what follows, then each field as two ASCII hex digits of length and its bytes. Dates
/// are `ddmmyyyy`. Fields the card does not carry are empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalData {
    pub issuer_code: String,
    pub issuing_date: String,
    pub expiry_date: String,
    pub surname: String,
    pub given_name: String,
    pub birth_date: String,
    pub sex: String,
    pub codice_fiscale: String,
}

/// The file OpenSC reads at most 400 bytes of.
pub const DATI_PERSONALI_MAX: usize = 400;

impl PersonalData {
    pub fn encode(&self) -> Result<Vec<u8>, CnsError> {
        let fields = [
            &self.issuer_code,
            &self.issuing_date,
            &self.expiry_date,
            &self.surname,
            &self.given_name,
            &self.birth_date,
            &self.sex,
            &String::new(), // height
            &self.codice_fiscale,
        ];
        let mut body = String::new();
        for field in fields {
            if field.len() > 0xFF {
                return Err(CnsError::DoesNotFit {
                    what: "a personal-data field",
                    detail: format!("{} bytes, at most 255", field.len()),
                });
            }
            body.push_str(&format!("{:02X}{field}", field.len()));
        }
        // Citizenship, birth township, birth country, birth certificate, residence township,
        // residence address, notes: not on an operator card.
        body.push_str(&"00".repeat(7));
        let file = format!("{:06X}{body}", body.len());
        if file.len() > DATI_PERSONALI_MAX {
            return Err(CnsError::DoesNotFit {
                what: "EF_DatiPersonali",
                detail: format!("{} bytes, at most {DATI_PERSONALI_MAX}", file.len()),
            });
        }
        Ok(file.into_bytes())
    }
}
