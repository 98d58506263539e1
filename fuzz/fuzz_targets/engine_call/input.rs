//! The structured input: a list of steps, each a templated SIP message (or none) from one
//! party, mutated, then a time step. `arbitrary` builds it from the fuzzer's bytes, so a
//! mutation of those bytes is a change of template, sender, header or clock.

use arbitrary::Arbitrary;

/// At most this many steps per input: a call plus retransmissions, forks and teardown fit.
pub const MAX_OPS: usize = 40;
/// At most this many mutations per message.
pub const MAX_MUTATIONS: usize = 6;

#[derive(Arbitrary, Debug)]
pub struct Op {
    pub template: Template,
    pub sender: Sender,
    /// Which call (new INVITE: its Call-ID), which of the party's dialogs, which request
    /// of veil's to answer (newest first), which fork tag.
    pub slot: u8,
    /// Template variant: without SDP where it has one (or with, where it has none), the
    /// callee's dialog instead of the caller's, ACK of a non-2xx (same branch).
    pub alt: bool,
    pub mutations: Vec<Mutation>,
    pub step: Step,
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    Pbx,
    Carrier,
    Backup,
    /// 127.0.0.9, not a peer, sending what the party `slot % 3` would.
    Stranger,
}

#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Template {
    /// Only the time step.
    Nothing,
    /// A new call from the sender (Call-ID by `slot`), SDP offer.
    Invite,
    /// The CANCEL of the sender's INVITE of call `slot`.
    Cancel,
    /// ACK of the sender's last INVITE in the dialog (2xx: new branch; `alt`: hop by hop).
    Ack,
    ReInvite,
    Update,
    Bye,
    Info,
    Prack,
    Options,
    /// A response to a request veil sent the sender.
    Trying,
    Ringing,
    Progress,
    Ok,
    Fail(FailCode),
    /// Bytes as they come (the parser has its own targets: this only reaches the engine).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailCode {
    Redirect302,
    Unauthorized401,
    Forbidden403,
    NotFound404,
    ProxyAuth407,
    Timeout408,
    IntervalTooBrief422,
    Gone481,
    Busy486,
    Terminated487,
    NotAcceptable488,
    Pending491,
    ServerError500,
    Unavailable503,
    Decline603,
    Other(u16),
}

impl FailCode {
    pub fn code(self) -> u16 {
        use FailCode::*;
        match self {
            Redirect302 => 302,
            Unauthorized401 => 401,
            Forbidden403 => 403,
            NotFound404 => 404,
            ProxyAuth407 => 407,
            Timeout408 => 408,
            IntervalTooBrief422 => 422,
            Gone481 => 481,
            Busy486 => 486,
            Terminated487 => 487,
            NotAcceptable488 => 488,
            Pending491 => 491,
            ServerError500 => 500,
            Unavailable503 => 503,
            Decline603 => 603,
            Other(n) => 300 + n % 400,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    Header(Hdr, Action),
    Sdp(SdpLine, Action),
    /// The whole body.
    Body(String),
    /// A response's status code (100-699).
    Code(u16),
}

#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replace the value (the first one, if several).
    Set(String),
    /// Keep the shape, change its number: CSeq, Session-Expires, Retry-After,
    /// Content-Length, Max-Forwards, RSeq/RAck, ports.
    Num(u32),
    Drop,
    /// One more of it (header) or a line after it (SDP).
    Add(String),
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hdr {
    Via,
    From,
    To,
    CallId,
    CSeq,
    Contact,
    MaxForwards,
    ContentType,
    ContentLength,
    SessionExpires,
    MinSe,
    Supported,
    Require,
    RetryAfter,
    RecordRoute,
    Route,
    RSeq,
    RAck,
    Expires,
    Reason,
    PAssertedIdentity,
    WwwAuthenticate,
    Allow,
    UserAgent,
}

impl Hdr {
    pub fn name(self) -> &'static str {
        use Hdr::*;
        match self {
            Via => "Via",
            From => "From",
            To => "To",
            CallId => "Call-ID",
            CSeq => "CSeq",
            Contact => "Contact",
            MaxForwards => "Max-Forwards",
            ContentType => "Content-Type",
            ContentLength => "Content-Length",
            SessionExpires => "Session-Expires",
            MinSe => "Min-SE",
            Supported => "Supported",
            Require => "Require",
            RetryAfter => "Retry-After",
            RecordRoute => "Record-Route",
            Route => "Route",
            RSeq => "RSeq",
            RAck => "RAck",
            Expires => "Expires",
            Reason => "Reason",
            PAssertedIdentity => "P-Asserted-Identity",
            WwwAuthenticate => "WWW-Authenticate",
            Allow => "Allow",
            UserAgent => "User-Agent",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpLine {
    Version,
    Origin,
    Session,
    Connection,
    Time,
    /// The `n % streams`-th m= line.
    Media(u8),
    Rtpmap,
    Fmtp,
    Direction,
    Rtcp,
    Crypto,
    Ptime,
}

impl SdpLine {
    /// The line's prefix in the template SDP.
    pub fn prefix(self) -> &'static str {
        use SdpLine::*;
        match self {
            Version => "v=",
            Origin => "o=",
            Session => "s=",
            Connection => "c=",
            Time => "t=",
            Media(_) => "m=",
            Rtpmap => "a=rtpmap:",
            Fmtp => "a=fmtp:",
            Direction => "a=send",
            Rtcp => "a=rtcp:",
            Crypto => "a=crypto:",
            Ptime => "a=ptime:",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    None,
    /// Advance, running each timer when due.
    Millis(u16),
    Secs(u8),
    /// Next due timer only.
    NextTimer,
    /// The clock jumps this many minutes at once (a stalled process): one
    /// `handle_timeout` for all that came due.
    Jump(u8),
}
