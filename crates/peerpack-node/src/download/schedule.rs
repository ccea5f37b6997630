//! The piece scheduler of a download, without any I/O: it decides which piece to ask of which
//! provider, and what every answer means for the pieces and the providers.
//!
//! [`Scheduler`] knows neither the network nor the disk nor the clock. The download loop
//! ([`super`]) tells it what happened, naming each request by the [`Ticket`] it was handed out
//! with, and the current time where time matters:
//!
//! - [`Scheduler::next_requests`]: what to send now, at most [`WINDOW`] requests outstanding
//!   per provider and [`MAX_IN_FLIGHT`] per download (pieces being verified count too), the free
//!   slot of the best-scoring provider first. When nothing is queued, a piece in flight at
//!   exactly one other provider is asked of the provider with the free slot too (end game).
//! - [`Scheduler::arrived`], then [`Scheduler::verified`]: a piece's bytes came, then were
//!   checked against the outline. The provider's slot frees on arrival; the piece stays
//!   claimed until its check ends. The first good copy wins; a bad one drops the provider.
//! - [`Scheduler::failed`] (a request failed, was refused, or the provider does not hold the
//!   archive) and [`Scheduler::expire`] (a request unanswered for [`STALL`]): a [`Fault`] that
//!   drops the provider at once, or after [`MAX_FAILURES`]. The piece goes back to the front of
//!   the queue. [`Scheduler::fault`] counts a fault outside any request (the outline request).
//! - [`Scheduler::status`]: running, complete, or stopped because every provider is dropped
//!   and nothing is in flight any more, with the pieces still missing.
//!
//! A dropped provider's other requests stay outstanding until they end; what they bring is
//! discarded and their pieces are queued again. Every answer about a fault says whether it
//! counted against the provider ([`Strike`]), so that the caller applies the reputation
//! penalty exactly once per counted fault.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Pieces in flight per provider.
pub const WINDOW: usize = 8;
/// Pieces in flight per download.
pub const MAX_IN_FLIGHT: usize = 32;
/// A request unanswered this long counts as a failure.
pub const STALL: Duration = Duration::from_secs(20);
/// Failures after which a provider is dropped for the download.
pub const MAX_FAILURES: u32 = 3;

/// The reason given for a request unanswered for [`STALL`].
pub fn no_answer() -> String {
    format!("no answer within {} s", STALL.as_secs())
}

/// Names a request from the moment [`Scheduler::next_requests`] hands it out until its piece
/// is settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ticket(u64);

/// One piece to ask of one provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Names the request in the events about it.
    pub ticket: Ticket,
    /// The provider, by its index in the providers the scheduler was given (best first).
    pub provider: usize,
    /// The piece.
    pub piece: u64,
}

/// What a provider did wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Verifiably wrong data (another range, an answer of the wrong kind): dropped at once.
    Bad(&'static str),
    /// The provider does not hold the archive (any more): dropped at once.
    Gone,
    /// A refusal, a network error or a stall: dropped after [`MAX_FAILURES`].
    Failed(String),
}

/// What a fault did to the provider's standing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strike {
    /// Nothing: the provider was dropped already, or the request was settled already (a late
    /// answer to a request that stalled). No penalty is due.
    Ignored,
    /// Counted against the provider, which stays.
    Counted,
    /// Counted, and the provider is dropped from this download for the reason given.
    Dropped(String),
}

/// What to do with a piece's bytes that arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Check them, then report with [`Scheduler::verified`].
    Verify,
    /// Throw them away: the piece is had already, the provider was dropped, or the request
    /// was settled already.
    Discard,
}

/// What a piece's check meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A good copy, the first: the piece is done.
    New,
    /// A good copy of a piece done already (end game): nothing changes.
    Duplicate,
    /// The bytes do not match the outline: the provider is dropped and the piece queued again.
    Bad,
    /// A ticket that was not waiting for a check: nothing changes.
    Unknown,
}

/// A request [`Scheduler::expire`] gave up on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    /// The request.
    pub request: Request,
    /// What the stall did to its provider.
    pub strike: Strike,
}

/// Where a download stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Pieces are missing and there is a provider to ask, or a request to wait for.
    Running,
    /// Every piece is verified.
    Complete,
    /// Pieces are missing, every provider is dropped and nothing is in flight.
    Stopped {
        /// The missing pieces, in order.
        missing: Vec<u64>,
    },
}

/// The reason a provider that served a bad piece is dropped with.
pub const BAD_PIECE: &str = "served bytes that do not match the content id";
/// The reason a provider that does not hold the archive is dropped with.
pub const GONE: &str = "does not hold the archive";

#[derive(Debug, Default)]
struct Provider {
    /// Requests outstanding (asked, not answered).
    in_flight: usize,
    failures: u32,
    dropped: Option<String>,
}

