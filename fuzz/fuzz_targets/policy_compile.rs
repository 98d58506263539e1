//! Any input as a policy file: compiling must return a policy or errors, never panic; a
//! compiled policy must evaluate any request facts without panicking.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use veil::policy::Facts;
use veil::sip::{HeaderName, Headers};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok((policy, _)) = veil::config::load::compile_policy_text(Path::new("policy.yaml"), &text)
    else {
        return;
    };
    let mut headers = Headers::new();
    headers.push(HeaderName::parse("X-Account"), "4711");
    for (peer, user) in [
        (Some("pbx"), "+4930123456"),
        (None, ""),
        (Some("carrier"), "*#"),
    ] {
        let facts = Facts {
            from_peer: peer,
            to_user: user,
            from_user: "alice",
            ruri_host: "example.com",
            method: "INVITE",
            headers: &headers,
        };
        let _ = policy.evaluate(&facts);
    }
});
