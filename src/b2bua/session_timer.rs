//! Session timers (RFC 4028), negotiated on each leg independently (as SEMS does): the
//! interval and the refresher of leg A have nothing to do with those of leg B. A refresh
//! that changes nothing is answered on its own leg and never crosses; veil refreshes the
//! legs where it is the refresher (UPDATE when allowed, else re-INVITE with the unchanged
//! SDP); a leg that goes silent, or answers a refresh with 408/481, ends the call.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::SessionTimerConfig;
use crate::media::Side;
use crate::sip::{HeaderName, Headers, Method, Request, Response, SipHeaders};
use crate::transaction::{ClientTxId, ServerTxId};

use super::admission::{is_sdp, response};
use super::call::{AwaitAck, EndReason};
use super::call_timers::CallTimer;
use super::deadline::after;
use super::engine::Engine;
use super::invite::set_local_to;
use super::leg::contact;
use super::owner::TxOwner;

/// What was agreed on one leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimer {
    pub interval: Duration,
    /// veil sends the refreshes on this leg; otherwise the far end must.
    pub veil_refreshes: bool,
    /// The far end accepts UPDATE (its Allow said so): refresh with UPDATE, not re-INVITE.
    pub update_ok: bool,
    pub min_se: Duration,
    /// The longest interval veil agrees to on this leg (its configured `expires`, or the
    /// Min-SE if higher): a larger Session-Expires from the peer is lowered to it
    /// (RFC 4028 §9), never trusted raw.
    pub max_interval: Duration,
}

/// `Session-Expires: 1800;refresher=uac` -> (1800 s, Some(true)); refresher=uas -> Some(false).
pub fn parse_session_expires(v: &str) -> Option<(Duration, Option<bool>)> {
    let mut parts = v.split(';');
    let secs: u64 = parts.next()?.trim().parse().ok()?;
    let mut refresher = None;
    for p in parts {
        if let Some((n, val)) = p.split_once('=')
            && n.trim().eq_ignore_ascii_case("refresher")
        {
            refresher = match val.trim().to_ascii_lowercase().as_str() {
                "uac" => Some(true),
                "uas" => Some(false),
                _ => None,
            };
        }
    }
    Some((Duration::from_secs(secs), refresher))
}

