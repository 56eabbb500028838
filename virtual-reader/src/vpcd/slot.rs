//! A card plugged into one vpcd slot: a thread that connects to pcscd's vpcd port
//! (the card is the TCP client), answers its messages, and reconnects with
//! exponential backoff whenever the connection ends, so a restarted pcscd finds
//! the card again by itself.
//!
//! Card insertion is connecting; card removal is closing the socket. Removal from
//! another thread shuts the socket down, which wakes the blocked read with EOF.
//! [`SlotHandle::eject`] takes the card out but keeps the slot thread, which then waits
//! for [`SlotHandle::insert`] to put that card, or another one, back.
//!
//! pcscd quirk: if a card is replaced faster than pcscd's 0.4 s presence poll and an
//! application calls SCardConnect in that window, pcscd can go on reporting the slot
//! empty while vpcd keeps polling the new card's ATR. Removing and re-plugging the new
//! card recovers. Waiting until pcscd reports the slot empty before re-plugging avoids it.

use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, error, info, trace, warn};

use super::protocol::{encode_reply, read_frame, VpcdMessage};
use crate::{lock_card, SharedCard};

/// Status word sent when the card breaks the `transmit` contract (reply shorter than
/// SW1 SW2 or too long to frame): "no precise diagnosis".
const SW_NO_DIAGNOSIS: [u8; 2] = [0x6F, 0x00];

/// How a slot connects and retries.
#[derive(Debug, Clone)]
pub struct SlotOptions {
    /// First wait after a failed connect or an ended session.
    pub backoff_initial: Duration,
    /// The wait doubles up to this.
    pub backoff_max: Duration,
    /// Bound on one TCP connect; removal waits at most this long for one in flight.
    pub connect_timeout: Duration,
    /// Bound on writing one reply; vpcd reads promptly, so hitting it means a hung peer.
    pub write_timeout: Duration,
}

