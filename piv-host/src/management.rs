//! The 9B management key on the host side, and the block cipher its challenges use (ECB, no padding).

use aes::cipher::{Block, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use piv_types::{ManagementAlgorithm, DEFAULT_MANAGEMENT_KEY};
use zeroize::Zeroizing;

use crate::PivError;

/// A PIV management key: its algorithm and key bytes (zeroized on drop, never printed).
#[derive(Clone)]
pub struct ManagementKey {
    algorithm: ManagementAlgorithm,
    key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for ManagementKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ManagementKey({:?}, redacted)", self.algorithm)
    }
}

impl ManagementKey {
    /// A key of `algorithm`; its length must be the algorithm's.
    pub fn new(algorithm: ManagementAlgorithm, key: &[u8]) -> Result<Self, PivError> {
        if key.len() != algorithm.key_len() {
            return Err(PivError::BadLength {
                what: "a management key",
                expected: format!("{} bytes for {algorithm:?}", algorithm.key_len()),
                got: key.len(),
            });
        }
        Ok(Self {
            algorithm,
            key: Zeroizing::new(key.to_vec()),
        })
    }

    /// The factory key every new PIV card (and YubiKey) starts with: 3DES `01 02 … 08` ×3.
    pub fn factory() -> Self {
        Self {
            algorithm: ManagementAlgorithm::TripleDes,
            key: Zeroizing::new(DEFAULT_MANAGEMENT_KEY.to_vec()),
        }
    }

    pub fn algorithm(&self) -> ManagementAlgorithm {
        self.algorithm
    }

    /// The key bytes, for sending them to the card in SET MANAGEMENT KEY.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.key
    }

    pub(crate) fn encrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, PivError> {
        self.apply(data, true)
    }

    pub(crate) fn decrypt(&self, data: &[u8]) -> Result<Zeroizing<Vec<u8>>, PivError> {
        self.apply(data, false)
    }

    fn apply(&self, data: &[u8], encrypt: bool) -> Result<Zeroizing<Vec<u8>>, PivError> {
        let block = self.algorithm.block_len();
        if data.is_empty() || !data.len().is_multiple_of(block) {
            return Err(PivError::BadLength {
                what: "a management-key challenge",
                expected: format!("a multiple of {block} bytes"),
                got: data.len(),
            });
        }
        match self.algorithm {
            ManagementAlgorithm::TripleDes => ecb::<des::TdesEde3>(&self.key, data, encrypt),
            ManagementAlgorithm::Aes128 => ecb::<aes::Aes128>(&self.key, data, encrypt),
            ManagementAlgorithm::Aes192 => ecb::<aes::Aes192>(&self.key, data, encrypt),
            ManagementAlgorithm::Aes256 => ecb::<aes::Aes256>(&self.key, data, encrypt),
        }
    }
}

fn ecb<C: BlockCipherEncrypt + BlockCipherDecrypt + KeyInit>(
    key: &[u8],
    data: &[u8],
    encrypt: bool,
) -> Result<Zeroizing<Vec<u8>>, PivError> {
    let cipher = C::new_from_slice(key).map_err(|_| PivError::BadLength {
        what: "a management key",
        expected: "the algorithm's key length".to_owned(),
        got: key.len(),
    })?;
    let mut out = Zeroizing::new(data.to_vec());
    let block_len = std::mem::size_of::<Block<C>>();
    for chunk in out.chunks_exact_mut(block_len) {
        let mut block = Block::<C>::try_from(&*chunk).map_err(|_| PivError::BadLength {
            what: "a cipher block",
            expected: format!("{block_len} bytes"),
            got: chunk.len(),
        })?;
        if encrypt {
            cipher.encrypt_block(&mut block);
        } else {
            cipher.decrypt_block(&mut block);
        }
        chunk.copy_from_slice(block.as_slice());
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_their_algorithms_length_and_round_trip() {
        assert!(ManagementKey::new(ManagementAlgorithm::Aes128, &[0; 24]).is_err());
        for algorithm in [
            ManagementAlgorithm::TripleDes,
            ManagementAlgorithm::Aes128,
            ManagementAlgorithm::Aes192,
            ManagementAlgorithm::Aes256,
        ] {
            let key = ManagementKey::new(algorithm, &vec![7; algorithm.key_len()]).unwrap();
            let plain = vec![0x42; algorithm.block_len() * 2];
            let sealed = key.encrypt(&plain).unwrap();
            assert_ne!(&sealed[..], &plain[..]);
            assert_eq!(&key.decrypt(&sealed).unwrap()[..], &plain[..]);
            assert!(key.encrypt(&plain[1..]).is_err());
            assert!(!format!("{key:?}").contains('7'));
        }
    }

    #[test]
    fn aes128_matches_fips197() {
        // FIPS-197 appendix C.1.
        let key =
            ManagementKey::new(ManagementAlgorithm::Aes128, &(0..16).collect::<Vec<u8>>()).unwrap();
        let plain: Vec<u8> = (0..16).map(|i| i * 0x11).collect();
        assert_eq!(
            hex(&key.encrypt(&plain).unwrap()),
            "69c4e0d86a7b0430d8cdb78070b4c55a"
        );
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}
