//! Crypto services the card offers its applets: randomness (OS or seeded), SHA-256, P-256 and P-384 keys,
//! RSA keys (1024 to 4096 bits), Ed25519 and X25519 keys, and block ciphers for management keys. Applets hold keys only as bytes in their store; these services turn
//! them into operations. Sharp tools (prehash signing, raw key import) live in [`hazmat`].

use aes::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::Secret;

mod curve25519;
mod rsa_keys;
pub use curve25519::{
    curve25519_public_key_der, Ed25519KeyPair, X25519KeyPair, CURVE25519_KEY_LEN,
};
pub use rsa_keys::{rsa_public_key_der, RsaBits, RsaKeyPair, RSA_PUBLIC_EXPONENT};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum CryptoError {
    #[error("invalid key")]
    InvalidKey,
    #[error("invalid public point")]
    InvalidPoint,
    #[error("data is not a whole number of blocks")]
    BadBlockLength,
    #[error("signature failed")]
    SignatureFailed,
    #[error("the operating system's random source failed")]
    RandomSource,
}

/// Where the card's random numbers come from.
pub enum CardRng {
    /// The operating system's CSPRNG.
    Os,
    /// ChaCha20 from a seed: a deterministic card. The stream position is persisted with the card so a
    /// restarted card never replays random numbers it already gave out.
    Seeded { seed: u64, rng: Box<ChaCha20Rng> },
}

impl CardRng {
    pub fn seeded(seed: u64, word_pos: u128) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        rng.set_word_pos(word_pos);
        CardRng::Seeded {
            seed,
            rng: Box::new(rng),
        }
    }

    /// `(seed, stream position)` for a deterministic card.
    pub fn seed_state(&self) -> Option<(u64, u128)> {
        match self {
            CardRng::Os => None,
            CardRng::Seeded { seed, rng } => Some((*seed, rng.get_word_pos())),
        }
    }
}

/// The crypto services of one card.
pub struct Crypto {
    rng: CardRng,
    /// Set when randomness was drawn, so the seeded stream position is persisted before the answer.
    drew_random: bool,
}

/// The block ciphers PIV management keys use (ECB, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockCipher {
    TripleDes,
    Aes128,
    Aes192,
    Aes256,
}

impl BlockCipher {
    pub fn key_len(self) -> usize {
        match self {
            BlockCipher::TripleDes | BlockCipher::Aes192 => 24,
            BlockCipher::Aes128 => 16,
            BlockCipher::Aes256 => 32,
        }
    }

    pub fn block_len(self) -> usize {
        match self {
            BlockCipher::TripleDes => 8,
            _ => 16,
        }
    }
}

/// A key pair on a NIST curve, one type per curve (the curves' crates share no type we could be generic
/// over without a wall of trait bounds). The private scalar is zeroized on drop (the crates'
/// `SecretKey` does it).
macro_rules! ec_key_pair {
    ($name:ident, $curve:ident, $scalar_len:literal, $what:literal) => {
        #[doc = concat!("A ", $what, " key pair.")]
        pub struct $name {
            secret: $curve::SecretKey,
        }

        impl $name {
            #[doc = concat!("The private scalar, ", $scalar_len, " bytes big-endian, for storing in the applet's persistent memory.")]
            pub fn private_bytes(&self) -> Zeroizing<[u8; $scalar_len]> {
                let bytes = self.secret.to_bytes();
                let mut out = Zeroizing::new([0u8; $scalar_len]);
                out.copy_from_slice(bytes.as_slice());
                out
            }

            /// The public key as an uncompressed SEC1 point `04 ‖ X ‖ Y`.
            pub fn public_point(&self) -> Vec<u8> {
                use $curve::elliptic_curve::sec1::ToSec1Point as _;
                self.secret
                    .public_key()
                    .to_sec1_point(false)
                    .as_bytes()
                    .to_vec()
            }
        }

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "(<secret>)"))
            }
        }
    };
}

ec_key_pair!(P256KeyPair, p256, 32, "P-256");
ec_key_pair!(P384KeyPair, p384, 48, "P-384");

impl Crypto {
    pub fn new(rng: CardRng) -> Self {
        Self {
            rng,
            drew_random: false,
        }
    }

    pub fn rng_state(&self) -> Option<(u64, u128)> {
        self.rng.seed_state()
    }

    /// Whether randomness was drawn since the last call (and clears the mark).
    pub(crate) fn take_drew_random(&mut self) -> bool {
        std::mem::take(&mut self.drew_random)
    }

