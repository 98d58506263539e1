//! Digest authentication towards peers that challenge veil (trunks with `auth`): a 401 or
//! 407 to any request veil sent is answered once by sending the request again with
//! credentials (new branch, CSeq + 1, same Call-ID and tags); a second challenge, or one
//! veil cannot answer, reaches the call as 403. Challenges and credentials stay on their
//! leg (see `header_policy`) and are never logged.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use crate::config::AuthConfig;
use crate::media::Side;
use crate::sip::digest::{Answer, Challenge};
use crate::sip::{HeaderName, Response, SipHeaders};
use crate::transaction::ClientTxId;

use super::engine::Engine;

#[derive(Debug, Default)]
pub(super) struct AuthState {
    /// Client transactions that already carry credentials: another challenge fails them.
    retried: HashSet<ClientTxId>,
    /// Per peer, the last nonce answered and how many times (RFC 7616 nonce count).
    nonces: HashMap<String, (String, u32)>,
}

/// Replace the `branch` parameter of a Via value.
fn with_branch(via: &str, branch: &str) -> String {
    let Some(start) = via.find(";branch=") else {
        return format!("{via};branch={branch}");
    };
    let value_start = start + ";branch=".len();
    let end = via[value_start..]
        .find([';', ',', ' '])
        .map_or(via.len(), |i| value_start + i);
    format!("{}{}{}", &via[..value_start], branch, &via[end..])
}

impl Engine {
    /// The final response `resp` (401/407) to client transaction `old`: send the request
    /// again with credentials if the peer has them and this is the first challenge.
    /// Returns true when the challenge was answered (the response is consumed).
    pub(super) fn answer_challenge(
        &mut self,
        old: ClientTxId,
        resp: &Response,
        now: Instant,
    ) -> bool {
        let Some((req, flow)) = self.tx.take_challenged(old) else {
            return false;
        };
        if self.auth.retried.remove(&old) {
            tracing::warn!(code = resp.code, method = %req.method, "credentials refused by peer");
            return false;
        }
        let key = self.owners.get(&old).and_then(|o| o.call());
        let call_id = req.call_id().unwrap_or_default().to_string();
        let from_call = key.and_then(|k| self.calls.get(&k)).and_then(|c| {
            let side = if c.b.call_id == call_id {
                Side::B
            } else {
                Side::A
            };
            let p = c.peers.peers.get(c.leg(side).peer)?;
            Some((p.name.clone(), p.cfg.auth.clone()))
        });
        let peer = from_call.or_else(|| {
            let i = self.peers.identify(&flow)?;
            let p = &self.peers.peers[i];
            Some((p.name.clone(), p.cfg.auth.clone()))
        });
        let Some((peer, Some(creds))) = peer else {
            tracing::info!(code = resp.code, method = %req.method, "challenged by a peer without credentials");
            return false;
        };
        let (auth_name, challenge_name) = if resp.code == 401 {
            (HeaderName::Authorization, HeaderName::WwwAuthenticate)
        } else {
            (
                HeaderName::ProxyAuthorization,
                HeaderName::ProxyAuthenticate,
            )
        };
        let Some(challenge) = Challenge::choose(
            resp.headers.get_all(&challenge_name),
            creds.realm.as_deref(),
        ) else {
            tracing::warn!(%peer, code = resp.code, "no digest challenge veil can answer");
            return false;
        };
        let Ok(cseq) = req.cseq() else { return false };
        let nc = self.next_nc(&peer, &challenge.nonce);
        let cnonce = format!("{}{}", self.ids.tag(), self.ids.tag());
        let uri = req.uri.to_string();
        let value = answer(&creds, req.method.as_str(), &uri, &cnonce, nc).header(&challenge);
        let seq = cseq.seq.wrapping_add(1);
        let mut again = req.clone();
        again.headers.remove_all(&auth_name);
        again.headers.push(auth_name, value);
        if let Some(via) = again.headers.get(&HeaderName::Via).map(str::to_string) {
            let branch = self.ids.branch();
            again
                .headers
                .set(HeaderName::Via, with_branch(&via, &branch));
        }
        again
            .headers
            .set(HeaderName::CSeq, format!("{seq} {}", req.method));
        let new = self.send_request(again, flow, now);
        self.auth.retried.insert(new);
        tracing::info!(%peer, code = resp.code, method = %req.method, algorithm = challenge.algorithm.as_str(), nc, "answering digest challenge");
        if let Some(owner) = self.owners.remove(&old) {
            match key {
                Some(k) => self.own(k, new, owner),
                None => {
                    self.owners.insert(new, owner);
                }
            }
        }
        if let Some(call) = key.and_then(|k| self.calls.get_mut(&k)) {
            if let Some(attempt) = call.attempt_mut()
                && attempt.invite == Some(old)
            {
                attempt.invite = Some(new);
                call.b.invite_cseq = seq;
            }
            for side in [Side::A, Side::B] {
                let leg = call.leg_mut(side);
                if leg.call_id == call_id {
                    if seq > leg.local_cseq {
                        leg.local_cseq = seq;
                    }
                    if leg.last_invite_ctx == Some(old) {
                        leg.last_invite_ctx = Some(new);
                    }
                }
            }
            for p in call.pending.iter_mut().filter(|p| p.ctx == old) {
                p.ctx = new;
            }
        }
        true
    }

    /// Forget the retry mark of a finished client transaction.
    pub(super) fn auth_done(&mut self, id: ClientTxId) {
        self.auth.retried.remove(&id);
    }

    fn next_nc(&mut self, peer: &str, nonce: &str) -> u32 {
        let e = self
            .auth
            .nonces
            .entry(peer.to_string())
            .or_insert_with(|| (String::new(), 0));
        if e.0 != nonce {
            *e = (nonce.to_string(), 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1
    }
}

fn answer<'a>(
    creds: &'a AuthConfig,
    method: &'a str,
    uri: &'a str,
    cnonce: &'a str,
    nc: u32,
) -> Answer<'a> {
    Answer {
        username: &creds.username,
        password: &creds.password,
        method,
        uri,
        cnonce,
        nc,
    }
}

#[cfg(test)]
mod tests {
    use super::with_branch;

    #[test]
    fn branch_is_replaced_in_place() {
        assert_eq!(
            with_branch(
                "SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKold;rport",
                "z9hG4bKnew"
            ),
            "SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bKnew;rport"
        );
        assert_eq!(
            with_branch("SIP/2.0/UDP h;branch=z9hG4bKold", "z9hG4bKnew"),
            "SIP/2.0/UDP h;branch=z9hG4bKnew"
        );
        assert_eq!(
            with_branch("SIP/2.0/UDP h", "z9hG4bKnew"),
            "SIP/2.0/UDP h;branch=z9hG4bKnew"
        );
    }
}
