use std::path::Path;

use super::*;
use crate::config::load::compile_policy_text;

fn policy(yaml: &str) -> Policy {
    match compile_policy_text(Path::new("p.yaml"), yaml) {
        Ok((p, _)) => p,
        Err(e) => panic!("{e:#?}"),
    }
}

fn errors(yaml: &str) -> Vec<(Option<usize>, String, String)> {
    match compile_policy_text(Path::new("p.yaml"), yaml) {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.into_iter().map(|e| (e.line, e.key, e.message)).collect(),
    }
}

struct Req {
    from_peer: Option<&'static str>,
    to_user: &'static str,
    from_user: &'static str,
    ruri_host: &'static str,
    method: &'static str,
    headers: Headers,
}

impl Req {
    fn new(from_peer: Option<&'static str>, to_user: &'static str) -> Req {
        Req {
            from_peer,
            to_user,
            from_user: "200",
            ruri_host: "127.0.0.1",
            method: "INVITE",
            headers: Headers::new(),
        }
    }
    fn facts(&self) -> Facts<'_> {
        Facts {
            from_peer: self.from_peer,
            to_user: self.to_user,
            from_user: self.from_user,
            ruri_host: self.ruri_host,
            method: self.method,
            headers: &self.headers,
        }
    }
}

fn route(d: Decision) -> Route {
    match d {
        Decision::Route(r) => r,
        other => panic!("expected a route, got {other:?}"),
    }
}

const BASIC: &str = r#"
rules:
  - name: pbx-to-carrier
    when:
      from_peer: pbx
      to_user: '^\+?[1-9][0-9]{6,14}$'
    then:
      route: [carrier-a, carrier-b]
  - name: pbx-any
    when: {from_peer: pbx}
    then: {route: carrier-c}
  - name: deny
    then: {reject: 403}
"#;

#[test]
fn first_matching_rule_decides() {
    let p = policy(BASIC);
    let r = route(p.evaluate(&Req::new(Some("pbx"), "+31201234567").facts()));
    assert_eq!(r.rule, "pbx-to-carrier");
    assert_eq!(r.targets, ["carrier-a", "carrier-b"]);
    assert_eq!(
        (r.to_user.as_str(), r.from_user.as_str()),
        ("+31201234567", "200")
    );
    // The regex fails (too short), so the next rule for pbx decides.
    let r = route(p.evaluate(&Req::new(Some("pbx"), "12").facts()));
    assert_eq!(
        (r.rule.as_str(), r.targets.as_slice()),
        ("pbx-any", &["carrier-c".to_string()][..])
    );
    // Unknown source: only the rule without `when` matches.
    assert_eq!(
        p.evaluate(&Req::new(None, "+31201234567").facts()),
        Decision::Reject {
            rule: "deny".into(),
            code: 403,
            reason: "Forbidden".into()
        }
    );
}

#[test]
fn no_rule_matching_is_no_match() {
    let p = policy(
        "rules:\n  - name: only-pbx\n    when: {from_peer: [pbx, pbx2]}\n    then: {route: [c]}\n",
    );
    assert_eq!(
        p.evaluate(&Req::new(Some("carrier"), "1").facts()),
        Decision::NoMatch
    );
    assert!(matches!(
        p.evaluate(&Req::new(Some("pbx2"), "1").facts()),
        Decision::Route(_)
    ));
    assert_eq!(
        policy("rules: []\n").evaluate(&Req::new(Some("pbx"), "1").facts()),
        Decision::NoMatch
    );
}

#[test]
fn regexes_match_as_written_not_anchored() {
    let p = policy("rules:\n  - name: r\n    when: {to_user: '555'}\n    then: {route: [c]}\n");
    assert!(matches!(
        p.evaluate(&Req::new(None, "0555123").facts()),
        Decision::Route(_)
    ));
    assert_eq!(
        p.evaluate(&Req::new(None, "0123").facts()),
        Decision::NoMatch
    );
}

