//! Transaction identity: which transaction a message belongs to (RFC 3261 §17.1.3, §17.2.3).

use crate::sip::{Method, Request, Response};

use super::raw;

/// Identifies a server transaction from the request that created it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ServerKey {
    /// RFC 3261: magic-cookie branch plus sent-by (two clients may pick the same branch)
    /// plus method, with ACK counted as INVITE so it finds the INVITE it acknowledges.
    Branch {
        branch: String,
        sent_by: String,
        method: Method,
    },
    /// RFC 2543 peers (no magic cookie): the request's identifying fields. The To tag is
    /// left out so that an ACK (which carries the tag of our response) still matches its
    /// INVITE; Call-ID, From tag and CSeq already make collisions unlikely.
    Legacy {
        uri: String,
        from_tag: String,
        call_id: String,
        cseq: u32,
        via: String,
        method: Method,
    },
}

/// ACK belongs to the INVITE transaction it acknowledges.
fn matching_method(method: &Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        m => m.clone(),
    }
}

impl ServerKey {
    /// `None` when the request carries too little to be matched at all: it is then always
    /// treated as new.
    pub fn of_request(req: &Request) -> Option<ServerKey> {
        let method = matching_method(&req.method);
        let via = raw::top_via(&req.headers);
        if let Some(via) = &via
            && let (Some(branch), Some(sent_by)) = (via.rfc3261_branch(), &via.sent_by)
        {
            return Some(ServerKey::Branch {
                branch: branch.to_string(),
                sent_by: sent_by.clone(),
                method,
            });
        }
        let call_id = raw::call_id(&req.headers)?;
        let (cseq, _) = raw::cseq(&req.headers)?;
        let from_tag = req
            .headers
            .get(&crate::sip::HeaderName::From)
            .and_then(raw::tag)
            .unwrap_or("");
        Some(ServerKey::Legacy {
            uri: req.uri.to_string(),
            from_tag: from_tag.to_string(),
            call_id: call_id.to_string(),
            cseq,
            via: via.map(|v| v.value.to_string()).unwrap_or_default(),
            method,
        })
    }

    /// The same key for another method: a CANCEL's key turned into its INVITE's.
    pub fn with_method(&self, method: Method) -> ServerKey {
        let mut key = self.clone();
        match &mut key {
            ServerKey::Branch { method: m, .. } | ServerKey::Legacy { method: m, .. } => {
                *m = method
            }
        }
        key
    }
}

/// Identifies a client transaction: the branch we put in the top Via and the CSeq method
/// (a CANCEL shares its INVITE's branch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey {
    branch: String,
    method: Method,
}

impl ClientKey {
    pub fn of_request(req: &Request) -> Option<ClientKey> {
        let branch = raw::top_via(&req.headers)?.branch?.to_string();
        Some(ClientKey {
            branch,
            method: req.method.clone(),
        })
    }

    /// The key of the INVITE a CANCEL with this key cancels (same branch).
    pub fn invite(&self) -> ClientKey {
        ClientKey {
            branch: self.branch.clone(),
            method: Method::Invite,
        }
    }

    pub fn of_response(resp: &Response) -> Option<ClientKey> {
        let branch = raw::top_via(&resp.headers)?.branch?.to_string();
        let (_, method) = raw::cseq(&resp.headers)?;
        Some(ClientKey { branch, method })
    }
}
