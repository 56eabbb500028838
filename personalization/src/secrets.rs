//! The card's secrets: generation, the split into an envelope half and an e-mail half, and the sealing
//! of second halves at rest (AES-256-GCM under a key derived from the bureau master key).
//!
//! Why the halves are safe apart: an envelope half of an 8-digit PIN leaves 10⁴ candidates against a PIN
//! that blocks after 3 tries, and the bureau stores no PIN hash anywhere, so neither the envelope nor the
//! escrow (even decrypted) lets anyone verify a PIN offline.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// Letters and digits without look-alikes (no 0/O, 1/l/I), for access passwords.
const PASSWORD_ALPHABET: &[u8] = b"23456789abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";

#[derive(Debug, Error)]
pub enum SecretsError {
    #[error("the operating system's random source failed")]
    Random,
    #[error("PIN length {0} is outside 6..=8")]
    PinLength(usize),
    #[error("the sealed second halves of card {0} do not decrypt under this master key (wrong key or tampered registry)")]
    Unseal(String),
    #[error("sealing failed")]
    Seal,
}

/// A secret string: zeroized on drop, never printed, compared in constant time.
#[derive(Clone, Default, Zeroize, zeroize::ZeroizeOnDrop)]
pub struct SecretString(String);

impl PartialEq for SecretString {
    /// Constant time in the contents (the lengths of PINs and passwords are not secret).
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for SecretString {}

impl SecretString {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretString({} chars)", self.0.len())
    }
}

/// PIN, PUK and access password of one card.
#[derive(Debug, Clone)]
pub struct CardSecrets {
    pub pin: SecretString,
    pub puk: SecretString,
    pub password: SecretString,
}

/// The two halves of each secret.
#[derive(Debug, Clone)]
pub struct Halves {
    pub pin: (SecretString, SecretString),
    pub puk: (SecretString, SecretString),
    pub password: (SecretString, SecretString),
}

/// Random bytes drawn from the operating system a block at a time (one system call for a card's
/// secrets, not one per character), the unused rest zeroized on drop.
struct RandomBytes {
    block: Zeroizing<[u8; 64]>,
    next: usize,
}

impl RandomBytes {
    fn new() -> Self {
        Self {
            block: Zeroizing::new([0u8; 64]),
            next: 64,
        }
    }

    fn byte(&mut self) -> Result<u8, SecretsError> {
        if self.next == self.block.len() {
            getrandom::fill(self.block.as_mut()).map_err(|_| SecretsError::Random)?;
            self.next = 0;
        }
        let byte = self.block[self.next];
        self.block[self.next] = 0;
        self.next += 1;
        Ok(byte)
    }

    /// Uniform over `0..bound` (bound ≤ 256), by rejection sampling on one byte.
    fn index(&mut self, bound: usize) -> Result<usize, SecretsError> {
        let limit = 256 - 256 % bound;
        loop {
            let byte = usize::from(self.byte()?);
            if byte < limit {
                return Ok(byte % bound);
            }
        }
    }

    fn string(&mut self, len: usize, alphabet: &[u8]) -> Result<SecretString, SecretsError> {
        let mut out = String::with_capacity(len);
        for _ in 0..len {
            out.push(char::from(alphabet[self.index(alphabet.len())?]));
        }
        Ok(SecretString(out))
    }
}

impl CardSecrets {
    /// Random PIN of `pin_len` digits (6..=8), 8-digit PUK, 12-character access password.
    pub fn generate(pin_len: usize) -> Result<Self, SecretsError> {
        if !(6..=8).contains(&pin_len) {
            return Err(SecretsError::PinLength(pin_len));
        }
        let mut random = RandomBytes::new();
        Ok(Self {
            pin: random.string(pin_len, b"0123456789")?,
            puk: random.string(8, b"0123456789")?,
            password: random.string(12, PASSWORD_ALPHABET)?,
        })
    }

    /// First halves go in the envelope, second halves to the escrow (the shorter half first).
    pub fn split(&self) -> Halves {
        fn halve(s: &SecretString) -> (SecretString, SecretString) {
            let mid = s.0.len() / 2;
            (
                SecretString(s.0[..mid].to_string()),
                SecretString(s.0[mid..].to_string()),
            )
        }
        Halves {
            pin: halve(&self.pin),
            puk: halve(&self.puk),
            password: halve(&self.password),
        }
    }
}

