//! tracing subscriber setup from `log.format` / `log.level`.
//! SKELETON: implemented by the observability work item.
