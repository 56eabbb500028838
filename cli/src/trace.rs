//! APDU traces: what a served card saw, written by `tessera serve` (`ctl trace SLOT --start FILE`) and
//! replayed byte for byte by `tessera replay`.
//!
//! A trace is text, one event per line; `#` lines are comments:
//! ```text
//! tessera-trace 1
//! atr 3B FB 13 00 …
//! random seed 7 position 0         (or: random os)
//! clock fixed 2030-01-01T00:00:00Z (or: clock system)
//! power on                         (the card's power when the trace started)
//! > 00 A4 04 00 09 A0 00 00 03 08 00 00 10 00
//! < 61 11 …  90 00
//! > 00 20 00 80 08 <secret:1>      (data of a PIN-bearing command, never written)
//! < 90 00
//! tear 1 clean                     (the next command loses power at its first write)
//! > 80 10 00 00 04
//! < mute
//! power-off / power-on / reset / clock … / snapshot NAME / restore NAME
//! ```
//! The data of every command the card calls sensitive (`VirtualCard::is_sensitive`: PIN, PUK, keys) is
//! replaced by `<secret:N>`; equal values get the same N within one trace, and the value itself is kept
//! only in memory. Replay takes it back from the tester (`--secret N=HEX`).

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use card_os::Clock;
use zeroize::Zeroizing;

/// The first line of every trace.
pub const MAGIC: &str = "tessera-trace 1";

/// Where a trace starts: what replay needs to build the same card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub atr: Vec<u8>,
    /// Seed and position of a deterministic card; `None`: the card drew from the OS.
    pub random: Option<(u64, u128)>,
    pub clock: Clock,
    pub powered: bool,
}

/// One line of a trace after the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    PowerOn,
    PowerOff,
    Reset,
    /// A command; `Secret(n)` stands where its data was.
    Command(Vec<CommandPart>),
    /// The answer: response bytes, or nothing (the card went mute).
    Response(Option<Vec<u8>>),
    Tear {
        at_write: u32,
        torn: bool,
    },
    Clock(Clock),
    Snapshot(String),
    Restore(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandPart {
    Bytes(Vec<u8>),
    Secret(usize),
}

/// Formats a clock as the trace writes it.
pub fn clock_text(clock: Clock) -> String {
    match clock {
        Clock::System => "system".to_owned(),
        Clock::Fixed(seconds) => format!("fixed {}", rfc3339(seconds)),
    }
}

/// Unix seconds as RFC 3339 UTC.
pub fn rfc3339(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("@{seconds}"))
}

/// Parses an RFC 3339 time (`2030-01-01T00:00:00Z`, offsets allowed) into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let time = chrono::DateTime::parse_from_rfc3339(text.trim()).map_err(|e| {
        format!("{text:?} is not an RFC 3339 time such as 2030-01-01T00:00:00Z ({e})")
    })?;
    u64::try_from(time.timestamp()).map_err(|_| format!("{text:?} is before 1970"))
}

/// Writes a trace as the served card works.
pub struct TraceWriter {
    path: PathBuf,
    out: BufWriter<File>,
    /// Secret values seen so far; index + 1 is their placeholder number.
    secrets: Vec<Zeroizing<Vec<u8>>>,
    commands: u64,
    line: u64,
}

