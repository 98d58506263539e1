//! The policy file as written (YAML shape, strict): compiled into `Policy` by `compile`.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub rules: Vec<RuleSpec>,
}

/// `PolicyFile` with every field optional: lets the loader check one section at a time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialPolicyFile {
    #[serde(default)]
    pub rules: Option<Vec<RuleSpec>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    pub name: String,
    /// Absent: the rule matches every request.
    #[serde(default)]
    pub when: Option<WhenSpec>,
    pub then: ThenSpec,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WhenSpec {
    #[serde(default)]
    pub from_peer: Option<OneOrMany>,
    #[serde(default)]
    pub to_user: Option<String>,
    #[serde(default)]
    pub from_user: Option<String>,
    #[serde(default)]
    pub ruri_host: Option<String>,
    /// Absent: INVITE only (policies keep their meaning as methods are added); `*`: any.
    #[serde(default)]
    pub method: Option<OneOrMany>,
    /// Header name -> regex; the header must be present and one of its lines must match.
    #[serde(default)]
    pub headers: Option<OrderedMap>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThenSpec {
    #[serde(default)]
    pub rewrite: Option<RewriteSpec>,
    #[serde(default)]
    pub set_headers: Option<OrderedMap>,
    #[serde(default)]
    pub route: Option<OneOrMany>,
    #[serde(default)]
    pub reject: Option<RejectSpec>,
    /// Maximum call length for calls this rule routes (overrides peers and the global).
    #[serde(default)]
    pub max_duration: Option<crate::config::Duration>,
    /// Session timer settings for both legs of calls this rule routes.
    #[serde(default)]
    pub session_timer: Option<crate::config::SessionTimerConfig>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteSpec {
    #[serde(default)]
    pub to_user: Option<UserRewriteSpec>,
    #[serde(default)]
    pub from_user: Option<UserRewriteSpec>,
}

/// Applied in order: strip leading characters, regex replace, prefix.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRewriteSpec {
    #[serde(default)]
    pub strip: usize,
    #[serde(default)]
    pub replace: Option<ReplaceSpec>,
    #[serde(default)]
    pub prefix: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaceSpec {
    #[serde(rename = "match")]
    pub pattern: String,
    /// Replacement with `$1` / `${name}` group references (regex crate syntax).
    pub with: String,
}

/// `reject: 403` or `reject: {code: 403, reason: Forbidden}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectSpec {
    pub code: u64,
    pub reason: Option<String>,
}

impl<'de> Deserialize<'de> for RejectSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Long {
            code: u64,
            #[serde(default)]
            reason: Option<String>,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RejectSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SIP status code, or {code, reason}")
            }
            fn visit_u64<E: de::Error>(self, code: u64) -> Result<RejectSpec, E> {
                Ok(RejectSpec { code, reason: None })
            }
            fn visit_i64<E: de::Error>(self, code: i64) -> Result<RejectSpec, E> {
                u64::try_from(code)
                    .map(|code| RejectSpec { code, reason: None })
                    .map_err(|_| E::custom("a status code cannot be negative"))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RejectSpec, A::Error> {
                let l = Long::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RejectSpec {
                    code: l.code,
                    reason: l.reason,
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings (`from_peer: pbx` or `from_peer: [a, b]`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a name or a list of names")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(OneOrMany(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string -> string mapping that keeps the written order (headers are set in order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OrderedMap(pub Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of header names to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut v = Vec::new();
                while let Some((k, val)) = map.next_entry::<String, String>()? {
                    v.push((k, val));
                }
                Ok(OrderedMap(v))
            }
        }
        d.deserialize_map(V)
    }
}