#[test]
fn method_ruri_host_from_user_and_headers() {
    let p = policy(
        r#"
rules:
  - name: r
    when:
      method: [INVITE, message]
      ruri_host: '^sbc\.example$'
      from_user: '^2'
      headers: {X-Tenant: '^acme$'}
    then: {route: [c]}
"#,
    );
    let mut req = Req::new(None, "1");
    req.ruri_host = "sbc.example";
    req.headers
        .push(crate::sip::HeaderName::parse("x-tenant"), "other");
    assert_eq!(p.evaluate(&req.facts()), Decision::NoMatch);
    req.headers
        .push(crate::sip::HeaderName::parse("X-Tenant"), "acme");
    assert!(
        matches!(p.evaluate(&req.facts()), Decision::Route(_)),
        "second header line matches"
    );
    req.method = "MESSAGE";
    assert!(matches!(p.evaluate(&req.facts()), Decision::Route(_)));
    req.method = "OPTIONS";
    assert_eq!(p.evaluate(&req.facts()), Decision::NoMatch);
    req.method = "INVITE";
    req.from_user = "300";
    assert_eq!(p.evaluate(&req.facts()), Decision::NoMatch);
    req.from_user = "200";
    req.ruri_host = "other";
    assert_eq!(p.evaluate(&req.facts()), Decision::NoMatch);
}

#[test]
fn rewrite_strip_replace_prefix_and_header_templates() {
    let p = policy(
        r#"
rules:
  - name: national-to-e164
    when: {to_user: '^0[1-9]'}
    then:
      rewrite:
        to_user: {strip: 1, prefix: '+31'}
        from_user: {replace: {match: '^([0-9]{3})$', with: '+3120123$1'}}
      set_headers:
        P-Asserted-Identity: '<sip:${from_user}@pbx.example>'
        X-Dialled: '${to_user}'
      route: [c]
  - name: strip-all
    then:
      rewrite: {to_user: {strip: 40, replace: {match: '^$', with: 'empty'}}}
      route: [c]
"#,
    );
    let r = route(p.evaluate(&Req::new(None, "0201234567").facts()));
    assert_eq!(r.to_user, "+31201234567");
    assert_eq!(r.from_user, "+3120123200");
    assert_eq!(
        r.set_headers,
        [
            (
                "P-Asserted-Identity".to_string(),
                "<sip:+3120123200@pbx.example>".to_string()
            ),
            ("X-Dialled".to_string(), "+31201234567".to_string()),
        ]
    );
    let r = route(p.evaluate(&Req::new(None, "+44").facts()));
    assert_eq!(
        (r.rule.as_str(), r.to_user.as_str()),
        ("strip-all", "empty")
    );
}

#[test]
fn user_rewrite_order_is_strip_replace_prefix() {
    let rw = UserRewrite {
        strip: 2,
        replace: Some((Regex::new("^1").unwrap(), "9".into())),
        prefix: "+".into(),
    };
    assert_eq!(rw.apply("00123"), "+923");
    assert_eq!(UserRewrite::default().apply("abc"), "abc");
    assert_eq!(
        UserRewrite {
            strip: 1,
            ..Default::default()
        }
        .apply("é1"),
        "1"
    );
}

#[test]
fn reject_forms() {
    let p = policy(
        "rules:\n  - name: busy\n    then: {reject: {code: 486, reason: Not Today}}\n  - name: x\n    then: {reject: 699}\n",
    );
    assert_eq!(
        p.evaluate(&Req::new(None, "1").facts()),
        Decision::Reject {
            rule: "busy".into(),
            code: 486,
            reason: "Not Today".into()
        }
    );
    let p = policy("rules:\n  - name: x\n    then: {reject: 699}\n");
    assert!(matches!(
        p.evaluate(&Req::new(None, "1").facts()),
        Decision::Reject { code: 699, .. }
    ));
}

