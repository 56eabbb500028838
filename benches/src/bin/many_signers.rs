//! 1, 8 and 32 PIV cards signing concurrently through pcscd: per-signature latency and total signatures
//! per second, against do-nothing cards (answer `90 00` to everything) driven the same way in the same
//! run — the floor of the path.
//!
//! ```text
//! cargo run --release -p benches --bin many-signers -- [--n 1000]
//! ```
//! It starts four private pcscd (64 vpcd slots: pcsc-lite serves 16 readers per daemon): slots 0..32
//! hold tessera PIV cards with a P-256 key in 9E, slots 32..64 do-nothing cards. Each signer is a thread
//! with its own PC/SC connection, sending GENERAL AUTHENTICATE (ECDSA over a 32-byte hash) `--n` times.
//! libpcsclite talks to one daemon per process, so the signers run in worker processes (this binary
//! with `--worker`), one per daemon involved, started together.
//!
//! Stop any other pcscd first.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use benches::{piv_card_with_9e_key, piv_sign_9e_apdu, Stats, SELECT_PIV};
use card_transport::{PcscReader, Transport};
use testkit::{wait_for, EchoCard, Pcscd};
use virtual_reader::{share, SlotHandle, SlotOptions, VpcdSlot};

const CARDS: usize = 32;
const WARM_UP: usize = 20;
const SIGNERS: [usize; 3] = [1, 8, 32];
/// A PIV signature answer: `7C L 82 L` and a DER ECDSA signature (at least 8 bytes), then `90 00`.
const MIN_SIGNATURE_ANSWER: usize = 14;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--worker") {
        return worker(&args[1..]);
    }
    let mut n = 1000usize;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--n" => {
                n = rest
                    .next()
                    .and_then(|v| v.parse().ok())
                    .ok_or("--n needs a number")?
            }
            other => return Err(format!("unknown argument {other:?} (use --n N)")),
        }
    }
    let pcscd = Pcscd::with_slots(2 * CARDS).map_err(|e| e.to_string())?;
    let mut slots: Vec<SlotHandle> = Vec::new();
    for slot in 0..CARDS {
        let (card, _) = piv_card_with_9e_key(None, false)?;
        slots.push(plug(&pcscd, slot, share(card))?);
    }
    for slot in CARDS..2 * CARDS {
        slots.push(plug(&pcscd, slot, share(EchoCard::default()))?);
    }
    let sign = hex(&piv_sign_9e_apdu(&[0x5A; 32]));

    println!(
        "concurrent ECDSA P-256 signatures (PIV GENERAL AUTHENTICATE, 9E) through PC/SC + pcscd + vpcd, {n} per signer"
    );
    println!(
        "  {:>7}  {:<24} {:>9}  {:>9}  {:>9}",
        "signers", "card", "sig/s", "median", "p90"
    );
    let mut ratios = Vec::new();
    for signers in SIGNERS {
        // Floor and card runs alternate, so both see the same machine load.
        let floor = run(&pcscd, CARDS, signers, n, &sign, 2)?;
        let card = run(&pcscd, 0, signers, n, &sign, MIN_SIGNATURE_ANSWER)?;
        for (label, (rate, stats)) in [
            ("do-nothing card (floor)", &floor),
            ("tessera PIV card", &card),
        ] {
            println!(
                "  {signers:>7}  {label:<24} {rate:>9.0}  {:>9.1?}  {:>9.1?}",
                stats.median, stats.p90
            );
        }
        ratios.push((
            signers,
            card.1.median.as_secs_f64() / floor.1.median.as_secs_f64(),
            card.0 / floor.0,
        ));
    }
    for (signers, latency, throughput) in ratios {
        println!(
            "ratio tessera/floor, {signers} signer(s): median latency {latency:.2}x, signatures/s {throughput:.2}x"
        );
    }
    drop(slots);
    Ok(())
}

fn plug(
    pcscd: &Pcscd,
    slot: usize,
    card: virtual_reader::SharedCard,
) -> Result<SlotHandle, String> {
    VpcdSlot::plug(pcscd.vpcd_addr(slot), card, SlotOptions::default()).map_err(|e| e.to_string())
}

