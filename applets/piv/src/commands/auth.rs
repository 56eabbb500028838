//! GENERAL AUTHENTICATE: the dynamic authentication template (`7C`) parsed into the one request it can
//! mean, then typed for the key it addresses — a management-key step whose witness and challenge have
//! the algorithm's block length, or a slot operation whose input fits the key algorithm. Tags: `80`
//! witness, `81` challenge, `82` response, `85` exponentiation (ECDH point); an empty tag asks the card
//! for that item.

use card_os::apdu::tlv;
use card_os::CardError;
use piv_types::{tag, KeyAlgorithm, ManagementAlgorithm};

/// One step of authentication with the management key (9B).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MgmtStep {
    /// `80 00`: mutual authentication, step 1 — the card sends an encrypted witness.
    WitnessRequest,
    /// `80 L W' 81 L C`: mutual authentication, step 2 — the decrypted witness and a host challenge,
    /// each one block of the algorithm.
    MutualResponse {
        witness: Vec<u8>,
        challenge: Vec<u8>,
    },
    /// `81 00`: external authentication, step 1 — the card sends a challenge.
    ChallengeRequest,
    /// `82 L R`: external authentication, step 2 — the encrypted challenge, one block.
    ExternalResponse { response: Vec<u8> },
}

/// A private-key operation of an asymmetric slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotOp {
    /// `82 00 81 L H`: sign H — for a curve a hash of at most the scalar's length, for RSA a block of
    /// exactly the modulus length.
    Sign { message: Vec<u8> },
    /// `82 00 85 L P`: ECDH with the host's uncompressed point P on the key's curve.
    Ecdh { point: Vec<u8> },
}

/// What the template asks, before it is typed for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Template {
    WitnessRequest,
    MutualResponse {
        witness: Vec<u8>,
        challenge: Vec<u8>,
    },
    ChallengeRequest,
    ExternalResponse {
        response: Vec<u8>,
    },
    Sign {
        message: Vec<u8>,
    },
    Ecdh {
        point: Vec<u8>,
    },
}

/// SEC1: the first byte of an uncompressed point.
const UNCOMPRESSED_POINT: u8 = 0x04;

impl Template {
    /// `6A 80` for anything but one of the six forms.
    pub fn parse(data: &[u8]) -> Result<Self, CardError> {
        let template = tlv::expect(data, tag::DYNAMIC_AUTH)?;
        let mut fields: [Option<&[u8]>; 4] = [None; 4];
        for item in tlv::iter(template) {
            let item = item?;
            let index = match item.tag.0 {
                tag::WITNESS => 0,
                tag::CHALLENGE => 1,
                tag::RESPONSE => 2,
                tag::EXPONENTIATION => 3,
                _ => return Err(CardError::InvalidData),
            };
            if fields[index].replace(item.value).is_some() {
                return Err(CardError::InvalidData);
            }
        }
        let request = match fields {
            [Some([]), None, None, None] => Template::WitnessRequest,
            [Some(w), Some(c), None, None] if !w.is_empty() && !c.is_empty() => {
                Template::MutualResponse {
                    witness: w.to_vec(),
                    challenge: c.to_vec(),
                }
            }
            [None, Some([]), None, None] => Template::ChallengeRequest,
            [None, None, Some(r), None] if !r.is_empty() => Template::ExternalResponse {
                response: r.to_vec(),
            },
            [None, Some(m), Some([]), None] if !m.is_empty() => Template::Sign {
                message: m.to_vec(),
            },
            [None, None, Some([]), Some(p)] if !p.is_empty() => {
                Template::Ecdh { point: p.to_vec() }
            }
            _ => return Err(CardError::InvalidData),
        };
        Ok(request)
    }

    /// The management-key step this template is, with the algorithm's block length (`6A 80` otherwise).
    pub fn mgmt_step(self, alg: ManagementAlgorithm) -> Result<MgmtStep, CardError> {
        let block = alg.block_len();
        Ok(match self {
            Template::WitnessRequest => MgmtStep::WitnessRequest,
            Template::MutualResponse { witness, challenge }
                if witness.len() == block && challenge.len() == block =>
            {
                MgmtStep::MutualResponse { witness, challenge }
            }
            Template::ChallengeRequest => MgmtStep::ChallengeRequest,
            Template::ExternalResponse { response } if response.len() == block => {
                MgmtStep::ExternalResponse { response }
            }
            _ => return Err(CardError::InvalidData),
        })
    }

