//! RFC 3261 parser (own implementation; rsip is used as a test oracle only, see README).
//! SKELETON: implemented by the sip-parser work item.

use super::message::Message;
use super::typed::{CSeq, NameAddr, RAck, Via};
use super::uri::Uri;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("message has no blank line ending the header section")]
    NoHeaderEnd,
    #[error("bad start line")]
    BadStartLine,
    #[error("unsupported SIP version")]
    BadVersion,
    #[error("bad header line")]
    BadHeaderLine,
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    #[error("malformed header {0}")]
    BadHeader(&'static str),
    #[error("Content-Length does not match the body")]
    BadContentLength,
    #[error("malformed URI")]
    BadUri,
    #[error("message too large")]
    TooLarge,
}

pub fn parse_message(_data: &[u8]) -> Result<Message, ParseError> {
    Err(ParseError::BadStartLine)
}
pub fn parse_uri(_s: &str) -> Result<Uri, ParseError> {
    Err(ParseError::BadUri)
}
pub fn parse_name_addr(_s: &str) -> Result<NameAddr, ParseError> {
    Err(ParseError::BadUri)
}
pub fn parse_via(_s: &str) -> Result<Via, ParseError> {
    Err(ParseError::BadHeader("Via"))
}
pub fn parse_cseq(_s: &str) -> Result<CSeq, ParseError> {
    Err(ParseError::BadHeader("CSeq"))
}
pub fn parse_rack(_s: &str) -> Result<RAck, ParseError> {
    Err(ParseError::BadHeader("RAck"))
}
pub fn check_request_sanity(_req: &super::message::Request) -> Result<(), ParseError> {
    Ok(())
}
