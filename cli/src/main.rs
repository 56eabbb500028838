//! The `tessera` command line: one binary in front of cards, readers and conformance checks.

mod cards;
mod commands;
mod control;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "A virtual smart card that real software cannot tell from a physical one"
)]
struct Cli {
    /// Log detail: error, warn, info, debug (APDU headers; PINs are always redacted), trace.
    #[arg(long, global = true, default_value = "warn", env = "TESSERA_LOG")]
    log: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and inspect card images.
    #[command(subcommand)]
    Card(commands::card::CardCommand),
    /// Plug cards into vpcd slots so pcsc-lite sees them, until interrupted.
    Serve(commands::serve::ServeArgs),
    /// Control a running `serve --control`: remove, insert, reset, tear, snapshot, restore, clock, trace.
    Ctl(commands::ctl::CtlArgs),
    /// Replay an APDU trace against a copy of its card and check every response byte for byte.
    Replay(commands::replay::ReplayArgs),
    /// Send APDUs to a card file in-process (no pcscd needed) or to a PC/SC reader.
    Apdu(commands::apdu::ApduArgs),
    /// List the PC/SC readers and whether a card is present.
    Readers,
    /// Run the conformance suite against a card: through pcscd when it runs, in-process otherwise.
    Conform(commands::conform::ConformArgs),
    /// The staging certificate authority.
    #[command(subcommand)]
    Ca(commands::bureau::CaCommand),
    /// The staging personalization bureau: census, personalization, delivery, registration.
    #[command(subcommand)]
    Bureau(commands::bureau::BureauCommand),
    /// The login lab: the web application operators log into with their card from a certified workstation.
    #[command(subcommand)]
    Lab(commands::lab::LabCommand),
    /// The whole staging world, then a login with a card: CA, census, cards, delivery, workstation, lab.
    Demo(commands::demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Card(command) => commands::card::run(command),
        Command::Serve(args) => commands::serve::run(args),
        Command::Ctl(args) => commands::ctl::run(args),
        Command::Replay(args) => commands::replay::run(args),
        Command::Apdu(args) => commands::apdu::run(args),
        Command::Readers => commands::readers::run(),
        Command::Conform(args) => commands::conform::run(args),
        Command::Ca(command) => commands::bureau::run_ca(command),
        Command::Bureau(command) => commands::bureau::run(command),
        Command::Lab(command) => commands::lab::run(command),
        Command::Demo(args) => commands::demo::run(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            // One readable sentence: the error and its causes joined.
            eprintln!("tessera: {error:#}");
            ExitCode::from(2)
        }
    }
}
