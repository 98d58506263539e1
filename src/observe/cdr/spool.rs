//! The writer's in-memory spool: events accepted from the queue and not yet committed, in
//! arrival order, bounded in rows (`cdr.spool_rows`).
//!
//! What a "row" is here: one call's CDR row, i.e. one event id. A call sends a few events
//! for its row (start, route per attempt, answer, end), and they must reach SQLite in that
//! order. So:
//! - an event whose row already has events in the spool always joins them, even when the
//!   spool is full: the end of a spooled start is never lost (the spool holds at most
//!   `limit` rows, and a handful of events per row);
//! - an event of a row not in the spool takes a new row slot. With none left, the row is
//!   lost: counted once, and its later events are discarded up to its end (applying an
//!   answer or end to a row whose earlier events were lost would write a wrong row);
//! - a row whose start was committed before the outage and whose later events do not fit
//!   counts as lost as well: it stays open in the table (crash recovery closes it with
//!   `end_reason` `error` at the next start).
//!
//! Global FIFO order implies per-row order: batches are always taken from the front.

use std::collections::{HashMap, HashSet, VecDeque};

use super::{CdrEvent, event_id};

/// Ids of lost rows remembered until their end (about 100 bytes each): far more than the
/// calls a single instance has in progress.
const MAX_LOST_IDS: usize = 100_000;

/// What [`Spool::admit`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Queued for writing.
    Kept,
    /// Discarded; `new_loss` is true for the first event of a row being lost (count it).
    Lost { new_loss: bool },
}

pub(super) struct Spool {
    events: VecDeque<CdrEvent>,
    /// Events in `events` per row id.
    rows: HashMap<String, u32>,
    /// Rows lost to overflow whose end has not arrived yet: their events are discarded.
    lost: HashSet<String>,
    limit: usize,
    lost_cap: usize,
}

impl Spool {
    /// A spool holding the events of at most `limit` rows (at least 1).
    pub(super) fn new(limit: usize) -> Spool {
        Spool {
            events: VecDeque::new(),
            rows: HashMap::new(),
            lost: HashSet::new(),
            limit: limit.max(1),
            lost_cap: MAX_LOST_IDS,
        }
    }

    pub(super) fn admit(&mut self, ev: CdrEvent) -> Admit {
        let id = event_id(&ev);
        let is_end = matches!(ev, CdrEvent::End { .. });
        if let Some(n) = self.rows.get_mut(id) {
            *n += 1;
        } else if self.lost.contains(id) {
            if is_end {
                self.lost.remove(id);
            }
            return Admit::Lost { new_loss: false };
        } else if self.rows.len() < self.limit {
            self.rows.insert(id.to_string(), 1);
        } else {
            self.remember_lost(id, is_end);
            return Admit::Lost { new_loss: true };
        }
        self.events.push_back(ev);
        Admit::Kept
    }

    /// Ends of lost rows empty `lost`; should some never come (a call that vanished), the
    /// set is reset rather than grown without bound (a stray later event is then written:
    /// an UPDATE of a row that is lost anyway).
    fn remember_lost(&mut self, id: &str, is_end: bool) {
        if is_end {
            return;
        }
        if self.lost.len() >= self.lost_cap {
            self.lost.clear();
        }
        self.lost.insert(id.to_string());
    }

    /// The oldest `max` events (fewer if the spool holds fewer), in order.
    pub(super) fn front(&mut self, max: usize) -> &[CdrEvent] {
        let n = max.min(self.events.len());
        &self.events.make_contiguous()[..n]
    }

    /// Forgets the oldest `n` events (they were committed).
    pub(super) fn pop(&mut self, n: usize) {
        for ev in self.events.drain(..n.min(self.events.len())) {
            let id = event_id(&ev);
            if let Some(left) = self.rows.get_mut(id) {
                *left -= 1;
                if *left == 0 {
                    self.rows.remove(id);
                }
            }
        }
    }

    /// Empties the spool (shutdown gave up on the disk); returns (events, rows) discarded.
    pub(super) fn abandon(&mut self) -> (usize, usize) {
        let out = (self.events.len(), self.rows.len());
        self.events.clear();
        self.rows.clear();
        self.lost.clear();
        out
    }