#[derive(Debug)]
enum Phase {
    /// Asked at this time, not answered yet.
    Asked(Instant),
    /// The bytes arrived and are being checked.
    Verifying,
}

#[derive(Debug)]
struct Outstanding {
    provider: usize,
    piece: u64,
    phase: Phase,
}

/// The scheduler of one download; see the [module documentation](self).
#[derive(Debug)]
pub struct Scheduler {
    have: Vec<bool>,
    done: u64,
    /// Pieces to hand out, front first.
    queue: VecDeque<u64>,
    /// Per piece: requests outstanding plus copies being checked.
    pending: Vec<u32>,
    /// Per piece: the providers it is asked of right now.
    holders: HashMap<u64, Vec<usize>>,
    providers: Vec<Provider>,
    /// Everything in flight: asked or being checked.
    requests: BTreeMap<Ticket, Outstanding>,
    next_ticket: u64,
}

impl Scheduler {
    /// A download of `pieces` pieces, none of them had yet, from `providers` providers, known
    /// from here on by their index (0 the best-scoring).
    pub fn new(pieces: u64, providers: usize) -> Self {
        Self {
            have: vec![false; pieces as usize],
            done: 0,
            queue: (0..pieces).collect(),
            pending: vec![0; pieces as usize],
            holders: HashMap::new(),
            providers: (0..providers).map(|_| Provider::default()).collect(),
            requests: BTreeMap::new(),
            next_ticket: 0,
        }
    }

    /// Mark the pieces a partial file from an earlier attempt holds verified (`true` at their
    /// index): they are never requested.
    pub fn resume(&mut self, verified: &[bool]) {
        for (piece, ok) in verified.iter().enumerate() {
            if *ok && piece < self.have.len() && !self.have[piece] {
                self.have[piece] = true;
                self.done += 1;
            }
        }
        let have = &self.have;
        self.queue.retain(|p| !have[*p as usize]);
    }

    /// Hand out work at `now`: while fewer than [`MAX_IN_FLIGHT`] pieces are in flight, the
    /// best provider with fewer than [`WINDOW`] requests outstanding takes the front of the
    /// queue or, when it is empty, the end-game piece for that provider. Stops at the first
    /// provider there is nothing to give.
    pub fn next_requests(&mut self, now: Instant) -> Vec<Request> {
        let mut out = Vec::new();
        while self.requests.len() < MAX_IN_FLIGHT {
            let Some(provider) = self
                .providers
                .iter()
                .position(|p| p.dropped.is_none() && p.in_flight < WINDOW)
            else {
                break;
            };
            let piece = match self.queue.pop_front() {
                Some(p) => p,
                None => match self.end_game_piece(provider) {
                    Some(p) => p,
                    None => break,
                },
            };
            let ticket = Ticket(self.next_ticket);
            self.next_ticket += 1;
            self.providers[provider].in_flight += 1;
            self.pending[piece as usize] += 1;
            self.holders.entry(piece).or_default().push(provider);
            self.requests.insert(
                ticket,
                Outstanding {
                    provider,
                    piece,
                    phase: Phase::Asked(now),
                },
            );
            out.push(Request {
                ticket,
                provider,
                piece,
            });
        }
        out
    }

    /// The bytes asked for with `ticket` arrived (the right range of the right size): whether
    /// to check them. The provider's slot is free again either way.
    pub fn arrived(&mut self, ticket: Ticket) -> Arrival {
        let Some(req) = self.answered(ticket) else {
            return Arrival::Discard;
        };
        if self.providers[req.provider].dropped.is_some() || self.have[req.piece as usize] {
            // Late or duplicate: not needed.
            self.settle(ticket);
            return Arrival::Discard;
        }
        if let Some(r) = self.requests.get_mut(&ticket) {
            r.phase = Phase::Verifying;
        }
        Arrival::Verify
    }

    /// The check of the bytes that arrived for `ticket` ended: `good` when they match the
    /// outline (and were written).
    pub fn verified(&mut self, ticket: Ticket, good: bool) -> Verdict {
        let Some(req) = self.requests.get(&ticket) else {
            return Verdict::Unknown;
        };
        if !matches!(req.phase, Phase::Verifying) {
            return Verdict::Unknown;
        }
        let (provider, piece) = (req.provider, req.piece);
        if !good {
            self.settle(ticket);
            self.providers[provider].dropped = Some(BAD_PIECE.into());
            return Verdict::Bad;
        }
        let verdict = if self.have[piece as usize] {
            Verdict::Duplicate
        } else {
            self.have[piece as usize] = true;
            self.done += 1;
            Verdict::New
        };
        // Had now: settling does not queue it again.
        self.settle(ticket);
        verdict
    }

