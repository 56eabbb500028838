//! What `serve` holds per slot, and how control requests act on it.
//!
//! Each slot's card is a [`ServedCard`]: the card-os card plus what the control socket adds to it — an
//! APDU trace and the fate of an armed power cut. The slot thread sees it as a `VirtualCard`; control
//! requests lock it between APDUs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use card_os::{Card, CardSnapshot, Clock, Durability, FaultPlan};
use card_transport::VirtualCard;
use tracing::warn;
use virtual_reader::{SlotHandle, SlotState};

use super::protocol::{Request, Response, SlotInfo};
use crate::cards;
use crate::trace::{self, Event, Header, TraceWriter};

/// A snapshot name: what `snapshot`/`restore` accept.
const MAX_NAME_LEN: usize = 64;

/// What became of the last `tear`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TearStatus {
    Armed(FaultPlan),
    /// Power was cut: the host got no answer.
    Cut(FaultPlan),
    /// The next command made fewer writes than `at_write`; it answered normally.
    NotReached {
        plan: FaultPlan,
        writes: u32,
    },
}

/// A card as `serve` serves it: the card, its trace, its armed power cut.
pub struct ServedCard {
    card: Card,
    trace: Option<TraceWriter>,
    tear: Option<TearStatus>,
}

impl ServedCard {
    pub fn new(card: Card) -> Self {
        Self {
            card,
            trace: None,
            tear: None,
        }
    }

    /// Writes `event` to the trace; a trace that cannot be written is ended, not the card.
    fn record(&mut self, event: &Event) {
        if let Some(writer) = &mut self.trace {
            if let Err(error) = writer.event(event) {
                warn!(%error, file = %writer.path().display(), "cannot write the trace; tracing stopped");
                self.trace = None;
            }
        }
    }
}

impl VirtualCard for ServedCard {
    fn atr(&self) -> Vec<u8> {
        self.card.atr().to_vec()
    }

    fn power_on(&mut self) {
        if !self.card.is_powered() {
            self.card.power_on();
            self.record(&Event::PowerOn);
        }
    }

    fn power_off(&mut self) {
        if self.card.is_powered() {
            self.card.power_off();
            self.record(&Event::PowerOff);
        }
    }

    fn reset(&mut self) {
        self.card.reset();
        self.record(&Event::Reset);
    }

    fn transmit(&mut self, command: &[u8]) -> Vec<u8> {
        let sensitive = self.card.is_sensitive(command);
        let response = VirtualCard::transmit(&mut self.card, command);
        if let Some(TearStatus::Armed(plan)) = self.tear {
            self.tear = Some(if response.is_empty() {
                TearStatus::Cut(plan)
            } else {
                TearStatus::NotReached {
                    plan,
                    writes: self.card.writes_last_command(),
                }
            });
        }
        if let Some(writer) = &mut self.trace {
            let answer = (!response.is_empty()).then_some(&response[..]);
            if let Err(error) = writer.exchange(command, sensitive, answer) {
                warn!(%error, file = %writer.path().display(), "cannot write the trace; tracing stopped");
                self.trace = None;
            }
        }
        response
    }

    fn is_sensitive(&self, command: &[u8]) -> bool {
        self.card.is_sensitive(command)
    }
}

/// One slot of `serve`.
pub struct Slot {
    pub path: PathBuf,
    pub vpcd: String,
    pub card: Arc<Mutex<ServedCard>>,
    pub handle: SlotHandle,
    snapshots: BTreeMap<String, CardSnapshot>,
}

impl Slot {
    pub fn new(
        path: PathBuf,
        vpcd: String,
        card: Arc<Mutex<ServedCard>>,
        handle: SlotHandle,
    ) -> Self {
        Self {
            path,
            vpcd,
            card,
            handle,
            snapshots: BTreeMap::new(),
        }
    }