/// The bureau master key (32 bytes): source of the escrow key and of every card's management key.
pub struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    pub fn generate() -> Result<Self, SecretsError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|_| SecretsError::Random)?;
        Ok(Self(key))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex::encode(self.0.as_ref()))
    }

    fn derive(&self, info: &[u8], out: &mut [u8]) {
        let hkdf = Hkdf::<Sha256>::new(Some(b"tessera staging bureau"), self.0.as_ref());
        // Output lengths here are ≤ 32 bytes, far below HKDF's limit.
        if hkdf.expand(info, out).is_err() {
            out.fill(0);
        }
    }

    /// The per-card PIV management key (AES-192, 24 bytes): replaces the default key on the card.
    pub fn management_key(&self, card_number: &str) -> Zeroizing<[u8; 24]> {
        let mut key = Zeroizing::new([0u8; 24]);
        let info = [b"piv-management-key:".as_slice(), card_number.as_bytes()].concat();
        self.derive(&info, key.as_mut());
        key
    }

    /// The per-card CNS personalization key (AES-128): replaces the chip's factory key.
    pub fn cns_personalization_key(&self, card_number: &str) -> Zeroizing<[u8; 16]> {
        let mut key = Zeroizing::new([0u8; 16]);
        let info = [
            b"cns-personalization-key:".as_slice(),
            card_number.as_bytes(),
        ]
        .concat();
        self.derive(&info, key.as_mut());
        key
    }

    /// What the registry keeps of a card's access password so the login lab's fallback login can
    /// check it: HMAC-SHA256 under a key derived from the master key, bound to the card number. The
    /// password itself (envelope half + e-mail half) is kept nowhere; a stolen registry without the
    /// master key cannot be searched for it.
    pub fn password_verifier(&self, card_number: &str, password: &str) -> [u8; 32] {
        use hmac::{Mac, SimpleHmac};
        let mut key = Zeroizing::new([0u8; 32]);
        self.derive(b"access-password-verifier-v1", key.as_mut());
        let mut mac = match SimpleHmac::<Sha256>::new_from_slice(key.as_ref()) {
            Ok(mac) => mac,
            // HMAC takes keys of any length; this arm is unreachable.
            Err(_) => return [0; 32],
        };
        mac.update(card_number.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// Whether `password` is the card's access password, compared in constant time.
    pub fn check_password(&self, card_number: &str, password: &str, verifier: &[u8]) -> bool {
        use subtle::ConstantTimeEq as _;
        let expected = self.password_verifier(card_number, password);
        verifier.len() == expected.len() && bool::from(expected.ct_eq(verifier))
    }

    /// The key that seals second halves at rest.
    fn escrow_key(&self) -> Zeroizing<[u8; 32]> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.derive(b"escrow-v1", key.as_mut());
        key
    }

    /// Encrypts `plain` bound to `label` (the card number): nonce ‖ ciphertext+tag.
    pub fn seal(&self, label: &str, plain: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let key = self.escrow_key();
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| SecretsError::Seal)?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|_| SecretsError::Random)?;
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| SecretsError::Seal)?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    pub fn unseal(&self, label: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let fail = || SecretsError::Unseal(label.to_string());
        if sealed.len() < 12 {
            return Err(fail());
        }
        let key = self.escrow_key();
        let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|_| fail())?;
        let (nonce, body) = sealed.split_at(12);
        let nonce: [u8; 12] = nonce.try_into().map_err(|_| fail())?;
        cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: body,
                    aad: label.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| fail())
    }
}

/// The second halves as sealed in the registry: `pin \n puk \n password`.
pub fn seal_second_halves(
    master: &MasterKey,
    card_number: &str,
    halves: &Halves,
) -> Result<Vec<u8>, SecretsError> {
    let plain = Zeroizing::new(format!(
        "{}\n{}\n{}",
        halves.pin.1.expose(),
        halves.puk.1.expose(),
        halves.password.1.expose()
    ));
    master.seal(card_number, plain.as_bytes())
}

