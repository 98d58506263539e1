//! The parties veil talks to (PBX, carrier, backup) as the fuzzer plays them: what each
//! learnt from veil's messages (its Call-IDs, tags, branches, Contact, RSeq), so that a
//! templated response answers veil's actual request and an in-dialog request names veil's
//! actual dialog. Without this the fuzzer would never get past "481 no such call".

use std::collections::VecDeque;
use std::net::SocketAddr;

use veil::sip::{HeaderName, Message, Request, Response, SipHeaders};

use crate::input::{FailCode, Template};
use crate::msg::Msg;

/// Requests of veil's a party remembers to answer, newest last.
const INBOX: usize = 6;
/// Calls a party places (Call-IDs `<name>-call-<n>`) and calls it takes.
const SLOTS: usize = 3;

/// One dialog as the party sees it.
#[derive(Clone, Debug)]
pub struct Dialog {
    pub call_id: String,
    /// The party's own From/To value (with its tag).
    pub local: String,
    /// veil's value (with veil's tag once veil answered).
    pub remote: String,
    /// Request-URI of in-dialog requests: veil's Contact.
    pub target: String,
    /// The party's last INVITE in this dialog, for ACK and CANCEL.
    pub invite: Option<SentInvite>,
}

#[derive(Clone, Debug)]
pub struct SentInvite {
    pub cseq: u32,
    pub branch: String,
    pub uri: String,
    /// The To as sent (no tag on an initial INVITE).
    pub to: String,
}

pub struct Party {
    pub name: &'static str,
    pub host: &'static str,
    pub addr: SocketAddr,
    /// RTP port of its SDP.
    media_port: u16,
    inbox: VecDeque<Request>,
    /// Dialogs of the calls it placed, by slot.
    caller: [Option<Dialog>; SLOTS],
    /// Dialogs of the calls veil placed to it, newest last.
    callee: VecDeque<Dialog>,
    cseq: u32,
    branches: u32,
    sdp_version: u32,
    rseq: u32,
    /// RAck of the last reliable provisional veil sent it.
    rack: Option<String>,
    /// The last message it sent, for retransmission.
    pub last: Option<Vec<u8>>,
}

impl Party {
    pub fn new(name: &'static str, host: &'static str, media_port: u16) -> Party {
        Party {
            name,
            host,
            addr: format!("{host}:5060").parse().unwrap(),
            media_port,
            inbox: VecDeque::new(),
            caller: Default::default(),
            callee: VecDeque::new(),
            cseq: 10,
            branches: 0,
            sdp_version: 1,
            rseq: 1,
            rack: None,
            last: None,
        }
    }

    /// Take in a message veil sent this party.
    pub fn observe(&mut self, msg: &Message) {
        match msg {
            Message::Request(r) => self.observe_request(r),
            Message::Response(r) => self.observe_response(r),
        }
    }

    fn observe_request(&mut self, r: &Request) {
        if r.method.as_str() == "ACK" {
            return;
        }
        if r.method.as_str() == "INVITE"
            && r.to_hdr()
                .ok()
                .and_then(|t| t.tag().map(str::to_string))
                .is_none()
            && let (Ok(call_id), Some(from), Some(to)) = (
                r.call_id(),
                r.headers.get(&HeaderName::From),
                r.headers.get(&HeaderName::To),
            )
        {
            let d = Dialog {
                call_id: call_id.to_string(),
                local: format!("{to};tag={}tag0", self.name),
                remote: from.to_string(),
                target: contact_uri(r.headers.get(&HeaderName::Contact)),
                invite: None,
            };
            if self.callee.len() == SLOTS {
                self.callee.pop_front();
            }
            self.callee.push_back(d);
        }
        if self.inbox.len() == INBOX {
            self.inbox.pop_front();
        }
        self.inbox.push_back(r.clone());
    }

