//! RSA on the card: key generation from the card's random source and the raw private operation.
//!
//! Cards of this kind (CNS, PIV) do RSA "raw": the host builds the PKCS#1 block (signature padding,
//! or it strips the encryption padding after decryption), the card applies its private exponent to
//! exactly one modulus-sized block. So the card offers only that operation, in [`super::hazmat`],
//! with blinding (the card's random source) and a check that the result encrypts back to the input,
//! which stops a faulty CRT computation from leaking a prime.

use rsa::traits::{PrivateKeyParts, PublicKeyParts};
use rsa::{BoxedUint, PrivateKey};
use zeroize::Zeroizing;

use super::{Crypto, CryptoError};

/// The public exponent of every key the card generates (F4, what every card and tool expects).
pub const RSA_PUBLIC_EXPONENT: u32 = 65_537;

/// The modulus sizes the card generates and imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RsaBits {
    Rsa1024,
    Rsa2048,
    Rsa3072,
    Rsa4096,
}

impl RsaBits {
    pub fn bits(self) -> usize {
        match self {
            RsaBits::Rsa1024 => 1024,
            RsaBits::Rsa2048 => 2048,
            RsaBits::Rsa3072 => 3072,
            RsaBits::Rsa4096 => 4096,
        }
    }

    /// The modulus length in bytes: the length of every block the key takes and gives.
    pub fn modulus_len(self) -> usize {
        self.bits() / 8
    }

    pub fn from_bits(bits: usize) -> Option<Self> {
        [
            RsaBits::Rsa1024,
            RsaBits::Rsa2048,
            RsaBits::Rsa3072,
            RsaBits::Rsa4096,
        ]
        .into_iter()
        .find(|size| size.bits() == bits)
    }
}

/// An RSA key pair with two balanced primes. The big numbers are zeroized on drop (the `rsa` crate
/// does it for its private key).
pub struct RsaKeyPair {
    key: PrivateKey,
    size: RsaBits,
}

impl RsaKeyPair {
    pub fn size(&self) -> RsaBits {
        self.size
    }

    /// The modulus, big-endian, exactly [`RsaBits::modulus_len`] bytes.
    pub fn modulus(&self) -> Vec<u8> {
        fixed_width(
            &self.key.n().as_ref().to_be_bytes(),
            self.size.modulus_len(),
        )
    }

    /// The public exponent, big-endian without leading zeros (`01 00 01`).
    pub fn public_exponent(&self) -> Vec<u8> {
        self.key.e().to_be_bytes_trimmed_vartime().to_vec()
    }

    /// The public key as a DER `SubjectPublicKeyInfo` (rsaEncryption), for certificates.
    pub fn public_key_der(&self) -> Result<Vec<u8>, CryptoError> {
        use rsa::pkcs8::EncodePublicKey as _;
        self.key
            .to_public_key()
            .to_public_key_der()
            .map(|doc| doc.as_bytes().to_vec())
            .map_err(|_| CryptoError::InvalidKey)
    }

    /// The private key for the applet's persistent memory: `e` (4 bytes) ‖ `p` ‖ `q` (each half the
    /// modulus length) ‖ `d` (the modulus length). The modulus is rebuilt from the primes; `d` is
    /// stored because deriving it again (a modular inverse) would double the cost of a signature.
    pub fn private_bytes(&self) -> Zeroizing<Vec<u8>> {
        let k = self.size.modulus_len();
        let mut out = Zeroizing::new(Vec::with_capacity(4 + 2 * k));
        let e = self.public_exponent();
        out.extend_from_slice(&fixed_width(&e, 4));
        for prime in self.key.primes() {
            let bytes = Zeroizing::new(prime.as_ref().to_be_bytes());
            out.extend_from_slice(&fixed_width(&bytes, k / 2));
        }
        let d = Zeroizing::new(self.key.d().to_be_bytes());
        out.extend_from_slice(&fixed_width(&d, k));
        out
    }
}

impl std::fmt::Debug for RsaKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RsaKeyPair({} bits, <secret>)", self.size.bits())
    }
}

/// An RSA public key (modulus and exponent, big-endian) as a DER `SubjectPublicKeyInfo`
/// (rsaEncryption): what a certificate for a stored key needs without rebuilding the private key.
pub fn rsa_public_key_der(modulus: &[u8], exponent: &[u8]) -> Result<Vec<u8>, CryptoError> {
    use rsa::pkcs8::EncodePublicKey as _;
    let key = rsa::PublicKey::new(
        BoxedUint::from_be_slice_vartime(modulus),
        BoxedUint::from_be_slice_vartime(exponent),
    )
    .map_err(|_| CryptoError::InvalidKey)?;
    key.to_public_key_der()
        .map(|doc| doc.as_bytes().to_vec())
        .map_err(|_| CryptoError::InvalidKey)
}