    fn lock_card(&self) -> MutexGuard<'_, ServedCard> {
        // Card methods do not panic by contract; a poisoned card keeps serving as it was left.
        self.card.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Every slot of one `serve`, and the request handler.
pub struct Served {
    slots: Vec<Mutex<Slot>>,
    durability: Durability,
    /// Serializes inserts of new card files, the only requests that look at several slots.
    inserting: Mutex<()>,
    /// Set at shutdown: requests are refused from then on.
    closing: AtomicBool,
}

impl Served {
    pub fn new(slots: Vec<Slot>, durability: Durability) -> Self {
        Self {
            slots: slots.into_iter().map(Mutex::new).collect(),
            durability,
            inserting: Mutex::new(()),
            closing: AtomicBool::new(false),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Runs `f` on slot `index`.
    pub fn with_slot<T>(&self, index: usize, f: impl FnOnce(&mut Slot) -> T) -> Option<T> {
        let slot = self.slots.get(index)?;
        let mut guard = slot.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut guard))
    }

    /// Takes every card out (pcscd sees the removals) and ends traces cleanly; control requests are
    /// refused from then on. Returns each slot's card and vpcd address.
    pub fn shut_down(&self) -> Vec<(PathBuf, String)> {
        self.closing.store(true, Ordering::SeqCst);
        (0..self.slots.len())
            .filter_map(|i| {
                self.with_slot(i, |slot| {
                    if let Some(writer) = slot.lock_card().trace.take() {
                        let _ = writer.finish();
                    }
                    slot.handle.eject();
                    (slot.path.clone(), slot.vpcd.clone())
                })
            })
            .collect()
    }

    /// Answers one control request.
    pub fn handle(&self, request: Request) -> Response {
        if self.closing.load(Ordering::SeqCst) {
            return Response::refused("serve is shutting down");
        }
        match request {
            Request::List => Response::slots(
                (0..self.slots.len())
                    .filter_map(|i| self.with_slot(i, |slot| info(i, slot)))
                    .collect(),
            ),
            Request::Remove { slot } => self.on(slot, remove),
            Request::Insert { slot, card } => {
                let _one_at_a_time = self
                    .inserting
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if let Some(path) = &card {
                    if let Some(other) = self.slot_serving(path, slot) {
                        return Response::refused(format!(
                            "{} is already served in slot {other}: one card image, one slot",
                            path.display()
                        ));
                    }
                }
                self.on(slot, |i, s| self.insert(i, s, card))
            }
            Request::Reset { slot } => self.on(slot, reset),
            Request::Tear {
                slot,
                at_write,
                torn,
            } => self.on(slot, |i, s| tear(i, s, at_write, torn)),
            Request::Snapshot { slot, name } => self.on(slot, |i, s| snapshot(i, s, &name)),
            Request::Restore { slot, name } => self.on(slot, |i, s| restore(i, s, &name)),
            Request::Clock { slot, set } => self.on(slot, |i, s| clock(i, s, set.as_deref())),
            Request::TraceStart { slot, file } => self.on(slot, |i, s| trace_start(i, s, &file)),
            Request::TraceStop { slot } => self.on(slot, trace_stop),
        }
    }

    fn on(&self, index: usize, f: impl FnOnce(usize, &mut Slot) -> Response) -> Response {
        let count = self.slots.len();
        self.with_slot(index, |slot| f(index, slot))
            .unwrap_or_else(|| {
                Response::refused(format!(
                    "slot {index} does not exist: this serve has slots 0 to {}",
                    count.saturating_sub(1)
                ))
            })
    }