    fn observe_response(&mut self, r: &Response) {
        let Ok(call_id) = r.call_id() else { return };
        if let (Some(rseq), Some(cseq)) = (
            r.headers.get(&HeaderName::RSeq),
            r.headers.get(&HeaderName::CSeq),
        ) {
            self.rack = Some(format!("{rseq} {cseq}"));
        }
        if r.code <= 100 {
            return;
        }
        let Some(to) = r.headers.get(&HeaderName::To) else {
            return;
        };
        if !to.contains("tag=") {
            return;
        }
        for d in self.caller.iter_mut().flatten() {
            if d.call_id == call_id && (r.code < 300 || !d.remote.contains("tag=")) {
                d.remote = to.to_string();
                if let Some(c) = r.headers.get(&HeaderName::Contact) {
                    d.target = contact_uri(Some(c));
                }
            }
        }
    }

    /// The message for `t`, before mutations; `None` for templates that send nothing.
    pub fn build(&mut self, t: &Template, slot: u8, alt: bool) -> Option<Msg> {
        match t {
            Template::Nothing | Template::Raw(_) => None,
            Template::Invite => Some(self.invite(slot, alt)),
            Template::Cancel => self.cancel(slot, alt),
            Template::Ack => Some(self.ack(slot, alt)),
            Template::ReInvite => Some(self.in_dialog("INVITE", slot, alt, !alt)),
            Template::Update => Some(self.in_dialog("UPDATE", slot, alt, !alt)),
            Template::Bye => Some(self.in_dialog("BYE", slot, alt, false)),
            Template::Info => Some(self.in_dialog("INFO", slot, alt, false)),
            Template::Prack => Some(self.in_dialog("PRACK", slot, alt, false)),
            Template::Options => Some(self.in_dialog("OPTIONS", slot, alt, false)),
            Template::Trying => self.respond(100, slot, alt),
            Template::Ringing => self.respond(180, slot, alt),
            Template::Progress => self.respond(183, slot, alt),
            Template::Ok => self.respond(200, slot, alt),
            Template::Fail(f) => self.respond(f.code(), slot, alt),
        }
    }

    fn branch(&mut self) -> String {
        self.branches += 1;
        format!("z9hG4bK{}b{}", self.name, self.branches)
    }

    fn next_cseq(&mut self) -> u32 {
        self.cseq += 1;
        self.cseq
    }

    fn via(&self, branch: &str) -> String {
        format!("SIP/2.0/UDP {}:5060;branch={branch}", self.host)
    }

    fn contact(&self) -> String {
        format!("<sip:{}@{}:5060>", self.name, self.host)
    }

    pub fn sdp(&mut self) -> Vec<String> {
        self.sdp_version += 1;
        let (n, h, p) = (self.name, self.host, self.media_port);
        vec![
            "v=0".into(),
            format!("o={n}secret 1 {} IN IP4 {h}", self.sdp_version),
            format!("s=Secret {n}"),
            format!("c=IN IP4 {h}"),
            "t=0 0".into(),
            format!("m=audio {p} RTP/AVP 0 8 101"),
            "a=rtpmap:101 telephone-event/8000".into(),
            "a=fmtp:101 0-15".into(),
            "a=ptime:20".into(),
            "a=sendrecv".into(),
        ]
    }

    /// A new call (or, same slot again, a new INVITE of the same unanswered call).
    fn invite(&mut self, slot: u8, alt: bool) -> Msg {
        let s = slot as usize % SLOTS;
        let call_id = format!("{}-call-{s}", self.name);
        let local = format!(
            "\"Alice\" <sip:alice@{}>;tag={}ctag{s}",
            self.host, self.name
        );
        let to = "<sip:0123456@127.0.0.1>".to_string();
        let uri = "sip:0123456@127.0.0.1:5060".to_string();
        let (branch, cseq) = (self.branch(), self.next_cseq());
        let mut m = Msg::new(format!("INVITE {uri} SIP/2.0"));
        m.h("Via", self.via(&branch))
            .h("Max-Forwards", "70")
            .h("From", local.clone())
            .h("To", to.clone())
            .h("Call-ID", call_id.clone())
            .h("CSeq", format!("{cseq} INVITE"))
            .h("Contact", self.contact())
            .h("Record-Route", format!("<sip:{};lr>", self.host))
            .h("Supported", "100rel, timer")
            .h("Session-Expires", "1800")
            .h("User-Agent", format!("{}-Internal", self.name))
            .h("X-Secret", "topology");
        let sdp = (!alt).then(|| self.sdp());
        m.with_body(sdp);
        self.caller[s] = Some(Dialog {
            call_id,
            local,
            remote: to.clone(),
            target: uri.clone(),
            invite: Some(SentInvite {
                cseq,
                branch,
                uri,
                to,
            }),
        });
        m
    }