impl Default for SlotOptions {
    fn default() -> Self {
        Self {
            backoff_initial: Duration::from_millis(50),
            backoff_max: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// How long a re-insertion waits after an ejection: more than two of pcscd's 0.4 s
/// presence polls, so pcscd has seen the slot empty (see the quirk above).
pub const REINSERT_GAP: Duration = Duration::from_millis(1000);

/// Where a slot is, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    /// Ejected by [`SlotHandle::eject`]: no connection until [`SlotHandle::insert`].
    Ejected { since: Instant },
    /// Not connected since `since`; `attempts` connects have failed since then.
    Connecting { since: Instant, attempts: u32 },
    /// TCP-connected since `since`: pcscd sees the card about 0.4 s later. vpcd
    /// serves one card per slot; a second card plugged into a busy slot is also
    /// `Connected` but waits in the listen queue until pcscd has seen the first one go.
    Connected { since: Instant, peer: SocketAddr },
}

#[derive(Debug, thiserror::Error)]
pub enum SlotError {
    #[error("cannot resolve vpcd address {addr}: {source}")]
    Resolve { addr: String, source: io::Error },
    #[error("vpcd address {0} resolves to no address")]
    NoAddress(String),
    #[error("cannot start the slot thread: {0}")]
    Spawn(io::Error),
}

/// Plugs cards into vpcd.
pub struct VpcdSlot;

impl VpcdSlot {
    /// Inserts `card` into the vpcd slot listening at `addr` (e.g. "127.0.0.1:35963")
    /// and keeps it inserted, reconnecting as needed, until the handle is removed or
    /// dropped. Fails only if `addr` does not resolve or the thread cannot start;
    /// an unreachable pcscd is retried, not an error.
    pub fn plug<A: ToSocketAddrs + std::fmt::Display>(
        addr: A,
        card: SharedCard,
        options: SlotOptions,
    ) -> Result<SlotHandle, SlotError> {
        let label = addr.to_string();
        let addrs: Vec<SocketAddr> = addr
            .to_socket_addrs()
            .map_err(|source| SlotError::Resolve {
                addr: label.clone(),
                source,
            })?
            .collect();
        if addrs.is_empty() {
            return Err(SlotError::NoAddress(label));
        }
        let shared = Arc::new(Shared {
            control: Mutex::new(Control {
                removed: false,
                ejected: None,
                card,
                stream: None,
                state: SlotState::Connecting {
                    since: Instant::now(),
                    attempts: 0,
                },
            }),
            wake: Condvar::new(),
        });
        let worker = Worker {
            addrs,
            label: label.clone(),
            options,
            shared: Arc::clone(&shared),
        };
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-slot {label}"))
            .spawn(move || worker.run())
            .map_err(SlotError::Spawn)?;
        Ok(SlotHandle {
            label,
            shared,
            thread: Some(thread),
        })
    }
}

/// A plugged card. Removing or dropping it takes the card out of the reader.
pub struct SlotHandle {
    label: String,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl SlotHandle {
    pub fn state(&self) -> SlotState {
        self.shared.lock().state
    }

    /// The vpcd address this card is plugged into, as given to `plug`.
    pub fn addr(&self) -> &str {
        &self.label
    }

    /// The card in this slot (also while ejected).
    pub fn card(&self) -> SharedCard {
        Arc::clone(&self.shared.lock().card)
    }

    /// Whether the card is in the reader (not ejected).
    pub fn is_inserted(&self) -> bool {
        self.shared.lock().ejected.is_none()
    }

    /// Takes the card out without ending the slot: closes the connection (pcscd reports
    /// the card removed within its ~0.4 s poll) and powers the card off; the slot then
    /// waits for [`SlotHandle::insert`]. Ejecting an ejected slot changes nothing.
    pub fn eject(&self) {
        {
            let mut control = self.shared.lock();
            if control.ejected.is_some() {
                return;
            }
            control.ejected = Some(Instant::now());
            control.state = SlotState::Ejected {
                since: Instant::now(),
            };
            if let Some(stream) = control.stream.take() {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.wake.notify_all();
        info!(slot = %self.label, "card ejected");
    }

    /// Puts a card back into an ejected slot: `card`, or the one that was there. The
    /// slot connects again (pcscd sees an insertion), but not before [`REINSERT_GAP`]
    /// has passed since the ejection. On a slot that holds a card, `Some(card)` swaps it:
    /// the old card is taken out first, the new one goes in after the gap.
    pub fn insert(&self, card: Option<SharedCard>) {
        if card.is_some() && self.is_inserted() {
            self.eject();
        }
        {
            let mut control = self.shared.lock();
            if let Some(card) = card {
                control.card = card;
            }
            if control.ejected.is_none() {
                return;
            }
            control.ejected = None;
        }
        self.shared.wake.notify_all();
        info!(slot = %self.label, "card re-inserted");
    }

    /// Removes the card: closes the connection (pcscd reports the card removed within
    /// its ~0.4 s poll), stops the slot thread and waits for it.
    pub fn remove(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        {
            let mut control = self.shared.lock();
            control.removed = true;
            if let Some(stream) = control.stream.take() {
                // Wakes the slot thread's blocked read with EOF. NotConnected just
                // means vpcd closed first.
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        self.shared.wake.notify_all();
        if thread.join().is_err() {
            error!(slot = %self.label, "vpcd slot thread panicked");
        }
        info!(slot = %self.label, "card removed");
    }
}

impl Drop for SlotHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for SlotHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlotHandle")
            .field("addr", &self.label)
            .field("state", &self.state())
            .finish()
    }
}

/// State shared between the handle and the slot thread.
struct Shared {
    control: Mutex<Control>,
    wake: Condvar,
}

struct Control {
    removed: bool,
    /// When the card was ejected, while it is out.
    ejected: Option<Instant>,
    /// The card the next connection serves.
    card: SharedCard,
    /// A clone of the live connection, so removal can shut it down.
    stream: Option<TcpStream>,
    state: SlotState,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Control> {
        // Nothing under this lock can panic half-way; a poisoned guard is still valid.
        self.control.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sleeps up to `duration`; returns true if the card was removed meanwhile.
    fn sleep_unless_removed(&self, duration: Duration) -> bool {
        let guard = self.lock();
        let (guard, _) = self
            .wake
            .wait_timeout_while(guard, duration, |c| !c.removed)
            .unwrap_or_else(PoisonError::into_inner);
        guard.removed
    }

    /// While the card is ejected, waits for it to be inserted again, then for the rest of
    /// [`REINSERT_GAP`]. Returns true if the card was removed meanwhile.
    fn wait_while_ejected(&self) -> bool {
        let mut ejected_at = None;
        let mut guard = self.lock();
        while let Some(at) = guard.ejected {
            if guard.removed {
                return true;
            }
            ejected_at = Some(at);
            guard = self
                .wake
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(guard);
        match ejected_at {
            Some(at) => self.sleep_unless_removed(REINSERT_GAP.saturating_sub(at.elapsed())),
            None => self.lock().removed,
        }
    }
}

/// How one connection ended.
struct Session {
    messages: u64,
    end: io::Result<()>,
    /// The card went mute (lost power mid-command): it is out of the reader for a moment.
    mute: bool,
}

struct Worker {
    addrs: Vec<SocketAddr>,
    label: String,
    options: SlotOptions,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(self) {
        let mut backoff = self.options.backoff_initial;
        let mut since = Instant::now();
        let mut attempts = 0u32;
        loop {
            if self.shared.wait_while_ejected() {
                return;
            }
            self.set_state(SlotState::Connecting { since, attempts });
            match self.connect() {
                Ok((stream, handle, peer)) => {
                    let Some(card) = self.register(handle, peer) else {
                        let _ = stream.shutdown(Shutdown::Both);
                        if self.shared.lock().removed {
                            return;
                        }
                        // Ejected while connecting: wait for the insertion at the loop's top.
                        continue;
                    };
                    info!(slot = %self.label, %peer, "card inserted (connected to vpcd)");
                    let session = self.serve(&stream, &card);
                    self.shared.lock().stream = None;
                    lock_card(&card).power_off();
                    let (removed, ejected) = {
                        let control = self.shared.lock();
                        (control.removed, control.ejected.is_some())
                    };
                    match (&session.end, removed) {
                        (_, true) => return,
                        _ if ejected => {
                            backoff = self.options.backoff_initial;
                            attempts = 0;
                            since = Instant::now();
                            continue;
                        }
                        (Ok(()), false) => {
                            info!(slot = %self.label, messages = session.messages, "vpcd closed the connection; reconnecting")
                        }
                        (Err(e), false) => {
                            warn!(slot = %self.label, messages = session.messages, error = %e, "vpcd connection failed; reconnecting")
                        }
                    }
                    if session.messages > 0 {
                        backoff = self.options.backoff_initial;
                        attempts = 0;
                    }
                    // A card that lost power was pulled out: it stays out long enough for pcscd to
                    // see the empty slot (see the quirk above), then goes back in and powers up.
                    if session.mute && self.shared.sleep_unless_removed(REINSERT_GAP) {
                        return;
                    }
                    since = Instant::now();
                }
                Err(e) => {
                    attempts = attempts.saturating_add(1);
                    if attempts == 1 {
                        info!(slot = %self.label, error = %e, "vpcd not reachable (is pcscd running?); retrying with backoff");
                    } else {
                        debug!(slot = %self.label, error = %e, attempts, ?backoff, "vpcd still not reachable");
                    }
                }
            }
            self.set_state(SlotState::Connecting { since, attempts });
            if self.shared.sleep_unless_removed(backoff) {
                return;
            }
            backoff = (backoff * 2).min(self.options.backoff_max);
        }
    }

    /// Connects to the first address that answers. Returns the stream, a second
    /// handle on it for removal to shut down, and the peer.
    fn connect(&self) -> io::Result<(TcpStream, TcpStream, SocketAddr)> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
        for addr in &self.addrs {
            match TcpStream::connect_timeout(addr, self.options.connect_timeout) {
                Ok(stream) => {
                    stream.set_nodelay(true)?;
                    stream.set_write_timeout(Some(self.options.write_timeout))?;
                    quickack(&stream);
                    let handle = stream.try_clone()?;
                    return Ok((stream, handle, *addr));
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sets the state unless the card is ejected (which is a state of its own).
    fn set_state(&self, state: SlotState) {
        let mut control = self.shared.lock();
        if control.ejected.is_none() {
            control.state = state;
        }
    }

    /// Publishes the live connection so removal can shut it down, and returns the card to
    /// serve on it; `None` if the card was removed or ejected while connecting.
    fn register(&self, handle: TcpStream, peer: SocketAddr) -> Option<SharedCard> {
        let mut control = self.shared.lock();
        if control.removed || control.ejected.is_some() {
            return None;
        }
        control.stream = Some(handle);
        control.state = SlotState::Connected {
            since: Instant::now(),
            peer,
        };
        Some(Arc::clone(&control.card))
    }

    fn serve(&self, stream: &TcpStream, card: &SharedCard) -> Session {
        let mut session = Session {
            messages: 0,
            end: Ok(()),
            mute: false,
        };
        let mut body = Vec::new();
        let mut reader = stream;
        loop {
            match read_frame(&mut reader, &mut body, &mut |s| quickack(s)) {
                Ok(true) => {}
                Ok(false) => return session,
                Err(e) => {
                    session.end = Err(e);
                    return session;
                }
            }
            session.messages += 1;
            let written = match self.answer(&body, card) {
                Ok(Some(reply)) => (&mut reader).write_all(&reply),
                Ok(None) => Ok(()),
                Err(e) => {
                    session.mute = e.kind() == io::ErrorKind::Interrupted;
                    Err(e)
                }
            };
            if let Err(e) = written {
                session.end = Err(e);
                return session;
            }
        }
    }

    /// The framed reply to one message, if it needs one. An error ends the session.
    fn answer(&self, body: &[u8], card: &SharedCard) -> io::Result<Option<Vec<u8>>> {
        let message = match VpcdMessage::decode(body) {
            Ok(message) => message,
            Err(e) => {
                warn!(slot = %self.label, error = %e, "ignoring vpcd message");
                return Ok(None);
            }
        };
        let mut card = lock_card(card);
        match message {
            VpcdMessage::PowerOff => {
                trace!(slot = %self.label, "power off");
                card.power_off();
                Ok(None)
            }
            VpcdMessage::PowerOn => {
                trace!(slot = %self.label, "power on");
                card.power_on();
                Ok(None)
            }
            VpcdMessage::Reset => {
                trace!(slot = %self.label, "reset");
                card.reset();
                Ok(None)
            }
            VpcdMessage::GetAtr => {
                trace!(slot = %self.label, "get ATR");
                // No answer would hang vpcd (it has no receive timeout), so a card
                // without a usable ATR is taken out of the reader instead.
                encode_reply(&card.atr()).map(Some).map_err(|e| {
                    io::Error::new(io::ErrorKind::InvalidData, format!("bad ATR: {e}"))
                })
            }
            VpcdMessage::Apdu(apdu) => {
                // The contract says transmit never panics; if it does anyway, the host
                // gets 6F00 and the reader stays up instead of the slot thread dying.
                let response = panic::catch_unwind(AssertUnwindSafe(|| card.transmit(apdu)))
                    .unwrap_or_else(|_| {
                        error!(slot = %self.label, ins = %format_args!("{:02X}", apdu[1]), "card panicked in transmit");
                        SW_NO_DIAGNOSIS.to_vec()
                    });
                drop(card);
                if response.is_empty() {
                    // A mute card lost power mid-command: to pcscd it is pulled out; the slot's
                    // reconnect loop inserts it again, and power-up runs its recovery.
                    warn!(slot = %self.label, "card went mute (power lost); removing it");
                    return Err(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "the card went mute",
                    ));
                }
                let sw = response.len().checked_sub(2).map(|i| &response[i..]);
                // INS and SW only: the data may hold PINs or keys.
                debug!(slot = %self.label, ins = %format_args!("{:02X}", apdu[1]),
                    sw = %format_args!("{:02X?}", sw.unwrap_or_default()), "APDU");
                match (sw, encode_reply(&response)) {
                    (Some(_), Ok(frame)) => Ok(Some(frame)),
                    _ => {
                        warn!(slot = %self.label, len = response.len(), "card reply has no status word or is too long; sending 6F00");
                        encode_reply(&SW_NO_DIAGNOSIS)
                            .map(Some)
                            .map_err(|e| io::Error::other(e.to_string()))
                    }
                }
            }
        }
    }
}

/// Re-arms TCP_QUICKACK. vpcd sends length and body in two writes without
/// TCP_NODELAY; with delayed ACKs on our side every APDU would wait ~40 ms for
/// Nagle. Linux clears the flag again on its own, hence before and after every read.
fn quickack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Err(e) = socket2::SockRef::from(stream).set_tcp_quickack(true) {
        trace!(error = %e, "TCP_QUICKACK not set");
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}
