//! Ed25519 signing keys and X25519 key-agreement keys (RFC 8032, RFC 7748), as a YubiKey 5.7 holds them
//! in PIV slots. Both are stored as their 32-byte private value: the Ed25519 seed, the X25519 scalar
//! (clamped at use, as RFC 7748 says, so any 32 bytes are a key).

use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

use super::{Crypto, CryptoError};
use crate::Secret;

/// The length of every Ed25519 / X25519 private value, public key and shared secret.
pub const CURVE25519_KEY_LEN: usize = 32;

/// An Ed25519 key pair (zeroized on drop: `SigningKey` does it).
pub struct Ed25519KeyPair {
    key: ed25519_dalek::SigningKey,
}

impl Ed25519KeyPair {
    /// The 32-byte seed, for storing in the applet's persistent memory.
    pub fn private_bytes(&self) -> Zeroizing<[u8; CURVE25519_KEY_LEN]> {
        Zeroizing::new(self.key.to_bytes())
    }

    /// The 32-byte public key (the compressed point).
    pub fn public_key(&self) -> [u8; CURVE25519_KEY_LEN] {
        self.key.verifying_key().to_bytes()
    }

    /// PureEdDSA over the whole message (deterministic: no randomness drawn).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

/// An X25519 key pair.
pub struct X25519KeyPair {
    secret: x25519_dalek::StaticSecret,
}

impl X25519KeyPair {
    /// The 32-byte scalar as given (unclamped), for storing in the applet's persistent memory.
    pub fn private_bytes(&self) -> Zeroizing<[u8; CURVE25519_KEY_LEN]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The 32-byte public key (the u-coordinate).
    pub fn public_key(&self) -> [u8; CURVE25519_KEY_LEN] {
        x25519_dalek::PublicKey::from(&self.secret).to_bytes()
    }

    /// X25519 with the peer's 32-byte public key. A peer key of small order gives the all-zero secret,
    /// which RFC 7748 §6.1 says to refuse: it is [`CryptoError::InvalidPoint`].
    pub fn agree(&self, peer: &[u8]) -> Result<Secret, CryptoError> {
        let peer: [u8; CURVE25519_KEY_LEN] =
            peer.try_into().map_err(|_| CryptoError::InvalidPoint)?;
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(peer));
        if !shared.was_contributory() {
            return Err(CryptoError::InvalidPoint);
        }
        Ok(Secret::new(shared.as_bytes().to_vec()))
    }
}

impl std::fmt::Debug for Ed25519KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ed25519KeyPair(<secret>)")
    }
}

impl std::fmt::Debug for X25519KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("X25519KeyPair(<secret>)")
    }
}

fn private_value(bytes: &[u8]) -> Result<Zeroizing<[u8; CURVE25519_KEY_LEN]>, CryptoError> {
    let mut value = Zeroizing::new([0u8; CURVE25519_KEY_LEN]);
    if bytes.len() != CURVE25519_KEY_LEN {
        return Err(CryptoError::InvalidKey);
    }
    value.copy_from_slice(bytes);
    Ok(value)
}