    /// The dialog a request goes in: the call it placed in `slot`, or (`alt`, or none
    /// placed) the `slot`-th newest call it takes; a made-up one when it has neither.
    fn dialog(&mut self, slot: u8, alt: bool) -> &mut Dialog {
        let s = slot as usize % SLOTS;
        let placed = self.caller[s].is_some();
        if (alt || !placed) && !self.callee.is_empty() {
            let i = self.callee.len() - 1 - (slot as usize % self.callee.len());
            return &mut self.callee[i];
        }
        if !placed {
            self.caller[s] = Some(Dialog {
                call_id: format!("{}-call-{s}", self.name),
                local: format!("<sip:alice@{}>;tag={}ctag{s}", self.host, self.name),
                remote: "<sip:0123456@127.0.0.1>;tag=unknown".into(),
                target: "sip:veil@127.0.0.1:5060".into(),
                invite: None,
            });
        }
        self.caller[s].as_mut().unwrap()
    }

    fn in_dialog(&mut self, method: &str, slot: u8, alt: bool, sdp: bool) -> Msg {
        let (branch, cseq) = (self.branch(), self.next_cseq());
        let via = self.via(&branch);
        let contact = self.contact();
        let rack = self.rack.clone();
        let body = sdp.then(|| self.sdp());
        let d = self.dialog(slot, alt);
        let mut m = Msg::new(format!("{method} {} SIP/2.0", d.target));
        m.h("Via", via)
            .h("Max-Forwards", "70")
            .h("From", d.local.clone())
            .h("To", d.remote.clone())
            .h("Call-ID", d.call_id.clone())
            .h("CSeq", format!("{cseq} {method}"));
        if matches!(method, "INVITE" | "UPDATE") {
            m.h("Contact", contact)
                .h("Session-Expires", "1800;refresher=uac");
        }
        if method == "PRACK" {
            m.h("RAck", rack.unwrap_or_else(|| format!("1 {cseq} INVITE")));
        }
        if method == "INVITE" {
            d.invite = Some(SentInvite {
                cseq,
                branch,
                uri: d.target.clone(),
                to: d.remote.clone(),
            });
        }
        m.with_body(body);
        m
    }

    /// ACK of the dialog's last INVITE: of a 2xx (new transaction), or `alt` of a failure
    /// (the INVITE's branch and Request-URI).
    fn ack(&mut self, slot: u8, alt: bool) -> Msg {
        let fresh = self.branch();
        let via_fresh = self.via(&fresh);
        let host = self.host;
        let d = self.dialog(slot, false);
        let (cseq, uri, via) = match (&d.invite, alt) {
            (Some(i), true) => (
                i.cseq,
                i.uri.clone(),
                format!("SIP/2.0/UDP {host}:5060;branch={}", i.branch),
            ),
            (Some(i), false) => (i.cseq, d.target.clone(), via_fresh),
            (None, _) => (1, d.target.clone(), via_fresh),
        };
        let mut m = Msg::new(format!("ACK {uri} SIP/2.0"));
        m.h("Via", via)
            .h("Max-Forwards", "70")
            .h("From", d.local.clone())
            .h("To", d.remote.clone())
            .h("Call-ID", d.call_id.clone())
            .h("CSeq", format!("{cseq} ACK"));
        m.with_body(None);
        m
    }

    /// CANCEL of the INVITE of the dialog (`alt`: of a call it takes, its re-INVITE).
    fn cancel(&mut self, slot: u8, alt: bool) -> Option<Msg> {
        let host = self.host;
        let d = self.dialog(slot, alt);
        let i = d.invite.as_ref()?;
        let mut m = Msg::new(format!("CANCEL {} SIP/2.0", i.uri));
        m.h(
            "Via",
            format!("SIP/2.0/UDP {host}:5060;branch={}", i.branch),
        )
        .h("Max-Forwards", "70")
        .h("From", d.local.clone())
        .h("To", i.to.clone())
        .h("Call-ID", d.call_id.clone())
        .h("CSeq", format!("{} CANCEL", i.cseq));
        m.with_body(None);
        Some(m)
    }

