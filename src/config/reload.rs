//! What a reload (SIGHUP) may change in a running veil. Sockets, the CDR file, the
//! metrics endpoint, logging, transaction timers and the security guard's settings are
//! set up once at start: a new value for them is reported and the running value kept, so
//! the rest of the reload still applies. Everything else (peers, policy, media ports and
//! addresses, call limits and timers) takes effect for the next call.

use super::load::LoadedConfig;
use super::model::Config;

/// A reloaded config made applicable to the running process.
#[derive(Debug, Clone)]
pub struct Reload {
    pub loaded: LoadedConfig,
    /// Keys whose new value needs a restart and was not applied.
    pub needs_restart: Vec<&'static str>,
}

/// Keep the running values of restart-only keys in `new`; refuse the reload (with a
/// message per problem) when the new config only makes sense with the new listeners.
pub fn merge(running: &Config, mut new: LoadedConfig) -> Result<Reload, Vec<String>> {
    let mut needs_restart = Vec::new();
    let c = &mut new.config;
    macro_rules! keep {
        ($key:literal, $($field:tt)+) => {
            if c.$($field)+ != running.$($field)+ {
                c.$($field)+ = running.$($field)+.clone();
                needs_restart.push($key);
            }
        };
    }
    keep!("instance", instance);
    keep!("sip.listen", sip.listen);
    keep!("sip.max_message_size", sip.max_message_size);
    keep!("sip.timers.t1", sip.timers.t1);
    keep!("sip.timers.t2", sip.timers.t2);
    keep!("sip.timers.t4", sip.timers.t4);
    // Connection limits are built into the accept loops at start (src/shell/conn_limits.rs).
    keep!("sip.max_connections", sip.max_connections);
    keep!(
        "sip.max_connections_per_source",
        sip.max_connections_per_source
    );
    keep!("sip.stranger_idle", sip.stranger_idle);
    keep!("media.address", media.address);
    keep!("media.latching", media.latching);
    keep!("media.relatch_after", media.relatch_after);
    keep!("cdr", cdr);
    keep!("metrics", metrics);
    keep!("log", log);
    // Rate-limit buckets and bans live in the running guard; its exempt list follows the
    // new peers (see `Engine::reconfigure`).
    keep!("security", security);
    let mut errors = Vec::new();
    for (i, p) in c.peers.iter().enumerate() {
        if let Some(l) = &p.listen
            && !c.sip.listen.iter().any(|x| &x.name == l)
        {
            errors.push(format!(
                "peers[{i}].listen: listener `{l}` exists only after a restart"
            ));
        } else if p.listen.is_none() && !c.sip.listen.iter().any(|x| x.transport == p.transport) {
            errors.push(format!(
                "peers[{i}].transport: no running listener for {:?}; restart to add one",
                p.transport
            ));
        }
    }
    if errors.is_empty() {
        Ok(Reload {
            loaded: new,
            needs_restart,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(dir: &std::path::Path, listen: &str, peer_listen: &str, level: &str) -> LoadedConfig {
        std::fs::write(
            dir.join("p.yaml"),
            "rules:\n  - name: all\n    then: {route: [pbx]}\n",
        )
        .unwrap();
        let cfg = format!(
            "sip:\n  listen:\n{listen}\npeers:\n  - {{name: pbx, address: 127.0.0.2:5060{peer_listen}}}\npolicy: p.yaml\nlog: {{level: {level}}}\n"
        );
        std::fs::write(dir.join("c.yaml"), cfg).unwrap();
        crate::config::load(&dir.join("c.yaml")).unwrap()
    }

    const UDP: &str = "    - {name: a, transport: udp, address: 127.0.0.1:5060}";
    const UDP_TCP: &str = "    - {name: a, transport: udp, address: 127.0.0.1:5060}\n    - {name: b, transport: tcp, address: 127.0.0.1:5060}";

    #[test]
    fn same_config_needs_nothing() {
        let d = tempfile::tempdir().unwrap();
        let old = load(d.path(), UDP, "", "info");
        let r = merge(&old.config, old.clone()).unwrap();
        assert!(r.needs_restart.is_empty());
    }

    #[test]
    fn listener_and_log_changes_are_kept_back_and_named() {
        let d = tempfile::tempdir().unwrap();
        let old = load(d.path(), UDP, "", "info");
        let new = load(d.path(), UDP_TCP, "", "debug");
        let r = merge(&old.config, new).unwrap();
        assert_eq!(r.needs_restart, ["sip.listen", "log"]);
        assert_eq!(r.loaded.config.sip.listen, old.config.sip.listen);
        assert_eq!(r.loaded.config.log.level, "info");
    }

    #[test]
    fn a_peer_on_a_listener_that_is_not_running_refuses_the_reload() {
        let d = tempfile::tempdir().unwrap();
        let old = load(d.path(), UDP, "", "info");
        let new = load(d.path(), UDP_TCP, ", transport: tcp, listen: b", "info");
        let errs = merge(&old.config, new).unwrap_err();
        assert!(errs[0].contains("peers[0].listen"), "{errs:?}");
    }
}
