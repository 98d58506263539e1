//! SIP syntax: messages, headers, URIs; parsing, writing and stream framing.
//! Nothing here knows about transactions or calls.

pub mod digest;
pub mod framing;
pub mod header;
pub mod message;
pub mod method;
pub mod parse;
pub mod typed;
pub mod uri;
pub mod view;

pub use header::{Header, HeaderName, Headers};
pub use message::{Message, Request, Response, SipHeaders, reason_phrase};
pub use method::Method;
pub use parse::ParseError;
pub use typed::{CSeq, NameAddr, RAck, Via};
pub use uri::{Host, SipUri, TelUri, Uri};