    fn insert(&self, index: usize, slot: &mut Slot, card: Option<PathBuf>) -> Response {
        let Some(path) = card else {
            if slot.handle.is_inserted() {
                return Response::refused(format!(
                    "slot {index} already holds {}; remove it first",
                    slot.path.display()
                ));
            }
            slot.handle.insert(None);
            return Response::done(format!(
                "slot {index}: {} inserted again",
                slot.path.display()
            ));
        };
        if !path.is_absolute() {
            return Response::refused(format!(
                "card path {} is relative: give an absolute path (serve's working directory is not the client's)",
                path.display()
            ));
        }
        let card = match cards::open(&path, self.durability) {
            Ok(card) => card,
            Err(error) => return Response::refused(format!("{error:#}")),
        };
        slot.handle.eject();
        let ended = {
            let mut served = slot.lock_card();
            let ended = served.trace.take().map(TraceWriter::finish);
            *served = ServedCard::new(card);
            ended
        };
        slot.snapshots.clear();
        slot.path = path;
        slot.handle.insert(None);
        let note = if ended.is_some() {
            " (its trace ended: a trace follows one card)"
        } else {
            ""
        };
        Response::done(format!(
            "slot {index}: {} inserted{note}",
            slot.path.display()
        ))
    }

    /// Which other slot serves the card image at `path`, if any.
    fn slot_serving(&self, path: &Path, except: usize) -> Option<usize> {
        let wanted = path.canonicalize().ok()?;
        (0..self.slots.len()).filter(|&i| i != except).find(|&i| {
            self.with_slot(i, |slot| slot.path.canonicalize().ok())
                .flatten()
                .is_some_and(|p| p == wanted)
        })
    }
}

fn info(index: usize, slot: &Slot) -> SlotInfo {
    let served = slot.lock_card();
    let tear = served.tear.map(|status| match status {
        TearStatus::Armed(plan) => format!("armed at write {}{}", plan.at_write, torn_text(plan)),
        TearStatus::Cut(plan) => format!(
            "power cut at write {}{} of the last command",
            plan.at_write,
            torn_text(plan)
        ),
        TearStatus::NotReached { plan, writes } => format!(
            "not reached: the next command made {writes} write(s), fewer than {}",
            plan.at_write
        ),
    });
    SlotInfo {
        slot: index,
        card: slot.path.clone(),
        vpcd: slot.vpcd.clone(),
        inserted: slot.handle.is_inserted(),
        connected: matches!(slot.handle.state(), SlotState::Connected { .. }),
        powered: served.card.is_powered(),
        clock: match served.card.clock() {
            Clock::System => "system".to_owned(),
            Clock::Fixed(seconds) => trace::rfc3339(seconds),
        },
        tracing: served.trace.as_ref().map(|t| t.path().to_owned()),
        snapshots: slot.snapshots.keys().cloned().collect(),
        tear,
    }
}

fn torn_text(plan: FaultPlan) -> &'static str {
    if plan.torn {
        " (torn)"
    } else {
        ""
    }
}

fn remove(index: usize, slot: &mut Slot) -> Response {
    if !slot.handle.is_inserted() {
        return Response::refused(format!("slot {index} is already empty"));
    }
    slot.handle.eject();
    Response::done(format!("slot {index}: {} removed", slot.path.display()))
}

fn reset(index: usize, slot: &mut Slot) -> Response {
    if !slot.handle.is_inserted() {
        return Response::refused(format!(
            "slot {index} is empty: insert the card before resetting it"
        ));
    }
    VirtualCard::reset(&mut *slot.lock_card());
    Response::done(format!("slot {index}: card reset (volatile state cleared)"))
}

fn tear(index: usize, slot: &mut Slot, at_write: u32, torn: bool) -> Response {
    if at_write == 0 {
        return Response::refused("at_write counts persistent writes from 1");
    }
    let plan = FaultPlan { at_write, torn };
    let mut served = slot.lock_card();
    served.card.arm_power_cut(plan);
    served.tear = Some(TearStatus::Armed(plan));
    served.record(&Event::Tear { at_write, torn });
    Response::done(format!(
        "slot {index}: power will be cut at write {at_write}{} of the next command",
        torn_text(plan)
    ))
}

fn valid_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!(
            "snapshot name {name:?} must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.'"
        ));
    }
    Ok(())
}

