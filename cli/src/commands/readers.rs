//! `tessera readers`.

use std::process::ExitCode;

use card_transport::PcscReader;

pub fn run() -> anyhow::Result<ExitCode> {
    let readers = PcscReader::list()?;
    if readers.is_empty() {
        println!("no readers (is vpcd installed? see scripts/pcsc-install.sh)");
    }
    for reader in readers {
        let state = match PcscReader::card_atr(&reader)? {
            Some(atr) => format!("card present, ATR {}", apdu::hex_spaced(&atr)),
            None => "empty".to_string(),
        };
        println!("{reader}: {state}");
    }
    Ok(ExitCode::SUCCESS)
}