impl TraceWriter {
    /// Creates (or truncates) `path`, 0600, and writes the header.
    pub fn create(path: &Path, header: &Header) -> io::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)?;
        let mut writer = Self {
            path: path.to_owned(),
            out: BufWriter::new(file),
            secrets: Vec::new(),
            commands: 0,
            line: 0,
        };
        writer.write_line(
            "# tessera APDU trace. Data of PIN-bearing commands is <secret:N>; replay with",
        )?;
        writer.write_line("# `tessera replay --card CARD.img THIS_FILE --secret N=HEX`.")?;
        writer.write_line(MAGIC)?;
        writer.write_line(&format!("atr {}", apdu::hex_spaced(&header.atr)))?;
        let random = match header.random {
            Some((seed, position)) => format!("random seed {seed} position {position}"),
            None => "random os".to_owned(),
        };
        writer.write_line(&random)?;
        writer.write_line(&format!("clock {}", clock_text(header.clock)))?;
        writer.write_line(if header.powered {
            "power on"
        } else {
            "power off"
        })?;
        writer.out.flush()?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_line(&mut self, text: &str) -> io::Result<()> {
        self.line += 1;
        writeln!(self.out, "{text}")
    }

    /// Writes a non-command event and flushes.
    pub fn event(&mut self, event: &Event) -> io::Result<()> {
        let text = match event {
            Event::PowerOn => "power-on".to_owned(),
            Event::PowerOff => "power-off".to_owned(),
            Event::Reset => "reset".to_owned(),
            Event::Tear { at_write, torn } => {
                format!("tear {at_write} {}", if *torn { "torn" } else { "clean" })
            }
            Event::Clock(clock) => format!("clock {}", clock_text(*clock)),
            Event::Snapshot(name) => format!("snapshot {name}"),
            Event::Restore(name) => format!("restore {name}"),
            Event::Command(_) | Event::Response(_) => {
                return Err(io::Error::other("commands are written with `exchange`"))
            }
        };
        self.write_line(&text)?;
        self.out.flush()
    }

    /// Writes one command and its answer (`None`: mute) and flushes. With `sensitive`, the command's data
    /// is replaced by a placeholder.
    pub fn exchange(
        &mut self,
        command: &[u8],
        sensitive: bool,
        response: Option<&[u8]>,
    ) -> io::Result<()> {
        let shown = match split_data(command).filter(|_| sensitive) {
            Some((head, data, tail)) => {
                let (number, new) = self.placeholder(data);
                if new {
                    self.write_line(&format!(
                        "# secret:{number} is the data of {} (a PIN, PUK or key: give it to replay as --secret {number}=HEX)",
                        apdu::hex_spaced(&command[..4])
                    ))?;
                }
                let mut text = apdu::hex_spaced(head);
                text.push_str(&format!(" <secret:{number}>"));
                if !tail.is_empty() {
                    text.push(' ');
                    text.push_str(&apdu::hex_spaced(tail));
                }
                text
            }
            None => apdu::hex_spaced(command),
        };
        self.write_line(&format!("> {shown}"))?;
        let answer = match response {
            Some(bytes) => apdu::hex_spaced(bytes),
            None => "mute".to_owned(),
        };
        self.write_line(&format!("< {answer}"))?;
        self.commands += 1;
        self.out.flush()
    }

    /// The placeholder number of `data`, and whether it is new (its comment is written once).
    fn placeholder(&mut self, data: &[u8]) -> (usize, bool) {
        if let Some(index) = self
            .secrets
            .iter()
            .position(|known| card_os::ct_eq(known, data))
        {
            return (index + 1, false);
        }
        self.secrets.push(Zeroizing::new(data.to_vec()));
        (self.secrets.len(), true)
    }

    /// Flushes and closes the file.
    pub fn finish(mut self) -> io::Result<u64> {
        self.out.flush()?;
        self.out.get_ref().sync_all()?;
        Ok(self.commands)
    }
}

/// Splits a command APDU into the bytes before its data, the data, and the bytes after (Le), if it parses
/// and has data.
fn split_data(bytes: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
    let command = apdu::Command::from_bytes(bytes).ok()?;
    let len = command.data.len();
    if len == 0 {
        return None;
    }
    // Short Lc is one byte at offset 4; extended Lc is 00 and two bytes.
    let start = if bytes.get(4) == Some(&0) { 7 } else { 5 };
    let end = start + len;
    if end > bytes.len() || bytes[start..end] != command.data[..] {
        return None;
    }
    Some((&bytes[..start], &bytes[start..end], &bytes[end..]))
}

/// A parsed trace: the header and the numbered events.
#[derive(Debug)]
pub struct Trace {
    pub header: Header,
    /// (line number, event)
    pub events: Vec<(usize, Event)>,
}