pub fn min_se_of(h: &Headers) -> Option<Duration> {
    h.get(&HeaderName::MinSe)
        .and_then(|v| v.split(';').next()?.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

fn has_tag(h: &Headers, name: &HeaderName, tag: &str) -> bool {
    h.values(name).iter().any(|t| t.eq_ignore_ascii_case(tag))
}

/// Remove an option tag from Supported/Require lines (timers are per leg: the far leg's
/// `timer` says nothing about this one).
pub fn strip_option_tag(h: &mut Headers, tag: &str) {
    for name in [HeaderName::Supported, HeaderName::Require] {
        let kept: Vec<String> = h
            .values(&name)
            .into_iter()
            .filter(|t| !t.eq_ignore_ascii_case(tag))
            .map(str::to_string)
            .collect();
        if h.contains(&name) {
            h.remove_all(&name);
            if !kept.is_empty() {
                h.push(name, kept.join(", "));
            }
        }
    }
}

/// Write veil's session timer headers for one leg. `veil_is_uac`: veil sends the message
/// (a request) — `refresher` is written from the sender's point of view of the request
/// this message belongs to: in a request veil sends, uac = veil; in a response veil sends,
/// uac = the far end.
pub fn write_headers(h: &mut Headers, st: &SessionTimer, veil_is_uac: bool) {
    let refresher_is_uac = st.veil_refreshes == veil_is_uac;
    let who = if refresher_is_uac { "uac" } else { "uas" };
    h.set(
        HeaderName::SessionExpires,
        format!("{};refresher={who}", st.interval.as_secs()),
    );
    h.set(HeaderName::MinSe, st.min_se.as_secs().to_string());
    add_option_tag(h, HeaderName::Supported, "timer");
    // RFC 4028 §9: a response naming the far end (UAC) as refresher requires it.
    if !veil_is_uac && refresher_is_uac {
        add_option_tag(h, HeaderName::Require, "timer");
    }
}

fn add_option_tag(h: &mut Headers, name: HeaderName, tag: &str) {
    if has_tag(h, &name, tag) {
        return;
    }
    let mut tags: Vec<String> = h.values(&name).iter().map(|s| s.to_string()).collect();
    tags.push(tag.to_string());
    h.remove_all(&name);
    h.push(name, tags.join(", "));
}

/// Headers of an INVITE veil sends on a leg whose timer config is `cfg`: its interval
/// (or `at_least`, after a 422), its Min-SE, `Supported: timer`. Timer headers of the
/// other leg never cross (`strip_option_tag` and the allow-list see to that).
pub fn offer_headers(h: &mut Headers, cfg: &SessionTimerConfig, at_least: Option<Duration>) {
    strip_option_tag(h, "timer");
    h.remove_all(&HeaderName::SessionExpires);
    h.remove_all(&HeaderName::MinSe);
    if !cfg.enabled {
        return;
    }
    let floor = at_least.unwrap_or(Duration::ZERO);
    h.push(
        HeaderName::SessionExpires,
        cfg.expires.0.max(floor).as_secs().to_string(),
    );
    h.push(
        HeaderName::MinSe,
        cfg.min_se.0.max(floor).as_secs().to_string(),
    );
    add_option_tag(h, HeaderName::Supported, "timer");
}

/// Leg A (veil is UAS): what to agree given the caller's INVITE. `Err(min_se)` when the
/// caller asked for less than veil accepts (answer 422 with that Min-SE).
pub fn plan_uas(req: &Request, cfg: &SessionTimerConfig) -> Result<Option<SessionTimer>, Duration> {
    if !cfg.enabled {
        return Ok(None);
    }
    let asked = req
        .headers
        .get(&HeaderName::SessionExpires)
        .and_then(parse_session_expires);
    let their_min = min_se_of(&req.headers).unwrap_or(Duration::ZERO);
    let interval = match asked {
        Some((x, _)) if x < cfg.min_se.0 => return Err(cfg.min_se.0),
        Some((x, _)) => x.min(cfg.expires.0).max(their_min).max(cfg.min_se.0),
        None => cfg.expires.0.max(their_min),
    };
    let supports = has_tag(&req.headers, &HeaderName::Supported, "timer")
        || has_tag(&req.headers, &HeaderName::Require, "timer");
    // The caller refreshes when it asked to, or supports timers and did not choose.
    let caller_refreshes = supports && asked.and_then(|(_, r)| r).unwrap_or(true);
    Ok(Some(SessionTimer {
        interval,
        veil_refreshes: !caller_refreshes,
        update_ok: has_tag(&req.headers, &HeaderName::Allow, "UPDATE"),
        min_se: cfg.min_se.0.max(their_min),
        max_interval: cfg.expires.0.max(their_min),
    }))
}

/// Leg B (veil is UAC): what the callee's 2xx agreed. No Session-Expires in it means the
/// callee does not do timers: veil refreshes alone at its own interval.
pub fn plan_uac(
    resp: &Response,
    cfg: &SessionTimerConfig,
    min_se: Duration,
) -> Option<SessionTimer> {
    if !cfg.enabled {
        return None;
    }
    // What `offer_headers` put in the INVITE (after a 422, at least its Min-SE).
    let offered = cfg.expires.0.max(min_se);
    let (interval, veil_refreshes) = match resp
        .headers
        .get(&HeaderName::SessionExpires)
        .and_then(parse_session_expires)
    {
        // RFC 4028 §7.2: the UAS may only lower what veil offered; more is lowered to it.
        Some((x, r)) => (x.clamp(Duration::from_secs(1), offered), r.unwrap_or(true)),
        None => (cfg.expires.0, true),
    };
    Some(SessionTimer {
        interval,
        veil_refreshes,
        update_ok: has_tag(&resp.headers, &HeaderName::Allow, "UPDATE"),
        min_se,
        max_interval: offered,
    })
}

impl Engine {
    /// Start (or restart after a refresh) the timer of one leg.
    pub(super) fn schedule_session(&mut self, key: u64, side: Side, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(st) = call.leg_mut(side).session.as_mut() else {
            return;
        };
        let (interval, veil) = (st.interval, st.veil_refreshes);
        // One of the two runs: the other is from an older schedule.
        let (refresh, expire) = (
            CallTimer::SessionRefresh(side),
            CallTimer::SessionExpire(side),
        );
        if veil {
            call.deadlines.clear(expire);
            self.arm(key, refresh, after(now, interval / 2));
        } else {
            call.deadlines.clear(refresh);
            // RFC 4028 §10: the far end's refresh must have arrived by then.
            let slack = (interval / 3).min(Duration::from_secs(32));
            self.arm(key, expire, after(now, interval.saturating_sub(slack)));
        }
    }

    pub(super) fn on_session_timer(&mut self, key: u64, side: Side, refresh: bool, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        let Some(st) = call.leg(side).session else {
            return;
        };
        if !refresh {
            tracing::info!(call = %call.vref, a_call_id = %call.a.call_id, b_call_id = %call.b.call_id,
                leg = ?side, "session expired without refresh");
            self.end_call(key, EndReason::SessionTimer, None, now);
            return;
        }
        self.send_refresh(key, side, now);
        // The refresh must succeed before the session runs out.
        self.arm(
            key,
            CallTimer::SessionExpire(side),
            after(now, st.interval / 2),
        );
    }

    /// veil refreshes a leg: UPDATE without SDP if allowed, else re-INVITE with the SDP
    /// last sent on that leg (unchanged, so its o= version stays).
    fn send_refresh(&mut self, key: u64, side: Side, now: Instant) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let Some(st) = call.leg(side).session else {
            return;
        };
        if call.pending.iter().any(|p| p.req.method == Method::Invite) {
            // A re-INVITE is crossing: it refreshes both legs when it succeeds.
            return;
        }
        let listener = call.peers.listeners[call.leg(side).flow.listener].clone();
        let leg = call.leg_mut(side);
        let method = if st.update_ok {
            Method::Update
        } else {
            Method::Invite
        };
        let mut req = leg.request(method.clone(), None, &listener, &mut self.ids);
        write_headers(&mut req.headers, &st, true);
        if method == Method::Invite
            && let Some(sdp) = leg.last_sdp.clone()
        {
            req.headers.push(HeaderName::ContentType, "application/sdp");
            req.body = sdp;
        }
        let flow = leg.flow;
        let ctx = self.send_request(req, flow, now);
        if method == Method::Invite {
            self.replace_last_invite(key, side, ctx);
        }
        self.own(key, ctx, TxOwner::Refresh { call: key, side });
        tracing::debug!(call = key, leg = ?side, method = %method, "session refresh sent");
    }

    /// The answer to one of veil's refreshes.
    pub(super) fn on_refresh_response(
        &mut self,
        key: u64,
        ctx: ClientTxId,
        side: Side,
        resp: Response,
        now: Instant,
    ) {
        if resp.code < 200 {
            return;
        }
        let is_invite = resp
            .cseq()
            .map(|c| c.method == Method::Invite)
            .unwrap_or(false);
        // Answered; a re-INVITE's 2xx may come again and wants its ACK again.
        if is_invite && (200..300).contains(&resp.code) {
            self.owners.insert(ctx, TxOwner::Acked { call: key, side });
        } else {
            self.owners.remove(&ctx);
        }
        match resp.code {
            200..=299 => {
                if is_invite {
                    let seq = resp.cseq().map(|c| c.seq).unwrap_or(0);
                    self.ack_leg(key, side, seq, Bytes::new());
                }
                if let Some(call) = self.calls.get_mut(&key)
                    && let Some(st) = call.leg_mut(side).session.as_mut()
                    && let Some((x, r)) = resp
                        .headers
                        .get(&HeaderName::SessionExpires)
                        .and_then(parse_session_expires)
                {
                    // The refresh offered `st.interval`; the answer may only lower it.
                    st.interval = x.clamp(
                        Duration::from_secs(1),
                        st.interval.max(Duration::from_secs(1)),
                    );
                    st.veil_refreshes = r.unwrap_or(true);
                }
                self.schedule_session(key, side, now);
            }
            422 => {
                if let Some(call) = self.calls.get_mut(&key)
                    && let Some(st) = call.leg_mut(side).session.as_mut()
                    && let Some(n) = min_se_of(&resp.headers)
                    && n > st.interval
                {
                    st.interval = n;
                    st.min_se = n;
                    st.max_interval = st.max_interval.max(n);
                    self.send_refresh(key, side, now);
                }
            }
            408 | 481 => {
                tracing::info!(code = resp.code, leg = ?side, "session refresh refused; ending call");
                self.end_call(key, EndReason::SessionTimer, None, now);
            }
            // Glare with the far end's own re-INVITE: try again shortly.
            491 if self
                .calls
                .get(&key)
                .is_some_and(|c| c.leg(side).session.is_some()) =>
            {
                let at = after(now, Duration::from_secs(2));
                self.arm(key, CallTimer::SessionRefresh(side), at);
            }
            // Anything else: the session runs on until it expires, unless a later
            // refresh (either side's) succeeds.
            _ => {}
        }
    }

    /// A refresh of veil's that got no answer at all.
    pub(super) fn on_refresh_timeout(&mut self, key: u64, now: Instant) {
        let Some(call) = self.calls.get(&key) else {
            return;
        };
        tracing::info!(call = %call.vref, "session refresh timed out; ending call");
        self.end_call(key, EndReason::SessionTimer, None, now);
    }

    /// Is this in-dialog INVITE/UPDATE from `side` only a refresh (no SDP change)?
    pub(super) fn is_refresh(&self, key: u64, side: Side, req: &Request) -> bool {
        if !matches!(req.method, Method::Invite | Method::Update) {
            return false;
        }
        let Some(call) = self.calls.get(&key) else {
            return false;
        };
        if req.body.is_empty() {
            // UPDATE without SDP, or re-INVITE soliciting an offer: nothing changes.
            return true;
        }
        is_sdp(req.content_type()) && call.leg(side).last_sdp_in.as_ref() == Some(&req.body)
    }

    /// Answer a refresh on its own leg: 200 with veil's last SDP for that leg and the
    /// leg's session timer headers; nothing crosses.
    pub(super) fn answer_refresh(
        &mut self,
        key: u64,
        side: Side,
        stx: ServerTxId,
        req: Request,
        now: Instant,
    ) {
        let Some(call) = self.calls.get_mut(&key) else {
            return;
        };
        let leg = call.leg_mut(side);
        if let Some(st) = leg.session.as_mut()
            && let Some((x, r)) = req
                .headers
                .get(&HeaderName::SessionExpires)
                .and_then(parse_session_expires)
        {
            if x < st.min_se {
                let mut r422 = response(&req, 422);
                r422.headers
                    .push(HeaderName::MinSe, st.min_se.as_secs().to_string());
                set_local_to(&mut r422, &leg.local_hdr);
                self.reply(stx, r422, now);
                return;
            }
            // RFC 4028 §9: the UAS may lower the interval (not below Min-SE).
            st.interval = x.min(st.max_interval.max(st.min_se));
            if let Some(uac_refreshes) = r {
                st.veil_refreshes = !uac_refreshes;
            }
        }
        if let Some(Ok(c)) = req.contact() {
            leg.set_remote_target(c.uri.to_string());
        }
        let listener = call.peers.listeners[call.leg(side).flow.listener].clone();
        let leg = call.leg(side);
        let mut ok = response(&req, 200);
        set_local_to(&mut ok, &leg.local_hdr);
        ok.headers
            .push(HeaderName::Contact, contact(&listener, leg.secure));
        super::leg::copy_record_route(&req, &mut ok);
        if let Some(st) = leg.session {
            write_headers(&mut ok.headers, &st, false);
        }
        let offer_or_answer_needed = req.method == Method::Invite || !req.body.is_empty();
        if offer_or_answer_needed && let Some(sdp) = leg.last_sdp.clone() {
            ok.headers.push(HeaderName::ContentType, "application/sdp");
            ok.body = sdp;
        }
        if req.method == Method::Invite {
            let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
            call.await_ack.push(AwaitAck {
                from: side,
                cseq,
                stx,
                ack_other: None,
            });
            super::teardown::track(&mut self.stx_calls, &mut call.stxs, key, stx);
        }
        tracing::debug!(call = %call.vref, leg = ?side, "session refresh answered locally");
        self.reply(stx, ok, now);
        self.schedule_session(key, side, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_expires_forms() {
        assert_eq!(
            parse_session_expires("1800"),
            Some((Duration::from_secs(1800), None))
        );
        assert_eq!(
            parse_session_expires("90;refresher=uac"),
            Some((Duration::from_secs(90), Some(true)))
        );
        assert_eq!(
            parse_session_expires("600 ; refresher = UAS"),
            Some((Duration::from_secs(600), Some(false)))
        );
        assert_eq!(parse_session_expires("x"), None);
    }

    #[test]
    fn option_tags_per_leg() {
        let mut h = Headers::new();
        h.push(HeaderName::Supported, "100rel, timer");
        h.push(HeaderName::Require, "timer");
        strip_option_tag(&mut h, "timer");
        assert_eq!(h.get(&HeaderName::Supported), Some("100rel"));
        assert!(!h.contains(&HeaderName::Require));
        let st = SessionTimer {
            interval: Duration::from_secs(1800),
            veil_refreshes: false,
            update_ok: true,
            min_se: Duration::from_secs(90),
            max_interval: Duration::from_secs(1800),
        };
        // A 2xx naming the caller as refresher requires `timer`.
        write_headers(&mut h, &st, false);
        assert_eq!(
            h.get(&HeaderName::SessionExpires),
            Some("1800;refresher=uac")
        );
        assert_eq!(h.get(&HeaderName::Require), Some("timer"));
        assert_eq!(h.get(&HeaderName::Supported), Some("100rel, timer"));
    }
}