    /// A response to the `slot`-th newest request veil sent this party.
    fn respond(&mut self, code: u16, slot: u8, alt: bool) -> Option<Msg> {
        if self.inbox.is_empty() {
            return None;
        }
        let i = self.inbox.len() - 1 - (slot as usize % self.inbox.len());
        let req = self.inbox[i].clone();
        let mut m = Msg::new(format!("SIP/2.0 {code} {}", veil::sip::reason_phrase(code)));
        for v in req.headers.get_all(&HeaderName::Via) {
            m.h("Via", v);
        }
        if let Some(f) = req.headers.get(&HeaderName::From) {
            m.h("From", f);
        }
        let to = req
            .headers
            .get(&HeaderName::To)
            .unwrap_or("<sip:x@127.0.0.1>");
        let to = if to.contains("tag=") || code == 100 {
            to.to_string()
        } else {
            format!("{to};tag={}tag{}", self.name, slot % 2)
        };
        m.h("To", to.clone());
        if let Ok(call_id) = req.call_id() {
            m.h("Call-ID", call_id);
        }
        if let Some(c) = req.headers.get(&HeaderName::CSeq) {
            m.h("CSeq", c);
        }
        let method = req.method.as_str();
        let creates = matches!(method, "INVITE" | "UPDATE" | "SUBSCRIBE");
        if creates && code > 100 {
            m.h("Contact", self.contact());
        }
        if method == "INVITE" && (101..300).contains(&code) {
            m.h("Record-Route", format!("<sip:{};lr>", self.host));
            if let Ok(call_id) = req.call_id()
                && let Some(d) = self.callee.iter_mut().rev().find(|d| d.call_id == call_id)
                && !req.to_hdr().is_ok_and(|t| t.tag().is_some())
            {
                d.local = to;
            }
        }
        if code == 183 && req.has_option_tag(&HeaderName::Supported, "100rel") && !alt {
            self.rseq += 1;
            m.h("Require", "100rel").h("RSeq", self.rseq.to_string());
        }
        if (200..300).contains(&code) && req.headers.get(&HeaderName::SessionExpires).is_some() {
            let se = req
                .headers
                .get(&HeaderName::SessionExpires)
                .unwrap_or("1800");
            m.h("Require", "timer").h("Session-Expires", se);
        }
        match FailCode::challenge(code) {
            Some((name, value)) => {
                m.h(name, value);
            }
            None if code == 503 => {
                m.h("Retry-After", "60");
            }
            None if code == 422 => {
                m.h("Min-SE", "3600");
            }
            None if code == 302 => {
                m.h("Contact", "<sip:0123456@127.0.0.4:5060>");
            }
            None => {}
        }
        m.h("Server", format!("{}-Switch 9", self.name));
        // An answer (or offer) on 2xx to INVITE/UPDATE, early media on 183; `alt` flips
        // it: a 2xx without the answer veil must have, a 180 with SDP.
        let sdp = match code {
            183 => !alt,
            180 => alt,
            200..=299 => matches!(method, "INVITE" | "UPDATE") && !alt,
            _ => false,
        };
        let sdp = sdp.then(|| self.sdp());
        m.with_body(sdp);
        Some(m)
    }
}

impl FailCode {
    /// The challenge header of a 401/407.
    fn challenge(code: u16) -> Option<(&'static str, &'static str)> {
        let v = "Digest realm=\"carrier\", nonce=\"5f1b\", algorithm=MD5, qop=\"auth\"";
        match code {
            401 => Some(("WWW-Authenticate", v)),
            407 => Some(("Proxy-Authenticate", v)),
            _ => None,
        }
    }
}

/// The URI of a Contact value (`<sip:...>;params` or a bare URI).
fn contact_uri(v: Option<&str>) -> String {
    let Some(v) = v else {
        return "sip:veil@127.0.0.1:5060".into();
    };
    match (v.find('<'), v.find('>')) {
        (Some(a), Some(b)) if a < b => v[a + 1..b].to_string(),
        _ => v.split(';').next().unwrap_or(v).trim().to_string(),
    }
}