    /// Fills `out` with random bytes.
    pub fn fill_random(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        self.drew_random = true;
        match &mut self.rng {
            CardRng::Os => getrandom::fill(out).map_err(|_| CryptoError::RandomSource),
            CardRng::Seeded { rng, .. } => {
                rng.fill_bytes(out);
                Ok(())
            }
        }
    }

    pub fn random_vec(&mut self, len: usize) -> Result<Vec<u8>, CryptoError> {
        let mut out = vec![0u8; len];
        self.fill_random(&mut out)?;
        Ok(out)
    }

    pub fn sha256(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    /// Generates a P-256 key pair on the card.
    pub fn generate_p256(&mut self) -> Result<P256KeyPair, CryptoError> {
        loop {
            let mut candidate = Zeroizing::new([0u8; 32]);
            self.fill_random(candidate.as_mut())?;
            // Rejection sampling: retry the (astronomically rare) scalars outside 1..n.
            if let Ok(secret) = p256::SecretKey::from_slice(candidate.as_ref()) {
                return Ok(P256KeyPair { secret });
            }
        }
    }

    /// The key pair whose private scalar is stored as these 32 bytes.
    pub fn p256_from_private(bytes: &[u8]) -> Result<P256KeyPair, CryptoError> {
        let secret = p256::SecretKey::from_slice(bytes).map_err(|_| CryptoError::InvalidKey)?;
        Ok(P256KeyPair { secret })
    }

    /// ECDH: the x coordinate of `private × peer_point` (SEC1 uncompressed peer point).
    pub fn ecdh(key: &P256KeyPair, peer_point: &[u8]) -> Result<Secret, CryptoError> {
        let peer =
            p256::PublicKey::from_sec1_bytes(peer_point).map_err(|_| CryptoError::InvalidPoint)?;
        let shared = key.secret.diffie_hellman(&peer);
        Ok(Secret::new(shared.raw_secret_bytes().to_vec()))
    }

    /// Generates a P-384 key pair on the card.
    pub fn generate_p384(&mut self) -> Result<P384KeyPair, CryptoError> {
        loop {
            let mut candidate = Zeroizing::new([0u8; 48]);
            self.fill_random(candidate.as_mut())?;
            // Rejection sampling, as for P-256.
            if let Ok(secret) = p384::SecretKey::from_slice(candidate.as_ref()) {
                return Ok(P384KeyPair { secret });
            }
        }
    }

    /// The P-384 key pair whose private scalar is stored as these 48 bytes.
    pub fn p384_from_private(bytes: &[u8]) -> Result<P384KeyPair, CryptoError> {
        let secret = p384::SecretKey::from_slice(bytes).map_err(|_| CryptoError::InvalidKey)?;
        Ok(P384KeyPair { secret })
    }

    /// P-384 ECDH: the x coordinate of `private × peer_point`.
    pub fn ecdh_p384(key: &P384KeyPair, peer_point: &[u8]) -> Result<Secret, CryptoError> {
        let peer =
            p384::PublicKey::from_sec1_bytes(peer_point).map_err(|_| CryptoError::InvalidPoint)?;
        let shared = key.secret.diffie_hellman(&peer);
        Ok(Secret::new(shared.raw_secret_bytes().to_vec()))
    }

    /// ECB encryption of whole blocks.
    pub fn block_encrypt(
        cipher: BlockCipher,
        key: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        block_apply(cipher, key, data, true)
    }

    /// ECB decryption of whole blocks.
    pub fn block_decrypt(
        cipher: BlockCipher,
        key: &[u8],
        data: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        block_apply(cipher, key, data, false)
    }
}

fn block_apply(
    cipher: BlockCipher,
    key: &[u8],
    data: &[u8],
    encrypt: bool,
) -> Result<Vec<u8>, CryptoError> {
    fn run<C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit>(
        key: &[u8],
        data: &[u8],
        encrypt: bool,
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = C::new_from_slice(key).map_err(|_| CryptoError::InvalidKey)?;
        let mut out = data.to_vec();
        let block_len = std::mem::size_of::<Block<C>>();
        if data.is_empty() || !data.len().is_multiple_of(block_len) {
            return Err(CryptoError::BadBlockLength);
        }
        for chunk in out.chunks_exact_mut(block_len) {
            let mut block =
                Block::<C>::try_from(&*chunk).map_err(|_| CryptoError::BadBlockLength)?;
            if encrypt {
                cipher.encrypt_block(&mut block);
            } else {
                cipher.decrypt_block(&mut block);
            }
            chunk.copy_from_slice(block.as_slice());
        }
        Ok(out)
    }
    if key.len() != cipher.key_len() {
        return Err(CryptoError::InvalidKey);
    }
    match cipher {
        BlockCipher::TripleDes => run::<des::TdesEde3>(key, data, encrypt),
        BlockCipher::Aes128 => run::<aes::Aes128>(key, data, encrypt),
        BlockCipher::Aes192 => run::<aes::Aes192>(key, data, encrypt),
        BlockCipher::Aes256 => run::<aes::Aes256>(key, data, encrypt),
    }
}

/// Sharp tools. Prehash signing trusts the caller to have hashed the message; key import trusts the
/// caller with raw private key bytes. Use them only where a protocol demands exactly that.
pub mod hazmat {
    use zeroize::Zeroizing;

