//! The whole engine, through the unit tests' in-memory harness (`veil::b2bua::harness`):
//! a sequence of templated SIP messages from the PBX (127.0.0.2), the carrier (.3), the
//! backup (.4) and a stranger (.9), each mutated (header values, numbers, dropped headers,
//! SDP lines), with time steps between them. Templates answer veil's actual requests and
//! name its actual dialogs (Call-ID, tags, branches captured from its output), so inputs
//! reach answered calls, re-INVITEs, session refreshes and teardown, not just 481s.
//!
//! After every step: no panic, veil's messages parse, a leak guard hit only where the
//! fuzzer itself planted an identifier, no 2xx to an INVITE offer without an SDP answer,
//! media streams opened and closed in pairs. At the end, after two hours of engine time:
//! no call, no stream, no relay port, no transaction left.
#![no_main]

#[path = "engine_call/checks.rs"]
mod checks;
#[path = "engine_call/input.rs"]
mod input;
#[path = "engine_call/msg.rs"]
mod msg;
#[path = "engine_call/party.rs"]
mod party;

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use veil::b2bua::harness::{CONFIG, Harness, POLICY};
use veil::config::Config;
use veil::observe::Metrics;
use veil::policy::Policy;

use checks::Checks;
use input::{Action, MAX_MUTATIONS, MAX_OPS, Mutation, Op, Sender, Step, Template};
use party::Party;

/// The harness config with a max call duration under the final two hours, so that
/// every call has ended by then whatever its parties did.
fn config() -> &'static (Arc<Config>, Arc<Policy>) {
    static LOADED: OnceLock<(Arc<Config>, Arc<Policy>)> = OnceLock::new();
    LOADED.get_or_init(|| {
        let text = format!("{CONFIG}calls:\n  max_duration: 1h\n");
        let dir = std::env::temp_dir().join(format!("veil-fuzz-engine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("policy.yaml"), POLICY).expect("policy file");
        let loaded = veil::config::load::load_text(&dir.join("veil.yaml"), &text)
            .unwrap_or_else(|e| panic!("config: {e:?}"));
        let _ = std::fs::remove_dir_all(&dir);
        (Arc::new(loaded.config), Arc::new(loaded.policy))
    })
}

/// One metrics registry for every input: building it is most of a harness's setup.
fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new("fuzz").expect("metrics"))
}

const STRANGER: &str = "127.0.0.9:5060";

/// `ENGINE_CALL_TRACE=1`: print each step and the first line of what goes each way (to
/// see how deep an input gets; `cargo fuzz run engine_call <file>`); `=full`: whole
/// messages.
fn trace() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("ENGINE_CALL_TRACE").is_some())
}

fn trace_full() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("ENGINE_CALL_TRACE").is_some_and(|v| v == "full"))
}

fn first_line(data: &[u8]) -> String {
    if trace_full() {
        return String::from_utf8_lossy(data).escape_debug().to_string();
    }
    let end = data
        .iter()
        .position(|&b| b == b'\r')
        .unwrap_or(data.len().min(80));
    String::from_utf8_lossy(&data[..end]).into_owned()
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS && !u.is_empty() {
        match Op::arbitrary(&mut u) {
            Ok(mut op) => {
                op.mutations.truncate(MAX_MUTATIONS);
                ops.push(op);
            }
            Err(_) => break,
        }
    }
    run(&ops);
});