    pub(super) fn len(&self) -> usize {
        self.events.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    pub(super) fn rows(&self) -> usize {
        self.rows.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn start(id: &str) -> CdrEvent {
        CdrEvent::Start {
            id: id.into(),
            a_call_id: id.into(),
            source_peer: "pbx".into(),
            from_user: "a".into(),
            to_user: "b".into(),
            started_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn answer(id: &str) -> CdrEvent {
        CdrEvent::Answer {
            id: id.into(),
            answered_at: SystemTime::UNIX_EPOCH,
        }
    }

    fn end(id: &str) -> CdrEvent {
        CdrEvent::End {
            id: id.into(),
            ended_at: SystemTime::UNIX_EPOCH,
            final_code: 200,
            end_reason: "caller_bye".into(),
            a_packets: 0,
            b_packets: 0,
            quality: Default::default(),
        }
    }

    const KEPT: Admit = Admit::Kept;
    const NEW_LOSS: Admit = Admit::Lost { new_loss: true };
    const LOST_AGAIN: Admit = Admit::Lost { new_loss: false };

    #[test]
    fn a_full_spool_still_takes_the_end_of_a_spooled_row() {
        let mut s = Spool::new(2);
        assert_eq!(s.admit(start("a")), KEPT);
        assert_eq!(s.admit(start("b")), KEPT);
        assert_eq!(s.admit(start("c")), NEW_LOSS, "a third row does not fit");
        assert_eq!(s.admit(answer("a")), KEPT);
        assert_eq!(s.admit(end("a")), KEPT);
        assert_eq!((s.len(), s.rows()), (4, 2));
        let ids: Vec<&str> = s.front(10).iter().map(event_id).collect();
        assert_eq!(ids, ["a", "b", "a", "a"], "arrival order kept");
    }

    #[test]
    fn a_lost_row_is_counted_once_and_its_later_events_discarded_until_its_end() {
        let mut s = Spool::new(1);
        assert_eq!(s.admit(start("a")), KEPT);
        assert_eq!(s.admit(start("b")), NEW_LOSS);
        s.pop(1);
        assert!(s.is_empty());
        // Room again, but b's start is gone: its answer and end must not make a row.
        assert_eq!(s.admit(answer("b")), LOST_AGAIN);
        assert_eq!(s.admit(end("b")), LOST_AGAIN);
        assert!(s.is_empty());
        // After its end, the id is forgotten (a new row of that id would be kept).
        assert_eq!(s.admit(start("b")), KEPT);
    }

    #[test]
    fn an_end_that_does_not_fit_is_counted_and_not_remembered() {
        let mut s = Spool::new(1);
        assert_eq!(s.admit(start("a")), KEPT);
        assert_eq!(s.admit(end("old")), NEW_LOSS);
        assert!(s.lost.is_empty(), "nothing of `old` can follow its end");
    }

    #[test]
    fn pop_frees_row_slots_when_a_rows_last_event_is_committed() {
        let mut s = Spool::new(1);
        s.admit(start("a"));
        s.admit(end("a"));
        s.pop(1);
        assert_eq!(s.rows(), 1, "a's end is still spooled");
        assert_eq!(s.admit(start("b")), NEW_LOSS);
        s.pop(1);
        assert_eq!(s.rows(), 0);
        assert_eq!(s.admit(start("c")), KEPT);
    }

    #[test]
    fn the_lost_set_stays_bounded() {
        let mut s = Spool::new(2);
        s.lost_cap = 5;
        s.admit(start("a"));
        s.admit(start("b"));
        for i in 0..100 {
            assert_eq!(s.admit(start(&format!("x{i}"))), NEW_LOSS);
        }
        assert!(s.lost.len() <= 5, "{}", s.lost.len());
    }

    #[test]
    fn abandon_reports_what_was_discarded() {
        let mut s = Spool::new(10);
        s.admit(start("a"));
        s.admit(end("a"));
        s.admit(start("b"));
        assert_eq!(s.abandon(), (3, 2));
        assert!(s.is_empty());
        assert_eq!(s.rows(), 0);
    }
}
