//! What can go wrong between a host and a card, each said so a person knows what to do.

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error(
        "this tessera was built without PC/SC support; rebuild with `--features pcsc` \
         (Debian: apt install libpcsclite-dev) to reach PC/SC readers"
    )]
    PcscNotBuilt,
    #[error("no PC/SC service running (is pcscd started?)")]
    NoService,
    #[error("the PC/SC service stopped (was pcscd restarted?); connect again")]
    ServiceStopped,
    #[error("reader {reader:?} not found; readers present: {}", list(present))]
    ReaderNotFound {
        reader: String,
        present: Vec<String>,
    },
    #[error("no card in reader {0:?}")]
    NoCard(String),
    #[error("the card in reader {0:?} was removed")]
    CardRemoved(String),
    #[error("reader name {0:?} contains a NUL byte")]
    BadReaderName(String),
    #[cfg(feature = "pcsc")]
    #[error("PC/SC {operation} on reader {reader:?} failed: {source}")]
    Pcsc {
        operation: &'static str,
        reader: String,
        source: pcsc::Error,
    },
    #[cfg(feature = "pcsc")]
    #[error("PC/SC {operation} failed: {source}")]
    Service {
        operation: &'static str,
        source: pcsc::Error,
    },
    #[error("the card answered {len} bytes, too short for SW1 SW2")]
    NoStatusWord { len: usize },
    #[error("the card went mute (no answer: it lost power)")]
    Mute,
    #[error("the card kept answering 61 xx after {rounds} GET RESPONSE rounds")]
    EndlessResponse { rounds: usize },
    #[error("the command cannot be encoded: {0}")]
    Command(#[from] apdu::CommandError),
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        format!("{names:?}")
    }
}
