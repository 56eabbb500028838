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

/// Sends an APDU and follows `61 xx` with GET RESPONSE; returns all data and the final status word.
pub fn transmit_all(card: &mut Card, apdu: &[u8]) -> Result<(Vec<u8>, u16), String> {
    let mut response = card.transmit(apdu).map_err(|e| e.to_string())?;
    let mut data = Vec::new();
    loop {
        let n = response.len();
        if n < 2 {
            return Err("response without a status word".into());
        }
        data.extend_from_slice(&response[..n - 2]);
        let (sw1, sw2) = (response[n - 2], response[n - 1]);
        if sw1 != 0x61 {
            return Ok((data, u16::from_be_bytes([sw1, sw2])));
        }
        response = card
            .transmit(&[0x00, 0xC0, 0x00, 0x00, sw2])
            .map_err(|e| e.to_string())?;
    }
}

/// A PIV card (in memory, or in `path`) with the default management key, authenticated, and a fresh
/// P-256 key in slot 9E (card authentication: no PIN needed to sign). Returns the card and the key's
/// uncompressed public point.
pub fn piv_card_with_9e_key(
    file: Option<(&std::path::Path, Durability)>,
) -> Result<(Card, Vec<u8>), String> {
    use card_os::crypto::{BlockCipher, Crypto};
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
    let mut card = Card::create(CardConfig::default(), &registry, &[installation], storage)
        .map_err(|e| e.to_string())?;
    transmit_all(&mut card, SELECT_PIV)?;
    // Mutual authentication with the default 3DES management key.
    let key = piv_applet::DEFAULT_MANAGEMENT_KEY;
    let (witness, _) = transmit_all(
        &mut card,
        &[0x00, 0x87, 0x03, 0x9B, 0x04, 0x7C, 0x02, 0x80, 0x00, 0x00],
    )?;
    let plain = Crypto::block_decrypt(
        BlockCipher::TripleDes,
        &key,
        witness.get(4..12).ok_or("short witness")?,
    )
    .map_err(|e| e.to_string())?;
    let mut apdu = vec![0x00, 0x87, 0x03, 0x9B, 0x16, 0x7C, 0x14, 0x80, 0x08];
    apdu.extend_from_slice(&plain);
    apdu.extend_from_slice(&[0x81, 0x08, 1, 2, 3, 4, 5, 6, 7, 8, 0x00]);
    let (_, sw) = transmit_all(&mut card, &apdu)?;
    if sw != 0x9000 {
        return Err(format!("management key authentication answered {sw:04X}"));
    }
    let (public, sw) = transmit_all(
        &mut card,
        &[
            0x00, 0x47, 0x00, 0x9E, 0x05, 0xAC, 0x03, 0x80, 0x01, 0x11, 0x00,
        ],
    )?;
    if sw != 0x9000 || public.len() != 70 {
        return Err(format!(
            "GENERATE answered {sw:04X} with {} bytes",
            public.len()
        ));
    }
    Ok((card, public[5..].to_vec()))
}

/// Sends a command as a CLA-10 chain of ≤255-byte links (how PIV hosts send long PUT DATA).
pub fn transmit_chained(card: &mut Card, header: [u8; 4], data: &[u8]) -> Result<u16, String> {
    let links: Vec<&[u8]> = data.chunks(255).collect();
    let mut sw = 0;
    for (i, link) in links.iter().enumerate() {
        let last = i + 1 == links.len();
        let mut apdu = vec![
            if last { header[0] } else { header[0] | 0x10 },
            header[1],
            header[2],
            header[3],
        ];
        apdu.push(link.len() as u8);
        apdu.extend_from_slice(link);
        sw = transmit_all(card, &apdu)?.1;
        if sw != 0x9000 {
            return Err(format!("chain link {i} answered {sw:04X}"));
        }
    }
    Ok(sw)
}

/// Writes the card's own attestation certificate for slot 9E into the 9E certificate object, so
/// PKCS#11 middleware shows the 9E key (key objects appear only next to a certificate).
pub fn install_9e_certificate(card: &mut Card) -> Result<(), String> {
    let (certificate, sw) = transmit_all(card, &[0x00, 0xF9, 0x9E, 0x00, 0x00])?;
    if sw != 0x9000 {
        return Err(format!("ATTEST 9E answered {sw:04X}"));
    }
    let mut object = Vec::new();
    apdu::tlv::write_nested(&mut object, 0x53u32, |inner| {
        apdu::tlv::write(inner, 0x70u32, &certificate);
        apdu::tlv::write(inner, 0x71u32, &[0x00]);
        apdu::tlv::write(inner, 0xFEu32, &[]);
    });
    let mut data = vec![0x5C, 0x03, 0x5F, 0xC1, 0x01];
    data.extend_from_slice(&object);
    transmit_chained(card, [0x00, 0xDB, 0x3F, 0xFF], &data).map(|_| ())
}

/// GENERAL AUTHENTICATE: sign a 32-byte hash with the key in `slot`.
pub fn piv_sign_apdu(slot: u8, hash: &[u8; 32]) -> Vec<u8> {
    let mut apdu = vec![0x00, 0x87, 0x11, slot, 38, 0x7C, 36, 0x82, 0x00, 0x81, 32];
    apdu.extend_from_slice(hash);
    apdu.push(0x00);
    apdu
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
