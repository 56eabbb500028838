//! Installation passwords for PKCS#12 bundles.

use std::fmt;

use zeroize::Zeroize;

use super::CaError;

/// Letters and digits that cannot be confused when read aloud or copied from paper
/// (no `0 O o 1 l I i`), nothing a shell or a dialog box treats specially.
pub const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";

/// Number of characters in a bundle password (about 92 bits).
pub const PASSWORD_LENGTH: usize = 16;

/// A secret string: wiped from memory on drop, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct BundlePassword(String);

impl BundlePassword {
    /// A fresh random password from the operating system's generator.
    pub fn generate() -> Result<Self, CaError> {
        let mut out = String::with_capacity(PASSWORD_LENGTH);
        // Rejection sampling keeps the characters uniform: 256 - 256 % 55 = 220.
        let limit = 256 - 256 % ALPHABET.len();
        let mut pool = [0u8; 64];
        while out.len() < PASSWORD_LENGTH {
            getrandom::fill(&mut pool).map_err(|_| CaError::Random)?;
            for &byte in &pool {
                if usize::from(byte) < limit && out.len() < PASSWORD_LENGTH {
                    out.push(char::from(ALPHABET[usize::from(byte) % ALPHABET.len()]));
                }
            }
        }
        pool.zeroize();
        Ok(Self(out))
    }

    /// The password text, to hand to the operator or to write into the passwords file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Reads like the `String` it wraps (`as_str`, `as_bytes`, `len`, ...), but `Debug` stays redacted
/// and the text is wiped on drop.
impl std::ops::Deref for BundlePassword {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl From<String> for BundlePassword {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl Drop for BundlePassword {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl fmt::Debug for BundlePassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BundlePassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_long_unambiguous_and_fresh() {
        let a = BundlePassword::generate().unwrap();
        let b = BundlePassword::generate().unwrap();
        assert_eq!(a.expose().len(), PASSWORD_LENGTH);
        assert!(a.expose().bytes().all(|c| ALPHABET.contains(&c)));
        assert_ne!(a, b);
        for c in "0Oo1lIi".bytes() {
            assert!(!ALPHABET.contains(&c));
        }
        assert_eq!(format!("{a:?}"), "BundlePassword(<redacted>)");
    }
}
