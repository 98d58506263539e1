//! What happens after an engine step panicked (issue 13): the shell catches the unwind
//! around each step ([`Engine::guarded`]), and the engine ends the one call the step
//! belonged to, so that a bug reachable from one peer's message costs that call, not the
//! process and every call on it.
//!
//! Which call: for a SIP message, the dialog its Call-ID and tags name (parsed again, on
//! this rare path only); for a timer or a transaction timeout, the key the step noted in
//! [`Engine::step`] before acting; for a media event, the stream's call. The call is ended
//! like any other (BYE both legs, CDR `end_reason` `error`); should that panic too, it is
//! forgotten without signalling, and should even that fail, its row is closed directly.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use super::call::EndReason;
use super::engine::Engine;
use super::{Input, Output};
use crate::media::MediaEvent;
use crate::observe::CdrEvent;
use crate::sip::{Message, Request, SipHeaders};
use crate::transaction::ServerTxId;

/// What the current step is working on, noted cheaply before acting (plain copies, no
/// allocation) so that a panic can be pinned to its call.
#[derive(Debug, Default, Clone, Copy)]
pub struct Step {
    /// The call of the timer or transaction event being handled.
    pub key: Option<u64>,
    /// The server transaction of the request being handled: it gets a 500.
    pub stx: Option<ServerTxId>,
}

/// The input of a step, kept by the caller of [`Engine::guarded`] for the recovery.
#[derive(Debug, Clone, Copy)]
pub enum StepInput<'a> {
    Sip(&'a [u8]),
    Media(Option<crate::media::StreamId>),
    Timeout,
}

impl<'a> StepInput<'a> {
    pub fn of(input: &Input<'a>) -> StepInput<'a> {
        match input {
            Input::Sip { data, .. } => StepInput::Sip(data),
            Input::Media(ev) => StepInput::Media(stream_of(ev)),
        }
    }
}

fn stream_of(ev: &MediaEvent) -> Option<crate::media::StreamId> {
    match ev {
        MediaEvent::BindFailed { id }
        | MediaEvent::Idle { id }
        | MediaEvent::Active { id }
        | MediaEvent::Stats { id, .. }
        | MediaEvent::Closed { id, .. } => Some(*id),
    }
}

/// The panic payload as text when it is a literal of veil's code; a formatted payload
/// may quote peer data (a slice of a header), so only its presence is told.
pub fn payload_text(p: &(dyn std::any::Any + Send)) -> &'static str {
    p.downcast_ref::<&'static str>()
        .copied()
        .unwrap_or("(formatted message withheld)")
}

impl Engine {
    /// Run one step of the engine, catching a panic: counted in
    /// `veil_engine_panics_total`, logged with the message's Call-ID (never its body),
    /// and the call the step belonged to ended. Returns whether the step panicked.
    pub fn guarded(
        &mut self,
        input: StepInput<'_>,
        now: Instant,
        step: impl FnOnce(&mut Engine),
    ) -> bool {
        self.step = Step::default();
        let Err(p) = catch_unwind(AssertUnwindSafe(|| step(self))) else {
            return false;
        };
        self.metrics.engine_panics.inc();
        // Parsed again on this rare path; a parser panic here is caught too.
        let msg = match input {
            StepInput::Sip(data) => catch_unwind(|| Message::parse(data).ok()).ok().flatten(),
            _ => None,
        };
        let call_id = msg.as_ref().and_then(|m| match m {
            Message::Request(r) => r.call_id().ok(),
            Message::Response(r) => r.call_id().ok(),
        });
        let key = self
            .step
            .key
            .or_else(|| self.panicked_call(input, msg.as_ref()));
        tracing::error!(
            call_id = call_id.unwrap_or("-"),
            call = key
                .and_then(|k| self.calls.get(&k))
                .map(|c| c.vref.as_str())
                .unwrap_or("-"),
            panic = payload_text(p.as_ref()),
            "engine step panicked: its call is ended, every other call goes on"
        );
        if let Some(stx) = self.step.stx.take()
            && let Some(Message::Request(req)) = &msg
        {
            let resp = super::admission::response(req, 500);
            let _ = catch_unwind(AssertUnwindSafe(|| self.reply(stx, resp, now)));
        }
        if let Some(key) = key {
            self.end_after_panic(key, now);
        }
        // What the step left queued in the transaction layer still goes out.
        let _ = catch_unwind(AssertUnwindSafe(|| self.drain_tx(now)));
        true
    }

    /// The call a SIP message or media event names, found without trusting state the
    /// panic may have left half-changed.
    fn panicked_call(&self, input: StepInput<'_>, msg: Option<&Message>) -> Option<u64> {
        catch_unwind(AssertUnwindSafe(|| match (input, msg) {
            (StepInput::Sip(_), Some(Message::Request(req))) => {
                self.find_dialog(req).map(|(k, _)| k)
            }
            (StepInput::Sip(_), Some(Message::Response(resp))) => {
                let call_id = resp.call_id().ok()?;
                if let Some(&k) = self.b_index.get(call_id) {
                    return Some(k);
                }
                // A response to veil's own request on leg A: the caller's tag is To's.
                let tag = resp.to_ref().ok()?.tag()?.to_string();
                self.a_index.get(&(call_id.to_string(), tag)).copied()
            }
            (StepInput::Media(id), _) => self.stream_calls.get(&id?).copied(),
            _ => None,
        }))
        .ok()
        .flatten()
    }

    /// End call `key` after a panic: normally (BYE both legs, CDR `error`), else forgotten
    /// without signalling, else its row closed directly.
    fn end_after_panic(&mut self, key: u64, now: Instant) {
        let ended = catch_unwind(AssertUnwindSafe(|| {
            self.end_call(key, EndReason::Error, Some(500), now)
        }));
        if ended.is_ok() && !self.calls.contains_key(&key) {
            return;
        }
        let forgotten = catch_unwind(AssertUnwindSafe(|| {
            self.forget(key, EndReason::Error, 500, now)
        }));
        if forgotten.is_ok() && !self.calls.contains_key(&key) {
            return;
        }
        if let Some(call) = self.calls.remove(&key) {
            self.metrics.calls_active.dec();
            self.out.push_back(Output::Cdr(CdrEvent::End {
                id: call.vref.clone(),
                ended_at: self.wall(now),
                final_code: 500,
                end_reason: EndReason::Error.as_str().to_string(),
                a_packets: 0,
                b_packets: 0,
                quality: Default::default(),
            }));
            for s in &call.streams {
                self.out
                    .push_back(Output::Media(crate::media::MediaCommand::Close {
                        id: s.id,
                    }));
            }
        }
    }

    /// Test hook (`VEIL_TEST_PANIC_HEADER`, read by the shell): a request carrying this
    /// header makes the engine panic while handling it, after its call is known.
    pub fn set_panic_header(&mut self, name: Option<String>) {
        self.panic_header = name;
    }

    pub(super) fn panic_hook(&self, req: &Request) {
        if let Some(name) = &self.panic_header
            && req.headers.iter().any(|h| h.name.matches(name))
        {
            panic!("test panic hook");
        }
    }
}
