//! HTTP Digest as SIP uses it towards trunks that challenge veil (RFC 3261 §22.4,
//! RFC 2617, RFC 7616 for SHA-256, RFC 8760 for SIP): parse a `WWW-Authenticate` /
//! `Proxy-Authenticate` challenge and compute the `Authorization` answer. Client side
//! only: veil never verifies a digest, so no secret is ever compared here.
//! Hashes come from RustCrypto (`md-5`, `sha2`).

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// Hash algorithms veil answers with, weakest first (so `max` picks the strongest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(token: &str) -> Option<Algorithm> {
        match token.to_ascii_uppercase().as_str() {
            "MD5" => Some(Algorithm::Md5),
            "MD5-SESS" => Some(Algorithm::Md5Sess),
            "SHA-256" => Some(Algorithm::Sha256),
            "SHA-256-SESS" => Some(Algorithm::Sha256Sess),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn sess(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    fn hash(self, data: &str) -> String {
        let bytes = match self {
            Algorithm::Md5 | Algorithm::Md5Sess => Md5::digest(data.as_bytes()).to_vec(),
            Algorithm::Sha256 | Algorithm::Sha256Sess => Sha256::digest(data.as_bytes()).to_vec(),
        };
        hex(&bytes)
    }
}

fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[(b >> 4) as usize] as char);
        s.push(HEX[(b & 15) as usize] as char);
    }
    s
}

/// One `Digest` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// The server offered `qop=auth` (veil never uses auth-int: bodies change per leg).
    pub qop_auth: bool,
    /// The server offered only qop values veil does not do (auth-int alone).
    pub qop_unsupported: bool,
    pub stale: bool,
}

/// Split `k=v, k="v, with comma"` into pairs; names lower-cased, quotes and escapes removed.
fn params(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else { break };
        let name = rest[..eq].trim().trim_start_matches(',').trim();
        rest = rest[eq + 1..].trim_start();
        let mut value = String::new();
        if let Some(q) = rest.strip_prefix('"') {
            let mut chars = q.char_indices();
            let mut end = q.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => {
                        if let Some((_, n)) = chars.next() {
                            value.push(n);
                        }
                    }
                    '"' => {
                        end = i + 1;
                        break;
                    }
                    c => value.push(c),
                }
            }
            rest = q.get(end..).unwrap_or("");
            rest = rest.trim_start();
            rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = rest.get(end + 1..).unwrap_or("").trim_start();
        }
        out.push((name.to_ascii_lowercase(), value));
    }
    out
}

impl Challenge {
    /// Parse one challenge header value. `None` for other schemes, unknown algorithms or a
    /// challenge without realm or nonce.
    pub fn parse(value: &str) -> Option<Challenge> {
        let v = value.trim_start();
        let (scheme, rest) = v.split_at(v.find(char::is_whitespace)?);
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        let (mut realm, mut nonce, mut opaque) = (None, None, None);
        let mut algorithm = Algorithm::Md5;
        let (mut qop_auth, mut qop_any, mut stale) = (false, false, false);
        for (k, v) in params(rest) {
            match k.as_str() {
                "realm" => realm = Some(v),
                "nonce" => nonce = Some(v),
                "opaque" => opaque = Some(v),
                "algorithm" => algorithm = Algorithm::parse(&v)?,
                "qop" => {
                    qop_any = true;
                    qop_auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"));
                }
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        Some(Challenge {
            realm: realm?,
            nonce: nonce?,
            opaque,
            algorithm,
            qop_auth,
            qop_unsupported: qop_any && !qop_auth,
            stale,
        })
    }

    /// The challenge to answer among several headers (RFC 8760 §2.4: the strongest
    /// algorithm veil supports), restricted to `realm` when the peer's config names one.
    pub fn choose<'a>(
        values: impl IntoIterator<Item = &'a str>,
        realm: Option<&str>,
    ) -> Option<Challenge> {
        values
            .into_iter()
            .filter_map(Challenge::parse)
            .filter(|c| !c.qop_unsupported)
            .filter(|c| realm.is_none_or(|r| r == c.realm))
            .max_by_key(|c| c.algorithm)
    }
}

/// What is being authorised and by whom.
#[derive(Debug)]
pub struct Answer<'a> {
    pub username: &'a str,
    pub password: &'a str,
    pub method: &'a str,
    /// The Request-URI, exactly as sent.
    pub uri: &'a str,
    /// Client nonce (used with qop and the -sess algorithms).
    pub cnonce: &'a str,
    /// Nonce count for this nonce, from 1.
    pub nc: u32,
}