impl Trace {
    /// Parses a trace; errors name the line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim()))
            .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'));
        let mut next = |what: &str| {
            lines
                .next()
                .ok_or_else(|| format!("the trace ends before its {what} line"))
        };
        let (n, magic) = next("first")?;
        if magic != MAGIC {
            return Err(format!(
                "line {n}: not a tessera trace (expected {MAGIC:?}, found {magic:?})"
            ));
        }
        let (n, atr) = next("atr")?;
        let atr = atr
            .strip_prefix("atr ")
            .ok_or_else(|| format!("line {n}: expected `atr HEX`"))
            .and_then(|h| hex_bytes(h).map_err(|e| format!("line {n}: {e}")))?;
        let (n, random) = next("random")?;
        let random = parse_random(random).map_err(|e| format!("line {n}: {e}"))?;
        let (n, clock) = next("clock")?;
        let clock = clock
            .strip_prefix("clock ")
            .ok_or_else(|| "expected `clock system` or `clock fixed TIME`".to_owned())
            .and_then(parse_clock)
            .map_err(|e| format!("line {n}: {e}"))?;
        let (n, power) = next("power")?;
        let powered = match power {
            "power on" => true,
            "power off" => false,
            _ => return Err(format!("line {n}: expected `power on` or `power off`")),
        };
        let header = Header {
            atr,
            random,
            clock,
            powered,
        };
        let mut events = Vec::new();
        for (n, line) in lines {
            events.push((n, parse_event(line).map_err(|e| format!("line {n}: {e}"))?));
        }
        Ok(Self { header, events })
    }
}

