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
