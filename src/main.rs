//! `veil`: command line entry point.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Every SIP message is parsed into owned strings and rebuilt: the engine allocates and
/// frees several hundred times per call, and mimalloc's thread-local free lists do that
/// at a fraction of glibc's cost (docs/performance.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "veil",
    version,
    about = "veil: a SIP Session Border Controller"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run in the foreground until SIGTERM/SIGINT.
    Run {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Validate the config and every file it references; print every error.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run { config } => veil::shell::run(&config),
        Command::Check { config } => veil::config::check(&config),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