fn parse_random(text: &str) -> Result<Option<(u64, u128)>, String> {
    if text == "random os" {
        return Ok(None);
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    match words[..] {
        ["random", "seed", seed, "position", position] => Ok(Some((
            seed.parse().map_err(|_| format!("bad seed {seed:?}"))?,
            position
                .parse()
                .map_err(|_| format!("bad position {position:?}"))?,
        ))),
        _ => Err("expected `random os` or `random seed N position N`".into()),
    }
}

fn parse_clock(text: &str) -> Result<Clock, String> {
    if text == "system" {
        return Ok(Clock::System);
    }
    let time = text
        .strip_prefix("fixed ")
        .ok_or_else(|| format!("expected `system` or `fixed TIME`, found {text:?}"))?;
    parse_rfc3339(time).map(Clock::Fixed)
}

fn parse_event(line: &str) -> Result<Event, String> {
    if let Some(command) = line.strip_prefix("> ") {
        let mut parts = Vec::new();
        let mut bytes = Vec::new();
        for word in command.split_whitespace() {
            if let Some(number) = word
                .strip_prefix("<secret:")
                .and_then(|w| w.strip_suffix('>'))
            {
                let number = number
                    .parse()
                    .map_err(|_| format!("bad placeholder {word:?}"))?;
                if !bytes.is_empty() {
                    parts.push(CommandPart::Bytes(std::mem::take(&mut bytes)));
                }
                parts.push(CommandPart::Secret(number));
            } else {
                bytes.extend(hex_bytes(word)?);
            }
        }
        if !bytes.is_empty() {
            parts.push(CommandPart::Bytes(bytes));
        }
        return Ok(Event::Command(parts));
    }
    if let Some(response) = line.strip_prefix("< ") {
        return Ok(Event::Response(if response.trim() == "mute" {
            None
        } else {
            Some(hex_bytes(response)?)
        }));
    }
    let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
    match (word, rest) {
        ("power-on", "") => Ok(Event::PowerOn),
        ("power-off", "") => Ok(Event::PowerOff),
        ("reset", "") => Ok(Event::Reset),
        ("tear", rest) => {
            let (at, kind) = rest.split_once(' ').unwrap_or((rest, "clean"));
            let at_write = at
                .parse()
                .map_err(|_| format!("bad tear write number {at:?}"))?;
            let torn = match kind {
                "clean" => false,
                "torn" => true,
                _ => return Err(format!("tear kind must be clean or torn, not {kind:?}")),
            };
            Ok(Event::Tear { at_write, torn })
        }
        ("clock", rest) => parse_clock(rest).map(Event::Clock),
        ("snapshot", name) if !name.is_empty() => Ok(Event::Snapshot(name.to_owned())),
        ("restore", name) if !name.is_empty() => Ok(Event::Restore(name.to_owned())),
        _ => Err(format!("unknown trace line {line:?}")),
    }
}

/// Hex bytes, spaces allowed.
pub fn hex_bytes(text: &str) -> Result<Vec<u8>, String> {
    let clean: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    hex::decode(&clean).map_err(|_| format!("{text:?} is not hex"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            atr: vec![0x3B, 0x80, 0x01, 0x81],
            random: Some((7, 42)),
            clock: Clock::Fixed(1_893_456_000),
            powered: true,
        }
    }

    #[test]
    fn a_written_trace_parses_back_without_its_secrets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.trace");
        let mut writer = TraceWriter::create(&path, &header()).expect("create");
        let verify = hex::decode("002000800831323334353637FF").expect("hex");
        writer
            .exchange(
                &hex::decode("00A40400").expect("hex"),
                false,
                Some(&[0x90, 0x00]),
            )
            .expect("write");
        writer
            .exchange(&verify, true, Some(&[0x90, 0x00]))
            .expect("write");
        writer
            .exchange(&verify, true, Some(&[0x63, 0xC2]))
            .expect("write");
        writer
            .event(&Event::Tear {
                at_write: 2,
                torn: true,
            })
            .expect("tear");
        writer
            .exchange(&[0x80, 0x10, 0x00, 0x00, 0x04], false, None)
            .expect("mute");
        writer.event(&Event::PowerOff).expect("off");
        writer.event(&Event::Clock(Clock::System)).expect("clock");
        writer
            .event(&Event::Snapshot("clean".into()))
            .expect("snap");
        assert_eq!(writer.finish().expect("finish"), 4);

        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("31 32 33"), "the PIN leaked:\n{text}");
        assert_eq!(text.matches("# secret:1 is").count(), 1, "{text}");
        assert!(text.contains("> 00 20 00 80 08 <secret:1>\n"), "{text}");
        let mode = std::fs::metadata(&path).expect("meta").permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );

        let trace = Trace::parse(&text).expect("parse");
        assert_eq!(trace.header, header());
        let events: Vec<Event> = trace.events.into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            events[2],
            Event::Command(vec![
                CommandPart::Bytes(vec![0x00, 0x20, 0x00, 0x80, 0x08]),
                CommandPart::Secret(1)
            ])
        );
        assert_eq!(events[5], Event::Response(Some(vec![0x63, 0xC2])));
        assert_eq!(
            events[6],
            Event::Tear {
                at_write: 2,
                torn: true
            }
        );
        assert_eq!(events[8], Event::Response(None));
        assert_eq!(events[10], Event::Clock(Clock::System));
    }

    #[test]
    fn bad_traces_name_the_line() {
        let good = "tessera-trace 1\natr 3B\nrandom os\nclock system\npower off\n";
        assert!(Trace::parse(good).is_ok());
        for (text, needle) in [
            ("hello\n", "line 1: not a tessera trace"),
            ("tessera-trace 1\natr ZZ\n", "line 2"),
            (
                "tessera-trace 1\natr 3B\nrandom seed x position 0\n",
                "line 3: bad seed",
            ),
            (
                "tessera-trace 1\natr 3B\nrandom os\nclock fixed yesterday\n",
                "line 4",
            ),
            (
                &format!("{good}> 00 A4 <secret:x>\n"),
                "line 6: bad placeholder",
            ),
            (&format!("{good}explode\n"), "line 6: unknown trace line"),
            ("tessera-trace 1\n", "ends before its atr line"),
        ] {
            let error = Trace::parse(text).expect_err(text);
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn data_is_found_in_short_and_extended_commands() {
        let short = [0x00, 0x20, 0x00, 0x80, 0x02, 0xAA, 0xBB, 0x00];
        assert_eq!(
            split_data(&short),
            Some((&short[..5], &short[5..7], &short[7..]))
        );
        let extended = [0x00, 0x20, 0x00, 0x80, 0x00, 0x00, 0x02, 0xAA, 0xBB];
        assert_eq!(
            split_data(&extended),
            Some((&extended[..7], &extended[7..9], &[][..]))
        );
        assert_eq!(split_data(&[0x00, 0xA4, 0x04, 0x00]), None);
    }

    #[test]
    fn rfc3339_round_trips() {
        assert_eq!(parse_rfc3339("2030-01-01T00:00:00Z"), Ok(1_893_456_000));
        assert_eq!(
            parse_rfc3339("2030-01-01T01:00:00+01:00"),
            Ok(1_893_456_000)
        );
        assert_eq!(rfc3339(1_893_456_000), "2030-01-01T00:00:00Z");
        assert!(parse_rfc3339("1969-12-31T23:59:59Z")
            .expect_err("before")
            .contains("before 1970"));
        assert!(parse_rfc3339("tomorrow").is_err());
    }
}
