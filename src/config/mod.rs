//! Configuration: typed model, value parsers, loading with file/line/key errors, validation.

pub mod certs;
pub mod load;
pub mod model;
pub mod reload;
pub mod source;
pub mod values;
pub mod yaml;

pub use load::{ConfigError, LoadedConfig, check, load};
pub use model::*;
pub use source::PeerSource;
pub use values::{Cidr, Duration, PortRange, Target};
