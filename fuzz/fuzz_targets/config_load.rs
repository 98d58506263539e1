//! Any input as the main config YAML (and, split at a `\0`, as the policy file it names):
//! loading must return a config or errors, never panic, whatever the bytes.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One temp dir per fuzz process, holding the policy file the config names.
fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("veil-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("temp dir");
        d
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (config, policy) = text.split_once('\0').unwrap_or((&text, "rules: []\n"));
    let dir = dir();
    let _ = std::fs::write(dir.join("policy.yaml"), policy);
    let _ = veil::config::load::load_text(&dir.join("veil.yaml"), config);
});
