//! The invariants checked after every step and at the end of every input.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

use veil::b2bua::leak_guard::LegIds;
use veil::media::{MediaCommand, StreamId};
use veil::sip::{HeaderName, Message, Request, Response, SipHeaders};

/// Set to skip the check that a 2xx to an INVITE with an SDP offer carries an answer
/// (a known gap while leg B's unusable answers are not yet refused).
pub const ALLOW_ANSWERLESS_2XX: &str = "ENGINE_CALL_ALLOW_ANSWERLESS_2XX";

#[derive(Default)]
pub struct Checks {
    /// INVITEs the parties sent, by (source, Call-ID, CSeq): whether every one carried
    /// an SDP offer.
    offers: HashMap<(SocketAddr, String, u32), bool>,
    /// INVITEs veil answered with SDP in a reliable provisional (RSeq, RFC 3262), by
    /// (recipient, Call-ID, CSeq): their 2xx need not repeat the answer (RFC 3264 §5).
    answered_early: HashSet<(SocketAddr, String, u32)>,
    /// Media streams opened and not yet closed.
    open: HashSet<StreamId>,
    /// What the fuzzer wrote itself (header values, SDP lines, bodies, raw messages),
    /// lowercased: an identifier in there may legitimately come back on the other leg,
    /// where the leak guard removes it and counts a hit.
    free: Vec<String>,
    /// Identifiers the leak guard held or the parties' messages carried, lowercased.
    ids: HashSet<String>,
    hits: u64,
    pub allow_answerless_2xx: bool,
}

impl Checks {
    /// `hits`: the leak guard's counter before the input.
    pub fn new(hits: u64) -> Checks {
        Checks {
            hits,
            ..Checks::default()
        }
    }

    pub fn free_text(&mut self, s: &str) {
        if s.len() >= 4 {
            self.free.push(s.to_ascii_lowercase());
        }
    }

    pub fn has_free_text(&self) -> bool {
        !self.free.is_empty()
    }

    /// A message a party (or the stranger) sent from `from`.
    pub fn sent_by_party(&mut self, from: SocketAddr, data: &[u8]) {
        let Ok(msg) = Message::parse(data) else {
            return;
        };
        if self.has_free_text() {
            let mut ids = LegIds::default();
            let (headers, body, request) = match &msg {
                Message::Request(r) => (&r.headers, &r.body, true),
                Message::Response(r) => (&r.headers, &r.body, false),
            };
            ids.observe(headers, body, request, &[]);
            self.known_ids(ids.values().map(str::to_string));
        }
        if let Message::Request(r) = &msg
            && r.method.as_str() == "INVITE"
            && let (Ok(call_id), Ok(cseq)) = (r.call_id(), r.cseq())
        {
            let sdp = has_sdp(r);
            self.offers
                .entry((from, call_id.to_string(), cseq.seq))
                .and_modify(|all| *all &= sdp)
                .or_insert(sdp);
        }
    }

    pub fn known_ids(&mut self, ids: impl IntoIterator<Item = String>) {
        for id in ids {
            self.ids.insert(id.to_ascii_lowercase());
        }
    }

    /// A message veil sent to `to`.
    pub fn sent_by_veil(&mut self, to: SocketAddr, msg: &Message, text: &str) {
        let Message::Response(r) = msg else { return };
        let (Ok(call_id), Ok(cseq)) = (r.call_id(), r.cseq()) else {
            return;
        };
        if cseq.method.as_str() != "INVITE" {
            return;
        }
        let key = (to, call_id.to_string(), cseq.seq);
        if (101..200).contains(&r.code) && r.headers.get(&HeaderName::RSeq).is_some() {
            if answer_sdp(r) {
                self.answered_early.insert(key);
            }
            return;
        }
        if self.allow_answerless_2xx || !(200..300).contains(&r.code) {
            return;
        }
        let offered = self.offers.get(&key);
        assert!(
            offered != Some(&true) || answer_sdp(r) || self.answered_early.contains(&key),
            "2xx to an INVITE with an SDP offer, without an SDP answer, to {to}:\n{text}"
        );
    }

    pub fn media(&mut self, cmds: impl IntoIterator<Item = MediaCommand>) {
        for c in cmds {
            match c {
                MediaCommand::Open { id, .. } => {
                    assert!(self.open.insert(id), "stream {id:?} opened twice");
                }
                MediaCommand::Close { id } => {
                    assert!(self.open.remove(&id), "stream {id:?} closed but not open");
                }
                _ => {}
            }
        }
    }

    pub fn open_streams(&self) -> usize {
        self.open.len()
    }

    /// The leak guard's counter after a step: any new hit must be explained by an
    /// identifier the fuzzer wrote itself into a free-form value.
    pub fn leak_hits(&mut self, hits: u64, step: &dyn std::fmt::Debug) {
        if hits == self.hits {
            return;
        }
        let explained = self
            .ids
            .iter()
            .any(|id| self.free.iter().any(|f| f.contains(id.as_str())));
        assert!(
            explained,
            "leak guard hit ({} -> {hits}) without a planted identifier, at {step:?}",
            self.hits
        );
        self.hits = hits;
    }
}

fn has_sdp(r: &Request) -> bool {
    r.body.starts_with(b"v=0")
        && r.headers
            .get(&HeaderName::ContentType)
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
}

fn answer_sdp(r: &Response) -> bool {
    r.body.starts_with(b"v=0")
        && r.headers
            .get(&HeaderName::ContentType)
            .is_some_and(|t| t.to_ascii_lowercase().contains("application/sdp"))
}