impl Answer<'_> {
    /// The `response` value (request-digest).
    pub fn response(&self, c: &Challenge) -> String {
        let alg = c.algorithm;
        let mut ha1 = alg.hash(&format!("{}:{}:{}", self.username, c.realm, self.password));
        if alg.sess() {
            ha1 = alg.hash(&format!("{ha1}:{}:{}", c.nonce, self.cnonce));
        }
        let ha2 = alg.hash(&format!("{}:{}", self.method, self.uri));
        if c.qop_auth {
            alg.hash(&format!(
                "{ha1}:{}:{:08x}:{}:auth:{ha2}",
                c.nonce, self.nc, self.cnonce
            ))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", c.nonce))
        }
    }

    /// The full `Authorization` / `Proxy-Authorization` header value.
    pub fn header(&self, c: &Challenge) -> String {
        let mut h = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", response=\"{}\", algorithm={}",
            quote(self.username),
            quote(&c.realm),
            quote(&c.nonce),
            quote(self.uri),
            self.response(c),
            c.algorithm.as_str()
        );
        if c.qop_auth || c.algorithm.sess() {
            h.push_str(&format!(", cnonce=\"{}\"", quote(self.cnonce)));
        }
        if c.qop_auth {
            h.push_str(&format!(", qop=auth, nc={:08x}", self.nc));
        }
        if let Some(o) = &c.opaque {
            h.push_str(&format!(", opaque=\"{}\"", quote(o)));
        }
        h
    }
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_md5_qop_auth() {
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .unwrap();
        assert!(c.qop_auth);
        assert_eq!(c.algorithm, Algorithm::Md5);
        let a = Answer {
            username: "Mufasa",
            password: "Circle Of Life",
            method: "GET",
            uri: "/dir/index.html",
            cnonce: "0a4f113b",
            nc: 1,
        };
        assert_eq!(a.response(&c), "6629fae49393a05397450978507c4ef1");
        let h = a.header(&c);
        assert!(h.contains("nc=00000001"), "{h}");
        assert!(
            h.contains(r#"opaque="5ccc069c403ebaf9f0171e9517f40e41""#),
            "{h}"
        );
        assert!(h.contains("qop=auth,"), "{h}");
    }

    #[test]
    fn rfc7616_md5_and_sha256() {
        let base = r#"realm="http-auth@example.org", qop="auth, auth-int", nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#;
        let md5 = Challenge::parse(&format!("Digest {base}, algorithm=MD5")).unwrap();
        let sha = Challenge::parse(&format!("Digest {base}, algorithm=SHA-256")).unwrap();
        let a = Answer {
            username: "Mufasa",
            password: "Circle of Life",
            method: "GET",
            uri: "/dir/index.html",
            cnonce: "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            nc: 1,
        };
        assert_eq!(a.response(&md5), "8ca523f5e9506fed4657c9700eebdbec");
        assert_eq!(
            a.response(&sha),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        // Offered both: the strongest wins.
        let md5h = format!("Digest {base}, algorithm=MD5");
        let shah = format!("Digest {base}, algorithm=SHA-256");
        let chosen = Challenge::choose([md5h.as_str(), shah.as_str()], None).unwrap();
        assert_eq!(chosen.algorithm, Algorithm::Sha256);
    }

    #[test]
    fn nc_changes_the_answer_and_no_qop_is_rfc2069() {
        let c = Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth""#).unwrap();
        let mut a = Answer {
            username: "u",
            password: "p",
            method: "INVITE",
            uri: "sip:1@h",
            cnonce: "c",
            nc: 1,
        };
        let first = a.response(&c);
        a.nc = 2;
        assert_ne!(first, a.response(&c));
        let plain = Challenge::parse(r#"Digest realm="r", nonce="n""#).unwrap();
        let h = a.header(&plain);
        assert!(!h.contains("qop") && !h.contains("cnonce"), "{h}");
        // H(H(u:r:p):n:H(INVITE:sip:1@h))
        let ha1 = Algorithm::Md5.hash("u:r:p");
        let ha2 = Algorithm::Md5.hash("INVITE:sip:1@h");
        assert_eq!(
            a.response(&plain),
            Algorithm::Md5.hash(&format!("{ha1}:n:{ha2}"))
        );
    }

    #[test]
    fn rejects_what_it_cannot_answer() {
        assert!(Challenge::parse(r#"Basic realm="r""#).is_none());
        assert!(Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=AKAv1-MD5"#).is_none());
        assert!(Challenge::parse(r#"Digest nonce="n""#).is_none());
        let only_int = r#"Digest realm="r", nonce="n", qop="auth-int""#;
        assert!(Challenge::choose([only_int], None).is_none());
        let other = r#"Digest realm="other", nonce="n""#;
        assert!(Challenge::choose([other], Some("mine")).is_none());
        assert!(Challenge::choose([other], Some("other")).is_some());
        // Escapes and commas inside quotes.
        let c = Challenge::parse(r#"Digest realm="a\"b,c", nonce="x""#).unwrap();
        assert_eq!(c.realm, "a\"b,c");
    }
}