fn run(ops: &[Op]) {
    let (cfg, policy) = config();
    let mut h = Harness::with_metrics(cfg.clone(), policy.clone(), metrics().clone());
    h.engine.seed(1);
    // Hits are judged by `Checks::leak_hits` (planted identifiers are not veil's fault).
    h.allow_leak_hits = true;
    let mut parties = [
        Party::new("pbx", "127.0.0.2", 6000),
        Party::new("carrier", "127.0.0.3", 7000),
        Party::new("backup", "127.0.0.4", 7100),
    ];
    let stranger: SocketAddr = STRANGER.parse().unwrap();
    // The shared registry's leak guard counter, as the previous inputs left it.
    let mut checks = Checks::new(h.leak_hits());
    checks.allow_answerless_2xx = std::env::var_os(checks::ALLOW_ANSWERLESS_2XX).is_some();
    for op in ops {
        if checks.has_free_text() {
            checks.known_ids(h.leak_ids());
        }
        let (p, from) = match op.sender {
            Sender::Pbx => (0, None),
            Sender::Carrier => (1, None),
            Sender::Backup => (2, None),
            Sender::Stranger => (op.slot as usize % 3, Some(stranger)),
        };
        if let Some(data) = message(&mut parties[p], op, &mut checks) {
            let from = from.unwrap_or(parties[p].addr);
            checks.sent_by_party(from, &data);
            if trace() {
                eprintln!("{from} -> veil: {}", first_line(&data));
            }
            parties[p].last = Some(data.clone());
            h.inject_bytes(from, &data);
        }
        if trace() {
            eprintln!("  step {:?}", op.step);
        }
        step(&mut h, op.step);
        outputs(&mut h, &mut parties, &mut checks);
        checks.leak_hits(h.leak_hits(), op);
    }
    // The end: two hours on (max_duration ends what is left), then a few minutes of
    // timers for the BYEs that sends.
    step(&mut h, Step::Jump(120));
    h.advance(Duration::from_secs(300));
    outputs(&mut h, &mut parties, &mut checks);
    checks.leak_hits(h.leak_hits(), &"end");
    assert_eq!(h.engine.call_count(), 0, "calls left after two hours");
    assert!(
        h.engine.idle(),
        "engine not idle after two hours; awaiting a final response: {:?}",
        h.engine.awaiting_final()
    );
    assert_eq!(
        h.engine.transaction_count(),
        0,
        "transactions left after two hours"
    );
    assert_eq!(
        h.engine.call_routing_entries(),
        0,
        "dialogs, transaction owners or streams of ended calls left"
    );
    assert_eq!(checks.open_streams(), 0, "media streams never closed");
    assert_eq!(h.ports_in_use(), 0, "relay ports not returned");
}

/// The bytes `op` sends, if any: its template filled in from what the party knows,
/// then its mutations. Free-form values are noted for the leak check.
fn message(party: &mut Party, op: &Op, checks: &mut Checks) -> Option<Vec<u8>> {
    if let Template::Raw(bytes) = &op.template {
        checks.free_text(&String::from_utf8_lossy(bytes));
        return Some(bytes.clone());
    }
    if op.template == Template::Nothing && op.alt {
        // Retransmission of the party's last message.
        return party.last.clone();
    }
    let mut m = party.build(&op.template, op.slot, op.alt)?;
    for mutation in &op.mutations {
        match mutation {
            Mutation::Header(_, Action::Set(s) | Action::Add(s))
            | Mutation::Sdp(_, Action::Set(s) | Action::Add(s))
            | Mutation::Body(s) => checks.free_text(s),
            _ => {}
        }
        m.apply(mutation);
    }
    Some(m.bytes())
}

fn step(h: &mut Harness, s: Step) {
    match s {
        Step::None => {}
        Step::Millis(ms) => h.advance(Duration::from_millis(ms.into())),
        Step::Secs(s) => h.advance(Duration::from_secs(s.into())),
        Step::NextTimer => {
            if let Some(t) = h.engine.poll_timeout() {
                h.now = h.now.max(t);
                h.engine.handle_timeout(h.now);
                h.collect();
            }
        }
        Step::Jump(min) => {
            h.now += Duration::from_secs(60 * u64::from(min));
            h.engine.handle_timeout(h.now);
            h.collect();
        }
    }
}

/// Everything veil sent since the last step: checked, then taken in by its recipient.
fn outputs(h: &mut Harness, parties: &mut [Party; 3], checks: &mut Checks) {
    for (to, msg, text) in h.sent.drain(..) {
        if trace() {
            eprintln!("    veil -> {to}: {}", first_line(text.as_bytes()));
        }
        checks.sent_by_veil(to, &msg, &text);
        if let Some(p) = parties.iter_mut().find(|p| p.addr == to) {
            p.observe(&msg);
        }
    }
    checks.media(h.media.drain(..));
    h.cdr.clear();
}