    /// The request `ticket` ended without the piece. Its piece is queued again; the fault
    /// counts against the provider unless it was dropped already.
    pub fn failed(&mut self, ticket: Ticket, fault: Fault) -> Strike {
        let Some(req) = self.answered(ticket) else {
            return Strike::Ignored;
        };
        self.settle(ticket);
        if self.providers[req.provider].dropped.is_some() {
            return Strike::Ignored;
        }
        self.fault(req.provider, fault)
    }

    /// Count `fault` against `provider` outside any piece request (its outline request).
    pub fn fault(&mut self, provider: usize, fault: Fault) -> Strike {
        let Some(p) = self.providers.get_mut(provider) else {
            return Strike::Ignored;
        };
        if p.dropped.is_some() {
            return Strike::Ignored;
        }
        let dropped = match fault {
            Fault::Bad(what) => what.to_owned(),
            Fault::Gone => GONE.to_owned(),
            Fault::Failed(reason) => {
                p.failures += 1;
                if p.failures < MAX_FAILURES {
                    return Strike::Counted;
                }
                reason
            }
        };
        p.dropped = Some(dropped.clone());
        Strike::Dropped(dropped)
    }

    /// Give up at `now` on every request asked [`STALL`] or longer ago, oldest first: each is a
    /// [`Fault::Failed`] with the reason [`no_answer`]. A later answer to one is ignored.
    pub fn expire(&mut self, now: Instant) -> Vec<Stalled> {
        let late: Vec<Ticket> = self
            .requests
            .iter()
            .filter(|(_, r)| {
                matches!(r.phase, Phase::Asked(at) if now.saturating_duration_since(at) >= STALL)
            })
            .map(|(t, _)| *t)
            .collect();
        late.into_iter()
            .filter_map(|ticket| {
                let r = self.requests.get(&ticket)?;
                let request = Request {
                    ticket,
                    provider: r.provider,
                    piece: r.piece,
                };
                let strike = self.failed(ticket, Fault::Failed(no_answer()));
                Some(Stalled { request, strike })
            })
            .collect()
    }

    /// When the oldest unanswered request stalls, if any is unanswered.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.requests
            .values()
            .filter_map(|r| match r.phase {
                Phase::Asked(at) => Some(at + STALL),
                Phase::Verifying => None,
            })
            .min()
    }

    /// Where the download stands.
    pub fn status(&self) -> Status {
        if self.done == self.have.len() as u64 {
            Status::Complete
        } else if self.requests.is_empty() && self.providers.iter().all(|p| p.dropped.is_some()) {
            Status::Stopped {
                missing: self.missing(),
            }
        } else {
            Status::Running
        }
    }

    /// The pieces not verified yet, in order.
    pub fn missing(&self) -> Vec<u64> {
        (0..self.have.len() as u64)
            .filter(|p| !self.have[*p as usize])
            .collect()
    }

    /// Whether `piece` is verified.
    pub fn has(&self, piece: u64) -> bool {
        self.have.get(piece as usize).copied().unwrap_or(false)
    }

    /// Why `provider` was dropped, if it was.
    pub fn drop_reason(&self, provider: usize) -> Option<&str> {
        self.providers.get(provider)?.dropped.as_deref()
    }

    /// Pieces in flight: asked, or arrived and being checked.
    pub fn in_flight(&self) -> usize {
        self.requests.len()
    }

    /// The request `ticket` was answered: its provider's slot frees and it no longer holds
    /// the piece. `None` when the ticket is not an unanswered request.
    fn answered(&mut self, ticket: Ticket) -> Option<Request> {
        let r = self.requests.get(&ticket)?;
        if !matches!(r.phase, Phase::Asked(_)) {
            return None;
        }
        let (provider, piece) = (r.provider, r.piece);
        self.providers[provider].in_flight -= 1;
        if let Some(h) = self.holders.get_mut(&piece) {
            h.retain(|s| *s != provider);
        }
        Some(Request {
            ticket,
            provider,
            piece,
        })
    }

    /// `ticket` is done with: it no longer claims its piece, which is queued again (at the
    /// front) when nothing else claims it and it is still missing.
    fn settle(&mut self, ticket: Ticket) {
        let Some(r) = self.requests.remove(&ticket) else {
            return;
        };
        let piece = r.piece;
        self.pending[piece as usize] -= 1;
        if !self.have[piece as usize]
            && self.pending[piece as usize] == 0
            && !self.queue.contains(&piece)
        {
            self.queue.push_front(piece);
        }
    }

    /// In the end game, the lowest missing piece asked of exactly one provider, not `provider`.
    fn end_game_piece(&self, provider: usize) -> Option<u64> {
        self.holders
            .iter()
            .filter(|(p, h)| h.len() == 1 && h[0] != provider && !self.have[**p as usize])
            .map(|(p, _)| *p)
            .min()
    }
}

#[cfg(test)]
mod tests;