fn snapshot(index: usize, slot: &mut Slot, name: &str) -> Response {
    if let Err(error) = valid_name(name) {
        return Response::refused(error);
    }
    let copy = {
        let mut served = slot.lock_card();
        served.record(&Event::Snapshot(name.to_owned()));
        served.card.snapshot()
    };
    let replaced = slot.snapshots.insert(name.to_owned(), copy).is_some();
    Response::done(format!(
        "slot {index}: snapshot {name:?} {}",
        if replaced { "replaced" } else { "taken" }
    ))
}

fn restore(index: usize, slot: &mut Slot, name: &str) -> Response {
    let Some(copy) = slot.snapshots.get(name) else {
        let known: Vec<&str> = slot.snapshots.keys().map(String::as_str).collect();
        return Response::refused(format!(
            "slot {index} has no snapshot {name:?} (it has: {})",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ));
    };
    let mut served = slot.lock_card();
    match served.card.restore(copy) {
        Ok(()) => {
            served.record(&Event::Restore(name.to_owned()));
            Response::done(format!(
                "slot {index}: snapshot {name:?} restored (the card was power-cycled into it)"
            ))
        }
        Err(error) => Response::refused(format!(
            "slot {index}: snapshot {name:?} could not be saved to the card image: {error}"
        )),
    }
}

fn clock(index: usize, slot: &mut Slot, set: Option<&str>) -> Response {
    let clock = match set {
        None => Clock::System,
        Some(text) => match trace::parse_rfc3339(text) {
            Ok(seconds) => Clock::Fixed(seconds),
            Err(error) => return Response::refused(error),
        },
    };
    let mut served = slot.lock_card();
    if let Err(error) = served.card.set_clock(clock) {
        return Response::refused(format!(
            "slot {index}: the clock could not be saved: {error}"
        ));
    }
    served.record(&Event::Clock(clock));
    Response::done(format!("slot {index}: clock {}", trace::clock_text(clock)))
}

fn trace_start(index: usize, slot: &mut Slot, file: &Path) -> Response {
    if !file.is_absolute() {
        return Response::refused(format!(
            "trace file {} is relative: give an absolute path (serve's working directory is not the client's)",
            file.display()
        ));
    }
    let mut served = slot.lock_card();
    if let Some(writer) = &served.trace {
        return Response::refused(format!(
            "slot {index} is already tracing into {}; stop that trace first",
            writer.path().display()
        ));
    }
    // A trace starts from the state replay starts from: a card just powered up (or off). A host's
    // selection or verified PIN from before the trace would not be in it.
    let powered = served.card.is_powered();
    if powered {
        served.card.reset();
    }
    let header = Header {
        atr: served.card.atr().to_vec(),
        random: served.card.random_state(),
        clock: served.card.clock(),
        powered,
    };
    match TraceWriter::create(file, &header) {
        Ok(writer) => {
            served.trace = Some(writer);
            let note = if header.random.is_none() {
                " (this card draws random numbers from the OS, so replay cannot reproduce it: make cards for golden traces with `card new --seed N`)"
            } else {
                ""
            };
            Response::done(format!(
                "slot {index}: tracing into {}{note}",
                file.display()
            ))
        }
        Err(error) => Response::refused(format!(
            "cannot create trace file {}: {error}",
            file.display()
        )),
    }
}

fn trace_stop(index: usize, slot: &mut Slot) -> Response {
    let Some(writer) = slot.lock_card().trace.take() else {
        return Response::refused(format!("slot {index} is not tracing"));
    };
    let path = writer.path().to_owned();
    match writer.finish() {
        Ok(commands) => Response::done(format!(
            "slot {index}: trace {} closed, {commands} command(s)",
            path.display()
        )),
        Err(error) => Response::refused(format!(
            "slot {index}: trace {} could not be completed: {error}",
            path.display()
        )),
    }
}