    use super::{Crypto, CryptoError, P256KeyPair, P384KeyPair, RsaKeyPair};

    /// Raw RSA: `block^d mod n` for one block of exactly the modulus length, smaller than the modulus
    /// (else [`CryptoError::BadBlockLength`]). The host did the padding (a PKCS#1 signature block) or
    /// undoes it (a decrypted block); nothing here checks it. Blinded with the card's randomness, and
    /// the result is checked to encrypt back to `block`.
    pub fn rsa_private(
        crypto: &mut Crypto,
        key: &RsaKeyPair,
        block: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        crypto.rsa_private_block(key, block)
    }

    /// ECDSA over a hash the host computed (PIV GENERAL AUTHENTICATE). Hashes shorter than 32 bytes are
    /// left-padded with zeros, which leaves their integer value — what ECDSA signs — unchanged.
    /// Returns the DER `ECDSA-Sig-Value`. Nonces are deterministic (RFC 6979).
    pub fn sign_prehash(key: &P256KeyPair, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if hash.is_empty() || hash.len() > 32 {
            return Err(CryptoError::SignatureFailed);
        }
        let mut padded = [0u8; 32];
        padded[32 - hash.len()..].copy_from_slice(hash);
        // Straight from the scalar: building an `ecdsa::SigningKey` would first derive the public key,
        // a scalar multiplication that nearly doubles the cost of every signature.
        let scalar = key.secret.to_nonzero_scalar();
        let (signature, _) = ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, sha2::Sha256>(
            &scalar,
            &padded,
            &[],
        );
        Ok(signature.to_der().as_bytes().to_vec())
    }