/// `(pin, puk, password)` second halves.
pub fn unseal_second_halves(
    master: &MasterKey,
    card_number: &str,
    sealed: &[u8],
) -> Result<(SecretString, SecretString, SecretString), SecretsError> {
    let plain = master.unseal(card_number, sealed)?;
    let text = std::str::from_utf8(&plain).map_err(|_| SecretsError::Unseal(card_number.into()))?;
    let mut parts = text.split('\n').map(|p| SecretString(p.to_string()));
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(pin), Some(puk), Some(password), None) => Ok((pin, puk, password)),
        _ => Err(SecretsError::Unseal(card_number.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_have_the_right_shape_and_split_back() {
        for len in 6..=8 {
            let s = CardSecrets::generate(len).unwrap();
            assert_eq!(s.pin.expose().len(), len);
            assert!(s.pin.expose().bytes().all(|b| b.is_ascii_digit()));
            assert_eq!(s.puk.expose().len(), 8);
            assert_eq!(s.password.expose().len(), 12);
            let h = s.split();
            assert_eq!(
                format!("{}{}", h.pin.0.expose(), h.pin.1.expose()),
                s.pin.expose()
            );
            assert_eq!(
                format!("{}{}", h.puk.0.expose(), h.puk.1.expose()),
                s.puk.expose()
            );
            assert_eq!(
                format!("{}{}", h.password.0.expose(), h.password.1.expose()),
                s.password.expose()
            );
            assert!(h.pin.0.expose().len() < s.pin.expose().len());
        }
        assert!(CardSecrets::generate(5).is_err());
        assert!(CardSecrets::generate(9).is_err());
        let secrets = CardSecrets::generate(8).unwrap();
        let shown = format!("{secrets:?}");
        assert!(
            !shown.contains(secrets.pin.expose()) && !shown.contains(secrets.password.expose())
        );
    }

    #[test]
    fn sealed_halves_open_only_with_the_same_key_and_card() {
        let master = MasterKey::generate().unwrap();
        let halves = CardSecrets::generate(8).unwrap().split();
        let sealed = seal_second_halves(&master, "058047000001", &halves).unwrap();
        let (pin, puk, password) = unseal_second_halves(&master, "058047000001", &sealed).unwrap();
        assert_eq!(pin, halves.pin.1);
        assert_eq!(puk, halves.puk.1);
        assert_eq!(password, halves.password.1);
        // Bound to the card number, and to the key.
        assert!(unseal_second_halves(&master, "058047000002", &sealed).is_err());
        let other = MasterKey::generate().unwrap();
        assert!(unseal_second_halves(&other, "058047000001", &sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(unseal_second_halves(&master, "058047000001", &tampered).is_err());
        // The plaintext is not in the sealed bytes.
        assert!(!sealed
            .windows(halves.pin.1.expose().len())
            .any(|w| w == halves.pin.1.expose().as_bytes()));
    }

    #[test]
    fn management_keys_are_per_card_and_stable() {
        let master = MasterKey::from_bytes([7; 32]);
        let a = master.management_key("058047000001");
        assert_eq!(a, master.management_key("058047000001"));
        assert_ne!(a, master.management_key("058047000002"));
        assert_ne!(
            a,
            MasterKey::from_bytes([8; 32]).management_key("058047000001")
        );
    }

    #[test]
    fn password_verifiers_accept_only_the_password_of_that_card_under_that_key() {
        let master = MasterKey::from_bytes([7; 32]);
        let verifier = master.password_verifier("058047000001", "Ab3dEf7h");
        assert!(master.check_password("058047000001", "Ab3dEf7h", &verifier));
        assert!(!master.check_password("058047000001", "Ab3dEf7i", &verifier));
        assert!(!master.check_password("058047000002", "Ab3dEf7h", &verifier));
        assert!(!master.check_password("058047000001", "", &verifier));
        assert!(!master.check_password("058047000001", "Ab3dEf7h", &verifier[..31]));
        // Card number and password are kept apart: "…1" + "0pw" is not "…10" + "pw".
        assert_ne!(
            master.password_verifier("1", "0pw"),
            master.password_verifier("10", "pw")
        );
        let other = MasterKey::from_bytes([8; 32]);
        assert!(!other.check_password("058047000001", "Ab3dEf7h", &verifier));
    }
}
