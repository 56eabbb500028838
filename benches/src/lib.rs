//! Shared pieces of tessera's benchmarks: demo cards and round-trip statistics.

use std::time::Duration;

use card_os::{AppletRegistry, Card, CardConfig, Durability, Installation, Storage};

/// SELECT of the demo applet.
pub const SELECT_DEMO: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x09, 0xF0, 0x74, 0x65, 0x73, 0x73, 0x65, 0x72, 0x61, 0x01, 0x00,
];
/// READ COUNTER: a command that reads persistent state and writes nothing.
pub const READ_COUNTER: &[u8] = &[0x80, 0x12, 0x00, 0x00, 0x04];
/// INCREMENT: one persistent write, durable before the answer.
pub const INCREMENT: &[u8] = &[0x80, 0x10, 0x00, 0x00, 0x04];

/// A demo card, selected by default; in memory, or in `path` with the given durability.
pub fn demo_card(file: Option<(&std::path::Path, Durability)>) -> Card {
    let registry = AppletRegistry::new().register(demo_applet::aid(), demo_applet::factory);
    let storage = match file {
        Some((path, durability)) => Storage::File { path, durability },
        None => Storage::Memory,
    };
    let installation = Installation {
        aid: demo_applet::aid(),
        params: Vec::new(),
        default_selected: true,
    };
    match Card::create(CardConfig::default(), &registry, &[installation], storage) {
        Ok(card) => card,
        Err(error) => panic!("benchmark card: {error}"),
    }
}

/// SELECT of the PIV applet by its 5-byte prefix, as yubico-piv-tool sends it.
pub const SELECT_PIV: &[u8] = &[
    0x00, 0xA4, 0x04, 0x00, 0x05, 0xA0, 0x00, 0x00, 0x03, 0x08, 0x00,
];

/// A PIV card (in memory, or in `path`) with a fresh P-256 key in slot 9E (card authentication: no PIN
/// needed to sign), set up over APDUs by the bureau's own PIV host code. With `certificate`, the card's
/// attestation certificate for that key is written to the 9E certificate object, so PKCS#11 middleware
/// shows the key (key objects appear only next to a certificate). Returns the card and the public point.
pub fn piv_card_with_9e_key(
    file: Option<(&std::path::Path, Durability)>,
    certificate: bool,
) -> Result<(Card, Vec<u8>), String> {
    use piv_host::{GenerateOptions, ManagementKey, PivSession};
    use piv_types::{KeyAlgorithm, KeySlot};
    use std::sync::{Arc, Mutex};
    let registry = AppletRegistry::new().register(piv_applet::aid(), piv_applet::factory);
    let storage = match file {
        Some((path, durability)) => Storage::File { path, durability },
        None => Storage::Memory,
    };
    let installation = Installation {
        aid: piv_applet::aid(),
        params: piv_applet::InstallParams::default().to_bytes(),
        default_selected: true,
    };
    let card = Card::create(CardConfig::default(), &registry, &[installation], storage)
        .map_err(|e| e.to_string())?;
    let card = Arc::new(Mutex::new(card));
    let shared: card_transport::SharedCard = card.clone();
    let public = {
        let mut reader = card_transport::InProcessReader::new(shared);
        let mut piv = PivSession::open(&mut reader).map_err(|e| e.to_string())?;
        piv.authenticate(&ManagementKey::factory())
            .map_err(|e| e.to_string())?;
        let public = piv
            .generate(
                KeySlot::CardAuthentication,
                KeyAlgorithm::EccP256,
                GenerateOptions::default(),
            )
            .map_err(|e| e.to_string())?;
        if certificate {
            let der = piv
                .attest(KeySlot::CardAuthentication)
                .map_err(|e| e.to_string())?;
            piv.put_certificate(KeySlot::CardAuthentication, &der)
                .map_err(|e| e.to_string())?;
        }
        public
            .ec_point()
            .map(<[u8]>::to_vec)
            .ok_or("the card generated no EC key")?
    };
    let card = Arc::try_unwrap(card)
        .map_err(|_| "the card is still shared".to_string())?
        .into_inner()
        .map_err(|_| "the card panicked".to_string())?;
    Ok((card, public))
}

/// GENERAL AUTHENTICATE: sign a 32-byte hash with the P-256 key in 9E — the bytes the PIV client sends.
pub fn piv_sign_9e_apdu(hash: &[u8; 32]) -> Vec<u8> {
    piv_host::sign_command(
        piv_types::KeySlot::CardAuthentication,
        piv_types::KeyAlgorithm::EccP256,
        hash,
    )
    .to_bytes()
}

/// Per-operation timing figures.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub n: usize,
    pub median: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub mean: Duration,
}

impl Stats {
    pub fn from_samples(mut samples: Vec<Duration>) -> Option<Self> {
        samples.sort_unstable();
        let n = samples.len();
        if n == 0 {
            return None;
        }
        let at = |q: f64| samples[((n - 1) as f64 * q).round() as usize];
        Some(Self {
            n,
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            mean: samples.iter().sum::<Duration>() / u32::try_from(n).ok()?,
        })
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "median {:>9.1?}  p90 {:>9.1?}  p99 {:>9.1?}  (n={})",
            self.median, self.p90, self.p99, self.n
        )
    }
}