impl Crypto {
    /// Generates an Ed25519 key pair on the card: 32 bytes from the card's random source are the seed.
    pub fn generate_ed25519(&mut self) -> Result<Ed25519KeyPair, CryptoError> {
        let mut seed = Zeroizing::new([0u8; CURVE25519_KEY_LEN]);
        self.fill_random(seed.as_mut())?;
        Ok(Ed25519KeyPair {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// The Ed25519 key pair whose seed is stored as these 32 bytes.
    pub fn ed25519_from_private(bytes: &[u8]) -> Result<Ed25519KeyPair, CryptoError> {
        let seed = private_value(bytes)?;
        Ok(Ed25519KeyPair {
            key: ed25519_dalek::SigningKey::from_bytes(&seed),
        })
    }

    /// Generates an X25519 key pair on the card: 32 bytes from the card's random source.
    pub fn generate_x25519(&mut self) -> Result<X25519KeyPair, CryptoError> {
        let mut scalar = Zeroizing::new([0u8; CURVE25519_KEY_LEN]);
        self.fill_random(scalar.as_mut())?;
        Ok(X25519KeyPair {
            secret: x25519_dalek::StaticSecret::from(*scalar),
        })
    }

    /// The X25519 key pair whose scalar is stored as these 32 bytes.
    pub fn x25519_from_private(bytes: &[u8]) -> Result<X25519KeyPair, CryptoError> {
        let scalar = private_value(bytes)?;
        Ok(X25519KeyPair {
            secret: x25519_dalek::StaticSecret::from(*scalar),
        })
    }
}

/// The DER SubjectPublicKeyInfo of an Ed25519 (`ed25519: true`) or X25519 public key (RFC 8410 §4:
/// the algorithm OID 1.3.101.112 or 1.3.101.110 with absent parameters, the raw key in the BIT STRING).
pub fn curve25519_public_key_der(public: &[u8; CURVE25519_KEY_LEN], ed25519: bool) -> Vec<u8> {
    let oid_last = if ed25519 { 0x70 } else { 0x6E };
    let mut der = vec![
        0x30, 0x2A, 0x30, 0x05, 0x06, 0x03, 0x2B, 0x65, oid_last, 0x03, 0x21, 0x00,
    ];
    der.extend_from_slice(public);
    der
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::crypto::CardRng;

    /// RFC 8032 §7.1, TEST 2: one-byte message.
    #[test]
    fn ed25519_matches_the_rfc_8032_vector() {
        let seed = hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb");
        let key = Crypto::ed25519_from_private(&seed).unwrap();
        assert_eq!(
            key.public_key().to_vec(),
            hex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
        );
        assert_eq!(
            key.sign(&[0x72]).to_vec(),
            hex(concat!(
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da",
                "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
            ))
        );
        assert_eq!(key.private_bytes().to_vec(), seed);
    }

    /// RFC 7748 §6.1: Alice and Bob agree on the same secret.
    #[test]
    fn x25519_matches_the_rfc_7748_vector_and_refuses_a_small_order_peer() {
        let alice = Crypto::x25519_from_private(&hex(
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        ))
        .unwrap();
        assert_eq!(
            alice.public_key().to_vec(),
            hex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
        );
        let bob_public = hex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
        assert_eq!(
            alice.agree(&bob_public).unwrap().expose().to_vec(),
            hex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
        );
        assert_eq!(
            alice.agree(&[0u8; 32]).err(),
            Some(CryptoError::InvalidPoint)
        );
        assert_eq!(
            alice.agree(&[9u8; 31]).err(),
            Some(CryptoError::InvalidPoint)
        );
    }

    #[test]
    fn generated_keys_come_from_the_card_stream_and_round_trip_through_storage() {
        let mut a = Crypto::new(CardRng::seeded(5, 0));
        let mut b = Crypto::new(CardRng::seeded(5, 0));
        let (ed_a, ed_b) = (a.generate_ed25519().unwrap(), b.generate_ed25519().unwrap());
        assert_eq!(ed_a.public_key(), ed_b.public_key());
        let x = a.generate_x25519().unwrap();
        assert_ne!(x.public_key(), ed_a.public_key());
        let stored = Crypto::x25519_from_private(x.private_bytes().as_ref()).unwrap();
        assert_eq!(stored.public_key(), x.public_key());
        assert_eq!(
            Crypto::ed25519_from_private(&[1; 31]).err(),
            Some(CryptoError::InvalidKey)
        );
    }

    #[test]
    fn spki_is_the_rfc_8410_encoding() {
        let der = curve25519_public_key_der(&[0xAB; 32], true);
        assert_eq!(der.len(), 44);
        assert_eq!(&der[..12], &hex("302a300506032b6570032100")[..]);
        assert_eq!(curve25519_public_key_der(&[0; 32], false)[8], 0x6E);
    }

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }
}
