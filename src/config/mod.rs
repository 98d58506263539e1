//! Configuration: typed model, value parsers, loading with file/line/key errors, validation.

pub mod load;
pub mod model;
pub mod values;

pub use load::{ConfigError, LoadedConfig, load};
pub use model::*;
pub use values::{Cidr, Duration, PortRange, Target};
