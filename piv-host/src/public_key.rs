//! Public keys as a PIV card returns them (template `7F 49`).

use apdu::tlv;
use piv_types::{tag, KeyAlgorithm};

use crate::error::unexpected;
use crate::PivError;

/// A public key the card generated (or reports in its metadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// An elliptic-curve point (`86`): uncompressed SEC1 for P-256/P-384, 32 bytes for Ed25519/X25519.
    Ec {
        algorithm: KeyAlgorithm,
        point: Vec<u8>,
    },
    /// RSA modulus (`81`) and public exponent (`82`), big-endian.
    Rsa {
        algorithm: KeyAlgorithm,
        modulus: Vec<u8>,
        exponent: Vec<u8>,
    },
}

impl PublicKey {
    pub fn algorithm(&self) -> KeyAlgorithm {
        match self {
            PublicKey::Ec { algorithm, .. } | PublicKey::Rsa { algorithm, .. } => *algorithm,
        }
    }

    /// The EC point, if this is an EC key.
    pub fn ec_point(&self) -> Option<&[u8]> {
        match self {
            PublicKey::Ec { point, .. } => Some(point),
            PublicKey::Rsa { .. } => None,
        }
    }

    /// Reads the inside of a `7F 49` template for a key of `algorithm`, checking the lengths.
    pub fn from_template(algorithm: KeyAlgorithm, items: &[u8]) -> Result<Self, PivError> {
        const OP: &str = "public key";
        if let Some(modulus_len) = algorithm.rsa_modulus_len() {
            let modulus = tlv::find(items, tag::RSA_MODULUS)
                .map_err(|e| unexpected(OP, e))?
                .filter(|m| m.len() == modulus_len)
                .ok_or_else(|| unexpected(OP, format!("no 81 modulus of {modulus_len} bytes")))?;
            let exponent = tlv::find(items, tag::RSA_EXPONENT)
                .map_err(|e| unexpected(OP, e))?
                .filter(|e| !e.is_empty() && e.len() <= 8)
                .ok_or_else(|| unexpected(OP, "no 82 exponent"))?;
            return Ok(PublicKey::Rsa {
                algorithm,
                modulus: modulus.to_vec(),
                exponent: exponent.to_vec(),
            });
        }
        let point_len = match algorithm {
            KeyAlgorithm::EccP256 => 65,
            KeyAlgorithm::EccP384 => 97,
            _ => 32,
        };
        let point = tlv::find(items, tag::EC_POINT)
            .map_err(|e| unexpected(OP, e))?
            .filter(|p| p.len() == point_len)
            .ok_or_else(|| unexpected(OP, format!("no 86 point of {point_len} bytes")))?;
        Ok(PublicKey::Ec {
            algorithm,
            point: point.to_vec(),
        })
    }
}
