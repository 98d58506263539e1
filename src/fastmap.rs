//! The hash map of the per-message hot paths (transactions, calls, streams).
//!
//! std's SipHash-1-3 cost ~2% of the engine's instructions per call. `foldhash`'s fast
//! hasher is several times cheaper, and its `RandomState` seeds every map randomly per
//! process, so keys an attacker picks (Call-IDs, tags, Via branches) cannot be aimed at
//! one bucket without knowing the seed. It is not a cryptographic hash: the maps it
//! serves are bounded by call and rate limits, not by the hash.

/// A `HashMap` with foldhash's randomly seeded fast hasher; build it with `default()`.
pub type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