    /// [`sign_prehash`] on P-384: hashes of up to 48 bytes (SHA-384), RFC 6979 nonces with SHA-384.
    pub fn sign_prehash_p384(key: &P384KeyPair, hash: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if hash.is_empty() || hash.len() > 48 {
            return Err(CryptoError::SignatureFailed);
        }
        let mut padded = [0u8; 48];
        padded[48 - hash.len()..].copy_from_slice(hash);
        let scalar = key.secret.to_nonzero_scalar();
        let (signature, _) = ecdsa::hazmat::sign_prehashed_rfc6979::<p384::NistP384, sha2::Sha384>(
            &scalar,
            &padded,
            &[],
        );
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::signature::hazmat::PrehashVerifier;

    #[test]
    fn seeded_rng_is_deterministic_and_resumable() {
        let mut a = Crypto::new(CardRng::seeded(7, 0));
        let first = a.random_vec(16).unwrap();
        let (seed, pos) = a.rng_state().unwrap();
        let second = a.random_vec(16).unwrap();
        let mut b = Crypto::new(CardRng::seeded(seed, pos));
        assert_eq!(b.random_vec(16).unwrap(), second);
        assert_ne!(first, second);
        assert!(a.take_drew_random());
        assert!(!a.take_drew_random());
    }

    #[test]
    fn p256_sign_verifies_and_ecdh_agrees() {
        let mut crypto = Crypto::new(CardRng::seeded(1, 0));
        let key = crypto.generate_p256().unwrap();
        let point = key.public_point();
        assert_eq!((point.len(), point[0]), (65, 0x04));
        let hash = Crypto::sha256(b"hello");
        let der = hazmat::sign_prehash(&key, &hash).unwrap();
        let verifying = p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let signature = p256::ecdsa::DerSignature::from_bytes(&der).unwrap();
        verifying.verify_prehash(&hash, &signature).unwrap();
        // Byte-identical to the ecdsa crate's own RFC 6979 signer (which derives the public key first).
        use p256::ecdsa::signature::hazmat::PrehashSigner;
        let reference: p256::ecdsa::DerSignature =
            p256::ecdsa::SigningKey::from_slice(key.private_bytes().as_ref())
                .unwrap()
                .sign_prehash(&hash)
                .unwrap();
        assert_eq!(der, reference.as_bytes());
        // A short hash signs as its zero-padded value.
        let short = hazmat::sign_prehash(&key, &hash[..20]).unwrap();
        let mut padded = [0u8; 32];
        padded[12..].copy_from_slice(&hash[..20]);
        let short = p256::ecdsa::DerSignature::from_bytes(&short).unwrap();
        verifying.verify_prehash(&padded, &short).unwrap();
        assert!(hazmat::sign_prehash(&key, &[0u8; 33]).is_err());

        let other = crypto.generate_p256().unwrap();
        let ab = Crypto::ecdh(&key, &other.public_point()).unwrap();
        let ba = Crypto::ecdh(&other, &point).unwrap();
        assert_eq!(ab, ba);
        assert_eq!(
            Crypto::ecdh(&key, &[4u8; 65]).unwrap_err(),
            CryptoError::InvalidPoint
        );
        let restored = Crypto::p256_from_private(key.private_bytes().as_ref()).unwrap();
        assert_eq!(restored.public_point(), point);
    }

    #[test]
    fn p384_sign_verifies_matches_the_reference_signer_and_ecdh_agrees() {
        use p384::ecdsa::signature::hazmat::{PrehashSigner, PrehashVerifier as _};
        let mut crypto = Crypto::new(CardRng::seeded(2, 0));
        let key = crypto.generate_p384().unwrap();
        let point = key.public_point();
        assert_eq!((point.len(), point[0]), (97, 0x04));
        let hash: [u8; 48] = sha2::Sha384::digest(b"hello").into();
        let der = hazmat::sign_prehash_p384(&key, &hash).unwrap();
        let verifying = p384::ecdsa::VerifyingKey::from_sec1_bytes(&point).unwrap();
        let signature = p384::ecdsa::DerSignature::from_bytes(&der).unwrap();
        verifying.verify_prehash(&hash, &signature).unwrap();
        let reference: p384::ecdsa::DerSignature =
            p384::ecdsa::SigningKey::from_slice(key.private_bytes().as_ref())
                .unwrap()
                .sign_prehash(&hash)
                .unwrap();
        assert_eq!(der, reference.as_bytes());
        // A SHA-256 hash signs as its zero-padded value, as on P-256.
        let short = hazmat::sign_prehash_p384(&key, &hash[..32]).unwrap();
        let mut padded = [0u8; 48];
        padded[16..].copy_from_slice(&hash[..32]);
        let signature = p384::ecdsa::DerSignature::from_bytes(&short).unwrap();
        verifying.verify_prehash(&padded, &signature).unwrap();
        assert!(hazmat::sign_prehash_p384(&key, &[0; 49]).is_err());
        assert!(hazmat::sign_prehash_p384(&key, &[]).is_err());

        let again = Crypto::p384_from_private(key.private_bytes().as_ref()).unwrap();
        assert_eq!(again.public_point(), point);
        let other = crypto.generate_p384().unwrap();
        let ab = Crypto::ecdh_p384(&key, &other.public_point()).unwrap();
        let ba = Crypto::ecdh_p384(&other, &point).unwrap();
        assert_eq!(ab.expose(), ba.expose());
        assert_eq!(ab.expose().len(), 48);
        assert!(Crypto::ecdh_p384(&key, &[0x04; 97]).is_err());
        assert!(Crypto::p384_from_private(&[0; 48]).is_err());
    }

    #[test]
    fn block_ciphers_round_trip_with_known_answers() {
        // FIPS-197 appendix C.1.
        let key = hex::decode("000102030405060708090a0b0c0d0e0f").unwrap();
        let plain = hex::decode("00112233445566778899aabbccddeeff").unwrap();
        let cipher = Crypto::block_encrypt(BlockCipher::Aes128, &key, &plain).unwrap();
        assert_eq!(hex::encode(&cipher), "69c4e0d86a7b0430d8cdb78070b4c55a");
        assert_eq!(
            Crypto::block_decrypt(BlockCipher::Aes128, &key, &cipher).unwrap(),
            plain
        );
        for kind in [
            BlockCipher::TripleDes,
            BlockCipher::Aes192,
            BlockCipher::Aes256,
        ] {
            let key: Vec<u8> = (1..=kind.key_len() as u8).collect();
            let data = vec![0x42; kind.block_len() * 2];
            let enc = Crypto::block_encrypt(kind, &key, &data).unwrap();
            assert_ne!(enc, data);
            assert_eq!(Crypto::block_decrypt(kind, &key, &enc).unwrap(), data);
        }
        assert_eq!(
            Crypto::block_encrypt(BlockCipher::Aes128, &key, &[0; 15]),
            Err(CryptoError::BadBlockLength)
        );
        assert_eq!(
            Crypto::block_encrypt(BlockCipher::Aes128, &[0; 8], &[0; 16]),
            Err(CryptoError::InvalidKey)
        );
    }
}