#[test]
fn explain_says_why_each_rule_did_not_match() {
    let p = policy(BASIC);
    let e = p.explain(&Req::new(Some("carrier-a"), "12").facts());
    assert_eq!(e.len(), 3);
    assert_eq!(e[0].0, "pbx-to-carrier");
    assert!(e[0].1.as_ref().unwrap_err().contains("from_peer"), "{e:?}");
    assert!(e[1].1.is_err());
    assert_eq!(e[2], ("deny".to_string(), Ok(())));
    let e = p.explain(&Req::new(Some("pbx"), "12").facts());
    assert_eq!(e.len(), 2, "stops at the deciding rule");
    assert!(e[0].1.as_ref().unwrap_err().contains("to_user"));
}

#[test]
fn compile_errors_have_keys_and_lines() {
    let e = errors(
        r#"rules:
  - name: a
    when:
      from_user: '(('
      headers: {'Bad Header': x}
    then:
      route: []
  - name: b
    then:
      reject: 302
  - name: c
    then: {}
  - name: d
    then:
      reject: 403
      set_headers: {X-A: b}
  - name: e
    then:
      set_headers: {Via: x, X-B: '${nope}'}
      rewrite: {to_user: {prefix: 'a b', replace: {match: '[', with: ''}}}
      route: [x]
"#,
    );
    let keys: Vec<(Option<usize>, &str)> = e.iter().map(|(l, k, _)| (*l, k.as_str())).collect();
    assert_eq!(
        keys,
        [
            (Some(4), "rules[0].when.from_user"),
            (Some(5), "rules[0].when.headers.Bad Header"),
            (Some(7), "rules[0].then.route"),
            (Some(10), "rules[1].then.reject"),
            (Some(12), "rules[2].then"),
            (Some(14), "rules[3].then"),
            (Some(20), "rules[4].then.rewrite.to_user.prefix"),
            (Some(19), "rules[4].then.set_headers.Via"),
            (Some(19), "rules[4].then.set_headers.X-B"),
        ],
        "{e:#?}"
    );
    assert!(e[0].2.starts_with("invalid regex"));
}

#[test]
fn policy_shape_errors_are_strict() {
    let e = errors("rules:\n  - name: a\n    then: {route: [c]}\n    whne: {}\n");
    assert_eq!((e[0].0, e[0].1.as_str()), (Some(4), "rules[0].whne"));
    let e = errors("rules:\n  - name: a\n    then: {route: [c], reject: {code: 403, why: x}}\n");
    assert_eq!(e[0].1, "rules[0].then.reject.why");
    let e = errors("rules:\n  - name: a\n  - name: b\n    then: {route: [c]}\n");
    assert_eq!(e[0].1, "rules[0].then");
    assert!(e[0].2.contains("missing required key"));
}

#[test]
fn huge_regexes_are_config_errors_not_memory() {
    // `\w{150}` compiles to about 7 MiB: more than veil's cap (4 MiB), less than the regex
    // crate's default (10 MiB): accepted by `Regex::new`, refused in a policy, naming file,
    // line and key.
    const HUGE: &str = r"\w{150}";
    assert!(
        regex::Regex::new(HUGE).is_ok(),
        "within the crate's default cap"
    );
    let text = format!(
        "rules:\n  - name: a\n    when:\n      to_user: '^1$'\n      from_user: '{HUGE}'\n    \
         then:\n      route: [c]\n      rewrite: {{to_user: {{replace: {{match: '{HUGE}', with: x}}}}}}\n"
    );
    let e = match compile_policy_text(Path::new("p.yaml"), &text) {
        Ok(_) => panic!("a huge regex was accepted"),
        Err(e) => e,
    };
    let shown: Vec<String> = e.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 2, "{shown:#?}");
    assert!(
        shown[0].starts_with("p.yaml:5: rules[0].when.from_user: regex too large"),
        "{shown:#?}"
    );
    assert!(
        shown[1]
            .starts_with("p.yaml:8: rules[0].then.rewrite.to_user.replace.match: regex too large"),
        "{shown:#?}"
    );
}