/// `bytes` (big-endian) as exactly `width` bytes: leading zeros added or dropped.
fn fixed_width(bytes: &[u8], width: usize) -> Vec<u8> {
    let significant = &bytes[bytes.iter().take_while(|&&b| b == 0).count()..];
    let mut out = vec![0u8; width.saturating_sub(significant.len())];
    out.extend_from_slice(&significant[significant.len().saturating_sub(width)..]);
    out
}

/// The card's random source as the `rand_core` generator the `rsa` crate draws from.
struct CardRandom<'a>(&'a mut Crypto);

impl rand_core::TryRng for CardRandom<'_> {
    type Error = CryptoError;

    fn try_next_u32(&mut self) -> Result<u32, CryptoError> {
        let mut bytes = [0u8; 4];
        self.0.fill_random(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, CryptoError> {
        let mut bytes = [0u8; 8];
        self.0.fill_random(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), CryptoError> {
        self.0.fill_random(dst)
    }
}

// The card's source is the OS CSPRNG or ChaCha20: fit for key generation.
impl rand_core::TryCryptoRng for CardRandom<'_> {}

impl Crypto {
    /// Generates an RSA key pair on the card (public exponent 65 537). Seeded cards generate the
    /// same key from the same stream position.
    pub fn generate_rsa(&mut self, size: RsaBits) -> Result<RsaKeyPair, CryptoError> {
        let key = PrivateKey::new(&mut CardRandom(self), size.bits())
            .map_err(|_| CryptoError::RandomSource)?;
        Ok(RsaKeyPair { key, size })
    }

    /// The key pair stored as [`RsaKeyPair::private_bytes`].
    pub fn rsa_from_private(bytes: &[u8]) -> Result<RsaKeyPair, CryptoError> {
        let (e, rest) = bytes.split_at_checked(4).ok_or(CryptoError::InvalidKey)?;
        // p ‖ q ‖ d: k/2 + k/2 + k bytes.
        let size = RsaBits::from_bits(rest.len() * 4).ok_or(CryptoError::InvalidKey)?;
        let k = size.modulus_len();
        if rest.len() != 2 * k {
            return Err(CryptoError::InvalidKey);
        }
        let (p, rest) = rest.split_at(k / 2);
        let (q, d) = rest.split_at(k / 2);
        let half = u32::try_from(k * 4).map_err(|_| CryptoError::InvalidKey)?;
        let number = |bytes: &[u8], bits: u32| {
            BoxedUint::from_be_slice(bytes, bits).map_err(|_| CryptoError::InvalidKey)
        };
        let (p, q) = (number(p, half)?, number(q, half)?);
        let n = crypto_bigint::ConcatenatingMul::concatenating_mul(&p, &q);
        let key = PrivateKey::from_components(n, number(e, 64)?, number(d, 2 * half)?, vec![p, q])
            .map_err(|_| CryptoError::InvalidKey)?;
        if key.n().as_ref().bit_width() as usize != size.bits() {
            return Err(CryptoError::InvalidKey);
        }
        Ok(RsaKeyPair { key, size })
    }

    /// The key pair of two primes and a public exponent (big-endian), as a key import gives them.
    /// Refused unless `p · q` has exactly the size's bits.
    pub fn rsa_from_primes(
        size: RsaBits,
        e: &[u8],
        p: &[u8],
        q: &[u8],
    ) -> Result<RsaKeyPair, CryptoError> {
        let precision = u32::try_from(size.bits() / 2).map_err(|_| CryptoError::InvalidKey)?;
        let number = |bytes: &[u8], bits: u32| {
            BoxedUint::from_be_slice(bytes, bits).map_err(|_| CryptoError::InvalidKey)
        };
        let key =
            PrivateKey::from_p_q(number(p, precision)?, number(q, precision)?, number(e, 64)?)
                .map_err(|_| CryptoError::InvalidKey)?;
        if key.n().as_ref().bit_width() as usize != size.bits() {
            return Err(CryptoError::InvalidKey);
        }
        Ok(RsaKeyPair { key, size })
    }

    /// The key pair of a key import in CRT form, as YubiKey's IMPORT KEY sends it: the primes, then
    /// `dP = d mod (p-1)`, `dQ = d mod (q-1)` and `qInv = q⁻¹ mod p`, each at most half the modulus
    /// length, big-endian; the public exponent is 65 537. Refused unless `p · q` has exactly the
    /// size's bits and the three CRT values are those of `p` and `q`: a card that stored a
    /// mismatched set would sign wrongly ever after.
    pub fn rsa_from_crt(
        size: RsaBits,
        p: &[u8],
        q: &[u8],
        dp: &[u8],
        dq: &[u8],
        qinv: &[u8],
    ) -> Result<RsaKeyPair, CryptoError> {
        use subtle::ConstantTimeEq as _;
        let half = size.modulus_len() / 2;
        if [p, q, dp, dq, qinv].iter().any(|value| value.len() > half) {
            return Err(CryptoError::InvalidKey);
        }
        let pair = Self::rsa_from_primes(size, &RSA_PUBLIC_EXPONENT.to_be_bytes(), p, q)?;
        let computed = [
            pair.key.dp().map(|v| v.to_be_bytes()),
            pair.key.dq().map(|v| v.to_be_bytes()),
            pair.key.crt_coefficient().map(|v| v.to_be_bytes()),
        ];
        let mut matches = subtle::Choice::from(1);
        for (given, computed) in [dp, dq, qinv].into_iter().zip(computed) {
            let computed = Zeroizing::new(computed.ok_or(CryptoError::InvalidKey)?);
            let computed = Zeroizing::new(fixed_width(&computed, half));
            let given = Zeroizing::new(fixed_width(given, half));
            matches &= given.ct_eq(&computed);
        }
        if bool::from(matches) {
            Ok(pair)
        } else {
            Err(CryptoError::InvalidKey)
        }
    }

    /// The raw private operation `input^d mod n` on one modulus-sized block (see
    /// [`super::hazmat::rsa_private`]).
    pub(super) fn rsa_private_block(
        &mut self,
        key: &RsaKeyPair,
        input: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let k = key.size.modulus_len();
        if input.len() != k {
            return Err(CryptoError::BadBlockLength);
        }
        let precision = key.key.n_bits_precision();
        let c = BoxedUint::from_be_slice(input, precision).map_err(|_| CryptoError::InvalidKey)?;
        if c >= *key.key.n().as_ref() {
            return Err(CryptoError::BadBlockLength);
        }
        let m = rsa::hazmat::rsa_decrypt_and_check(&key.key, Some(&mut CardRandom(self)), &c)
            .map_err(|_| CryptoError::SignatureFailed)?;
        let bytes = Zeroizing::new(m.to_be_bytes());
        Ok(Zeroizing::new(fixed_width(&bytes, k)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{hazmat, CardRng};

    /// The PKCS#1 v1.5 signature block of a SHA-256 hash, as a host builds it before sending it.
    fn pkcs1_sha256_block(hash: &[u8; 32], k: usize) -> Vec<u8> {
        let digest_info_prefix = [
            0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
            0x01, 0x05, 0x00, 0x04, 0x20,
        ];
        let t_len = digest_info_prefix.len() + hash.len();
        let mut block = vec![0x00, 0x01];
        block.resize(k - t_len - 1, 0xFF);
        block.push(0x00);
        block.extend_from_slice(&digest_info_prefix);
        block.extend_from_slice(hash);
        block
    }

    #[test]
    fn a_generated_key_signs_what_the_rsa_crate_verifies_and_survives_storage() {
        let mut crypto = Crypto::new(CardRng::seeded(11, 0));
        let key = crypto.generate_rsa(RsaBits::Rsa1024).unwrap();
        assert_eq!(key.modulus().len(), 128);
        assert_eq!(key.modulus()[0] & 0x80, 0x80, "a full 1024-bit modulus");
        assert_eq!(key.public_exponent(), [0x01, 0x00, 0x01]);

        let hash = Crypto::sha256(b"tessera");
        let signature =
            hazmat::rsa_private(&mut crypto, &key, &pkcs1_sha256_block(&hash, 128)).unwrap();
        let public = rsa::PublicKey::new(
            BoxedUint::from_be_slice_vartime(&key.modulus()),
            BoxedUint::from(65_537u32),
        )
        .unwrap();
        public
            .verify(rsa::Pkcs1v15Sign::new::<sha2::Sha256>(), &hash, &signature)
            .unwrap();

        let stored = key.private_bytes();
        assert_eq!(stored.len(), 4 + 2 * 128);
        let again = Crypto::rsa_from_private(&stored).unwrap();
        assert_eq!(again.modulus(), key.modulus());
        let twice =
            hazmat::rsa_private(&mut crypto, &again, &pkcs1_sha256_block(&hash, 128)).unwrap();
        assert_eq!(*twice, *signature, "RSA PKCS#1 v1.5 is deterministic");

        // The SPKI carries the same modulus.
        use rsa::pkcs8::DecodePublicKey as _;
        let spki = rsa::PublicKey::from_public_key_der(&key.public_key_der().unwrap()).unwrap();
        assert_eq!(spki.n().as_ref(), public.n().as_ref());
    }

    #[test]
    fn the_same_seed_makes_the_same_key() {
        let a = Crypto::new(CardRng::seeded(5, 0))
            .generate_rsa(RsaBits::Rsa1024)
            .unwrap();
        let b = Crypto::new(CardRng::seeded(5, 0))
            .generate_rsa(RsaBits::Rsa1024)
            .unwrap();
        let c = Crypto::new(CardRng::seeded(6, 0))
            .generate_rsa(RsaBits::Rsa1024)
            .unwrap();
        assert_eq!(a.modulus(), b.modulus());
        assert_ne!(a.modulus(), c.modulus());
    }

    #[test]
    fn blocks_of_the_wrong_size_or_not_below_the_modulus_are_refused() {
        let mut crypto = Crypto::new(CardRng::seeded(12, 0));
        let key = crypto.generate_rsa(RsaBits::Rsa1024).unwrap();
        for block in [
            vec![0u8; 127],
            vec![0u8; 129],
            vec![0xFF; 128],
            key.modulus(),
        ] {
            assert_eq!(
                hazmat::rsa_private(&mut crypto, &key, &block).unwrap_err(),
                CryptoError::BadBlockLength,
                "{} bytes",
                block.len()
            );
        }
        // Decryption of a raw encryption gives the block back.
        let mut message = vec![0u8; 128];
        message[1..].copy_from_slice(&[0x42; 127]);
        let public = rsa::PublicKey::new(
            BoxedUint::from_be_slice_vartime(&key.modulus()),
            BoxedUint::from(65_537u32),
        )
        .unwrap();
        let m = BoxedUint::from_be_slice(&message, 1024).unwrap();
        let c = rsa::hazmat::rsa_encrypt(&public, &m).unwrap();
        let plain = hazmat::rsa_private(&mut crypto, &key, &c.to_be_bytes()).unwrap();
        assert_eq!(*plain, message);
    }

    #[test]
    fn stored_keys_that_are_not_keys_are_refused() {
        for bytes in [
            &[][..],
            &[0, 1, 0, 1][..],
            &[0u8; 4 + 128][..],
            &[0u8; 4 + 100][..],
        ] {
            assert_eq!(
                Crypto::rsa_from_private(bytes).unwrap_err(),
                CryptoError::InvalidKey
            );
        }
        assert_eq!(RsaBits::from_bits(2048), Some(RsaBits::Rsa2048));
        assert_eq!(RsaBits::from_bits(2047), None);
    }

    #[test]
    fn a_crt_import_is_the_same_key_and_a_wrong_crt_value_is_refused() {
        let mut crypto = Crypto::new(CardRng::seeded(13, 0));
        let key = crypto.generate_rsa(RsaBits::Rsa1024).unwrap();
        let bytes = |v: &BoxedUint| fixed_width(&v.to_be_bytes(), 64);
        let p = bytes(key.key.primes()[0].as_ref());
        let q = bytes(key.key.primes()[1].as_ref());
        let dp = bytes(key.key.dp().unwrap());
        let dq = bytes(key.key.dq().unwrap());
        let qinv = bytes(&key.key.crt_coefficient().unwrap());

        let imported = Crypto::rsa_from_crt(RsaBits::Rsa1024, &p, &q, &dp, &dq, &qinv).unwrap();
        assert_eq!(imported.modulus(), key.modulus());
        assert_eq!(
            rsa_public_key_der(&key.modulus(), &key.public_exponent()).unwrap(),
            key.public_key_der().unwrap()
        );
        // Leading zeros may be left out, as for any big-endian integer.
        let short_qinv = &qinv[qinv.iter().take_while(|&&b| b == 0).count()..];
        assert!(Crypto::rsa_from_crt(RsaBits::Rsa1024, &p, &q, &dp, &dq, short_qinv).is_ok());

        let mut wrong = dq.clone();
        wrong[63] ^= 1;
        for (dp, dq, qinv) in [
            (&dp, &wrong, &qinv),
            (&wrong, &dq, &qinv),
            (&dp, &dq, &wrong),
        ] {
            assert_eq!(
                Crypto::rsa_from_crt(RsaBits::Rsa1024, &p, &q, dp, dq, qinv).unwrap_err(),
                CryptoError::InvalidKey
            );
        }
        // The wrong size, and a value longer than half the modulus.
        assert!(Crypto::rsa_from_crt(RsaBits::Rsa2048, &p, &q, &dp, &dq, &qinv).is_err());
        let mut long = vec![0u8];
        long.extend_from_slice(&dp);
        assert!(Crypto::rsa_from_crt(RsaBits::Rsa1024, &p, &q, &long, &dq, &qinv).is_err());
    }

    #[test]
    fn fixed_width_pads_and_trims_leading_zeros() {
        assert_eq!(fixed_width(&[1, 2], 4), [0, 0, 1, 2]);
        assert_eq!(fixed_width(&[0, 0, 0, 1, 2], 3), [0, 1, 2]);
        assert_eq!(fixed_width(&[], 2), [0, 0]);
    }
}
