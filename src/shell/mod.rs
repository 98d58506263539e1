//! The tokio shell: sockets, timers and tasks around the sans-IO engine.
