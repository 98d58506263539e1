//! tracing subscriber setup from `log.format` / `log.level`.
//!
//! - `json` (the default) writes one JSON object per line with the event's fields
//!   flattened to the top level, so log shippers can index `call_id`, `peer`, ... without
//!   unnesting; the current span and the span list are included so that context recorded
//!   on spans (the shell's root span carrying `instance`, a call's span carrying its id)
//!   reaches every line.
//! - `pretty` is a compact single-line human format for terminals and development.
//!
//! Logs go to stderr: stdout stays free for command output (`veil check`), and systemd's
//! journal captures both.
//!
//! `RUST_LOG`, when set and non-empty, overrides `log.level`: it is the usual escape hatch
//! for debugging one module (`RUST_LOG=veil::transaction=trace`) without editing the config.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber. Returns an error (instead of panicking) on an invalid
/// filter or when a global subscriber is already installed, e.g. on a second call.
pub fn init(format: LogFormat, level: &str) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = build_filter(level, rust_log.as_deref())?;
    let result = match format {
        LogFormat::Json => {
            tracing::subscriber::set_global_default(json_subscriber(filter, std::io::stderr))
        }
        LogFormat::Pretty => tracing::subscriber::set_global_default(pretty_subscriber(
            filter,
            std::io::stderr,
            std::io::stderr().is_terminal(),
        )),
    };
    result.map_err(|e| format!("installing log subscriber: {e}"))
}

/// The filter: `rust_log` (the `RUST_LOG` value) when set and non-empty, else `level`
/// (`info`, `debug`, or a full directive list like `info,veil::sip=debug`).
pub fn build_filter(level: &str, rust_log: Option<&str>) -> Result<EnvFilter, String> {
    match rust_log.map(str::trim).filter(|s| !s.is_empty()) {
        Some(directives) => EnvFilter::try_new(directives)
            .map_err(|e| format!("invalid RUST_LOG {directives:?}: {e}")),
        None => EnvFilter::try_new(level).map_err(|e| format!("invalid log.level {level:?}: {e}")),
    }
}

fn json_subscriber<W>(filter: EnvFilter, writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(true)
        .with_target(true)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

fn pretty_subscriber<W>(
    filter: EnvFilter,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .compact()
        .with_target(true)
        .with_ansi(ansi)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Captures everything the subscriber writes.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Buf {
        type Writer = Buf;
        fn make_writer(&'w self) -> Buf {
            self.clone()
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn json_lines_are_flat_with_span_and_target() {
        let buf = Buf::default();
        let sub = json_subscriber(build_filter("info", None).unwrap(), buf.clone());
        tracing::subscriber::with_default(sub, || {
            let root = tracing::info_span!("veil", instance = "edge-1");
            let _r = root.enter();
            let call = tracing::info_span!("call", call_id = "abc");
            let _c = call.enter();
            tracing::info!(peer = "pbx", code = 486, "call rejected");
            tracing::debug!("not shown at info");
        });
        let text = buf.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let line = lines[0];
        // Flattened: fields at top level, not under "fields".
        assert!(line.contains(r#""message":"call rejected""#), "{line}");
        assert!(line.contains(r#""peer":"pbx""#), "{line}");
        assert!(line.contains(r#""code":486"#), "{line}");
        assert!(!line.contains(r#""fields":"#), "{line}");
        assert!(
            line.contains(r#""target":"veil::observe::log::tests""#),
            "{line}"
        );
        assert!(
            line.contains(r#""span":{"call_id":"abc","name":"call"}"#),
            "{line}"
        );
        assert!(line.contains(r#""instance":"edge-1""#), "{line}");
    }

    #[test]
    fn pretty_is_human_readable() {
        let buf = Buf::default();
        let sub = pretty_subscriber(build_filter("debug", None).unwrap(), buf.clone(), false);
        tracing::subscriber::with_default(sub, || {
            tracing::debug!(peer = "pbx", "peer down");
        });
        let text = buf.text();
        assert!(text.contains("DEBUG"), "{text}");
        assert!(text.contains("peer down"), "{text}");
        assert!(text.contains("peer=\"pbx\""), "{text}");
        assert!(!text.contains('{'), "{text}");
        assert!(
            !text.contains('\u{1b}'),
            "no ANSI escapes when not a terminal: {text:?}"
        );
    }

    #[test]
    fn rust_log_overrides_level() {
        let buf = Buf::default();
        let filter = build_filter("error", Some("warn")).unwrap();
        let sub = json_subscriber(filter, buf.clone());
        tracing::subscriber::with_default(sub, || {
            tracing::warn!("from rust_log");
            tracing::info!("filtered");
        });
        let text = buf.text();
        assert!(text.contains("from rust_log"), "{text}");
        assert!(!text.contains("filtered"), "{text}");

        // An empty RUST_LOG is treated as unset.
        let buf = Buf::default();
        let sub = json_subscriber(build_filter("error", Some("  ")).unwrap(), buf.clone());
        tracing::subscriber::with_default(sub, || tracing::warn!("hidden"));
        assert!(buf.text().is_empty());
    }

    #[test]
    fn invalid_level_is_an_error() {
        assert!(build_filter("loud=[", None).is_err());
        assert!(
            build_filter("info", Some("x=["))
                .unwrap_err()
                .contains("RUST_LOG")
        );
        assert!(build_filter("info,veil::sip=debug", None).is_ok());
    }

    /// The only test that touches the process-global subscriber.
    #[test]
    fn init_twice_is_an_error_not_a_panic() {
        let first = init(LogFormat::Json, "info");
        let second = init(LogFormat::Pretty, "info");
        // `first` may fail only if something else in the test binary installed a global
        // subscriber; the second call must fail in every case.
        assert!(second.is_err());
        if first.is_ok() {
            assert!(second.unwrap_err().contains("installing log subscriber"));
        }
    }
}