/// `signers` concurrent signers on slots `first..first + signers`; returns total signatures per second
/// and per-signature latency.
fn run(
    pcscd: &Pcscd,
    first: usize,
    signers: usize,
    n: usize,
    apdu: &str,
    min_answer: usize,
) -> Result<(f64, Stats), String> {
    // One worker per daemon: its slots' readers.
    let mut groups: Vec<(usize, Vec<&str>)> = Vec::new();
    for slot in first..first + signers {
        let instance = pcscd.instance_of(slot);
        match groups.iter_mut().find(|(i, _)| *i == instance) {
            Some((_, readers)) => readers.push(pcscd.reader_name(slot)),
            None => groups.push((instance, vec![pcscd.reader_name(slot)])),
        }
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut workers: Vec<(Child, ChildStdin, BufReader<ChildStdout>)> = Vec::new();
    for (instance, readers) in &groups {
        let mut child = Command::new(&exe)
            .arg("--worker")
            .arg(readers.join(","))
            .arg(hex(SELECT_PIV))
            .arg(apdu)
            .arg(n.to_string())
            .arg(min_answer.to_string())
            .envs(pcscd.client_env(*instance))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start a worker: {e}"))?;
        let stdin = child.stdin.take().ok_or("worker stdin")?;
        let stdout = BufReader::new(child.stdout.take().ok_or("worker stdout")?);
        workers.push((child, stdin, stdout));
    }
    for (_, _, stdout) in &mut workers {
        expect_line(stdout, "ready")?;
    }
    for (_, stdin, _) in &mut workers {
        writeln!(stdin, "go").map_err(|e| e.to_string())?;
        stdin.flush().map_err(|e| e.to_string())?;
    }
    let mut samples = Vec::new();
    // Each worker times its own run, from its signers' start to the last one's end; the slowest is the
    // run's wall time (process start-up and the pipe round trips stay out of it).
    let mut wall = Duration::ZERO;
    for (_, _, stdout) in &mut workers {
        let line = read_line(stdout)?;
        let elapsed: u64 = line
            .strip_prefix("elapsed ")
            .and_then(|e| e.parse().ok())
            .ok_or_else(|| format!("worker said {line:?}"))?;
        wall = wall.max(Duration::from_nanos(elapsed));
        let line = read_line(stdout)?;
        let numbers = line
            .strip_prefix("samples")
            .ok_or_else(|| format!("worker said {line:?}"))?;
        for word in numbers.split_whitespace() {
            let nanos: u64 = word.parse().map_err(|_| format!("bad sample {word:?}"))?;
            samples.push(Duration::from_nanos(nanos));
        }
    }
    for (mut child, _, _) in workers {
        let _ = child.wait();
    }
    let count = samples.len();
    let stats = Stats::from_samples(samples).ok_or("no samples")?;
    Ok((count as f64 / wall.as_secs_f64(), stats))
}

fn expect_line(reader: &mut impl BufRead, wanted: &str) -> Result<(), String> {
    let line = read_line(reader)?;
    if line == wanted {
        Ok(())
    } else {
        Err(format!("worker said {line:?}, expected {wanted:?}"))
    }
}

fn read_line(reader: &mut impl BufRead) -> Result<String, String> {
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    if line.is_empty() {
        return Err("a worker ended early (see its stderr)".into());
    }
    Ok(line.trim_end().to_owned())
}

/// `--worker READERS SELECT APDU N MIN`: one thread per reader, each sends SELECT, a warm-up, waits for
/// `go` on stdin, then sends APDU N times, checking each answer is at least MIN bytes and ends in `90 00`;
/// prints `ready`, then `samples` with every latency in nanoseconds.
fn worker(args: &[String]) -> Result<(), String> {
    let [readers, select, apdu, n, min_answer] = args else {
        return Err("worker: READERS SELECT APDU N MIN".into());
    };
    let min_answer: usize = min_answer.parse().map_err(|_| "worker: bad MIN")?;
    let select = unhex(select)?;
    let apdu = unhex(apdu)?;
    let n: usize = n.parse().map_err(|_| "worker: bad N")?;
    let readers: Vec<String> = readers.split(',').map(str::to_owned).collect();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let go = std::sync::Arc::new(std::sync::Barrier::new(readers.len() + 1));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let mut threads = Vec::new();
    for reader in readers.clone() {
        let (select, apdu, go, ready) =
            (select.clone(), apdu.clone(), go.clone(), ready_tx.clone());
        threads.push(std::thread::spawn(move || -> Result<Vec<u64>, String> {
            let setup = || -> Result<PcscReader, String> {
                if !wait_for(
                    || PcscReader::card_present(&reader).unwrap_or(false),
                    Duration::from_secs(20),
                ) {
                    return Err(format!("no card in {reader}"));
                }
                let mut card = PcscReader::connect(&reader).map_err(|e| e.to_string())?;
                card.transmit_raw(&select).map_err(|e| e.to_string())?;
                for _ in 0..WARM_UP {
                    card.transmit_raw(&apdu).map_err(|e| e.to_string())?;
                }
                Ok(card)
            };
            let card = setup();
            let failed = card.as_ref().err().cloned();
            let _ = ready.send(card.as_ref().map(|_| ()).map_err(Clone::clone));
            go.wait();
            let mut card = card.map_err(|_| failed.unwrap_or_default())?;
            let mut samples = Vec::with_capacity(n);
            for _ in 0..n {
                let started = Instant::now();
                let answer = card.transmit_raw(&apdu).map_err(|e| e.to_string())?;
                samples.push(u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX));
                if !answer.ends_with(&[0x90, 0x00]) || answer.len() < min_answer {
                    return Err(format!(
                        "{reader}: answer {answer:02X?} does not end in 90 00"
                    ));
                }
            }
            Ok(samples)
        }));
    }
    drop(ready_tx);
    for result in ready_rx.iter().take(readers.len()) {
        result?;
    }
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    let stdin = std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        let _ = go_tx.send(());
    });
    go_rx.recv().map_err(|_| "no go".to_string())?;
    let _ = stdin.join();
    go.wait();
    let started = Instant::now();
    let mut all = Vec::new();
    for thread in threads {
        all.extend(thread.join().map_err(|_| "a signer panicked")??);
    }
    println!("elapsed {}", started.elapsed().as_nanos());
    let text: Vec<String> = all.iter().map(u64::to_string).collect();
    println!("samples {}", text.join(" "));
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| format!("{text:?} is not hex"))
        })
        .collect()
}