    /// The slot operation this template is, with an input that fits `alg` (`6A 80` otherwise).
    pub fn slot_op(self, alg: KeyAlgorithm) -> Result<SlotOp, CardError> {
        Ok(match self {
            Template::Sign { message } if signing_input_fits(alg, message.len()) => {
                SlotOp::Sign { message }
            }
            Template::Ecdh { point } if Some(point.len()) == ecdh_point_len(alg) => {
                if alg != KeyAlgorithm::X25519 && point.first() != Some(&UNCOMPRESSED_POINT) {
                    return Err(CardError::InvalidData);
                }
                SlotOp::Ecdh { point }
            }
            _ => return Err(CardError::InvalidData),
        })
    }
}

/// A NIST curve signs a hash of 1 to scalar-length bytes (shorter ones are left-padded); Ed25519 the
/// message itself, of any length a chain can carry; RSA takes exactly one modulus-sized block; X25519
/// does not sign.
fn signing_input_fits(alg: KeyAlgorithm, len: usize) -> bool {
    match (alg, alg.rsa_modulus_len(), alg.scalar_len()) {
        (_, Some(modulus), _) => len == modulus,
        (KeyAlgorithm::EccP256 | KeyAlgorithm::EccP384, None, Some(scalar)) => {
            (1..=scalar).contains(&len)
        }
        (KeyAlgorithm::Ed25519, None, _) => len > 0,
        _ => false,
    }
}

/// The peer key ECDH takes: an uncompressed point `04 ‖ X ‖ Y` on a NIST curve, a 32-byte
/// u-coordinate for X25519; no ECDH for the others.
fn ecdh_point_len(alg: KeyAlgorithm) -> Option<usize> {
    match alg {
        KeyAlgorithm::EccP256 | KeyAlgorithm::EccP384 => alg.scalar_len().map(|n| 1 + 2 * n),
        KeyAlgorithm::X25519 => alg.scalar_len(),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn each_form_parses_and_nonsense_is_6a80() {
        assert_eq!(
            Template::parse(&[0x7C, 2, 0x80, 0]).unwrap(),
            Template::WitnessRequest
        );
        assert_eq!(
            Template::parse(&[0x7C, 2, 0x81, 0]).unwrap(),
            Template::ChallengeRequest
        );
        assert_eq!(
            Template::parse(&[0x7C, 6, 0x82, 0, 0x81, 2, 1, 2]).unwrap(),
            Template::Sign {
                message: vec![1, 2]
            }
        );
        assert_eq!(
            Template::parse(&[0x7C, 6, 0x81, 2, 1, 2, 0x82, 0]).unwrap(),
            Template::Sign {
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
                Template::parse(bad),
                Err(CardError::InvalidData | CardError::MalformedTlv(_))
            ));
        }
    }

    #[test]
    fn steps_and_operations_have_the_lengths_of_their_algorithm() {
        let mutual = |n: usize| Template::MutualResponse {
            witness: vec![0; n],
            challenge: vec![0; n],
        };
        assert!(mutual(8).mgmt_step(ManagementAlgorithm::TripleDes).is_ok());
        assert!(mutual(8).mgmt_step(ManagementAlgorithm::Aes128).is_err());
        assert!(mutual(16).mgmt_step(ManagementAlgorithm::Aes256).is_ok());
        let external = Template::ExternalResponse {
            response: vec![0; 16],
        };
        assert!(external.mgmt_step(ManagementAlgorithm::TripleDes).is_err());
        let sign = Template::Sign {
            message: vec![0; 8],
        };
        assert!(matches!(
            sign.mgmt_step(ManagementAlgorithm::TripleDes),
            Err(CardError::InvalidData)
        ));

        let sign = |n: usize| Template::Sign {
            message: vec![1; n],
        };
        assert!(sign(32).slot_op(KeyAlgorithm::EccP256).is_ok());
        assert!(sign(20).slot_op(KeyAlgorithm::EccP256).is_ok());
        assert!(sign(33).slot_op(KeyAlgorithm::EccP256).is_err());
        assert!(sign(48).slot_op(KeyAlgorithm::EccP384).is_ok());
        assert!(sign(256).slot_op(KeyAlgorithm::Rsa2048).is_ok());
        assert!(sign(255).slot_op(KeyAlgorithm::Rsa2048).is_err());
        let ecdh = |point: Vec<u8>| Template::Ecdh { point };
        let mut point = vec![0x04];
        point.extend_from_slice(&[1; 64]);
        assert!(ecdh(point.clone()).slot_op(KeyAlgorithm::EccP256).is_ok());
        assert!(ecdh(point.clone()).slot_op(KeyAlgorithm::EccP384).is_err());
        assert!(ecdh(point.clone()).slot_op(KeyAlgorithm::Rsa2048).is_err());
        point[0] = 0x02;
        assert!(ecdh(point).slot_op(KeyAlgorithm::EccP256).is_err());
        assert!(Template::WitnessRequest
            .slot_op(KeyAlgorithm::EccP256)
            .is_err());
    }
}
