//! The dynamic authentication template (`7C`) of GENERAL AUTHENTICATE, parsed into the one request
//! it can mean. Tags: `80` witness, `81` challenge, `82` response, `85` exponentiation (ECDH point).
//! An empty tag asks the card for that item.

use card_os::apdu::tlv;
use card_os::CardError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthRequest {
    /// `80 00`: mutual authentication, step 1 — the card sends a witness.
    WitnessRequest,
    /// `80 L W' 81 L C`: mutual authentication, step 2 — the decrypted witness and a host challenge.
    MutualResponse {
        witness: Vec<u8>,
        challenge: Vec<u8>,
    },
    /// `81 00`: external authentication, step 1 — the card sends a challenge.
    ChallengeRequest,
    /// `82 L R`: external authentication, step 2 — the encrypted challenge.
    ExternalResponse { response: Vec<u8> },
    /// `82 00 81 L H`: sign the hash H.
    Sign { message: Vec<u8> },
    /// `82 00 85 L P`: ECDH with the host's point P.
    Ecdh { point: Vec<u8> },
}

impl AuthRequest {
    pub fn parse(data: &[u8]) -> Result<Self, CardError> {
        let template = tlv::expect(data, 0x7Cu32)?;
        let mut fields: [Option<&[u8]>; 4] = [None; 4];
        for item in tlv::iter(template) {
            let item = item?;
            let index = match item.tag.0 {
                0x80 => 0,
                0x81 => 1,
                0x82 => 2,
                0x85 => 3,
                _ => return Err(CardError::InvalidData),
            };
            if fields[index].replace(item.value).is_some() {
                return Err(CardError::InvalidData);
            }
        }
        let request = match fields {
            [Some([]), None, None, None] => AuthRequest::WitnessRequest,
            [Some(w), Some(c), None, None] if !w.is_empty() && !c.is_empty() => {
                AuthRequest::MutualResponse {
                    witness: w.to_vec(),
                    challenge: c.to_vec(),
                }
            }
            [None, Some([]), None, None] => AuthRequest::ChallengeRequest,
            [None, None, Some(r), None] if !r.is_empty() => AuthRequest::ExternalResponse {
                response: r.to_vec(),
            },
            [None, Some(m), Some([]), None] if !m.is_empty() => AuthRequest::Sign {
                message: m.to_vec(),
            },
            [None, None, Some([]), Some(p)] if !p.is_empty() => {
                AuthRequest::Ecdh { point: p.to_vec() }
            }
            _ => return Err(CardError::InvalidData),
        };
        Ok(request)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_form_parses_and_nonsense_is_6a80() {
        assert_eq!(
            AuthRequest::parse(&[0x7C, 2, 0x80, 0]).unwrap(),
            AuthRequest::WitnessRequest
        );
        assert_eq!(
            AuthRequest::parse(&[0x7C, 2, 0x81, 0]).unwrap(),
            AuthRequest::ChallengeRequest
        );
        assert_eq!(
            AuthRequest::parse(&[0x7C, 6, 0x82, 0, 0x81, 2, 1, 2]).unwrap(),
            AuthRequest::Sign {
                message: vec![1, 2]
            }
        );
        assert_eq!(
            AuthRequest::parse(&[0x7C, 6, 0x81, 2, 1, 2, 0x82, 0]).unwrap(),
            AuthRequest::Sign {
                message: vec![1, 2]
            }
        );
        for bad in [
            &[0x7C, 0][..],
            &[0x7C, 4, 0x80, 0, 0x80, 0],
            &[0x7C, 2, 0x99, 0],
            &[0x7D, 2, 0x80, 0],
            &[0x7C, 3, 0x80, 0],
            &[0x7C, 2, 0x82, 0],
        ] {
            assert!(matches!(
                AuthRequest::parse(bad),
                Err(CardError::InvalidData | CardError::IncorrectData(_))
            ));
        }
    }
}
