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
    /// Show how the policy routes a request (rules tried, rewrites, targets); starts nothing.
    Route {
        #[arg(long, short)]
        config: PathBuf,
        /// The peer the request comes from (as matched by source address).
        #[arg(long)]
        from_peer: Option<String>,
        /// Request-URI user (the dialled number).
        #[arg(long)]
        to_user: String,
        /// From user (the caller).
        #[arg(long, default_value = "")]
        from_user: String,
        /// Request-URI host as written by the caller.
        #[arg(long, default_value = "")]
        ruri_host: String,
        #[arg(long, default_value = "INVITE")]
        method: String,
        /// A header of the request, `Name: value`; may be repeated.
        #[arg(long = "header")]
        headers: Vec<String>,
    },
}

unsafe extern "C" {
    /// mimalloc's `mi_collect` (linked by libmimalloc-sys): frees what the calling
    /// thread's heap holds unused and returns free pages to the system.
    fn mi_collect(force: bool);
}

/// The collector `veil::shell` runs on each worker thread after a burst.
fn collect() {
    // SAFETY: mi_collect takes no pointers and may be called on any thread at any time.
    unsafe { mi_collect(true) }
}

/// No transparent huge pages for this process: the allocator returns freed memory in
/// 4 KiB pages, but a 2 MiB huge page goes back only when all of it is free, so after a
/// flood most of the memory it touched would stay resident.
fn disable_thp() {
    // prctl is variadic and the kernel reads unsigned longs (the unused ones must be 0).
    let (on, unused): (libc::c_ulong, libc::c_ulong) = (1, 0);
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and affects only this process.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, on, unused, unused, unused) };
    if r != 0 {
        eprintln!(
            "veil: cannot disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

fn main() -> ExitCode {
    disable_thp();
    veil::shell::set_collector(collect);
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run { config } => veil::shell::run(&config),
        Command::Check { config } => veil::config::check(&config),
        Command::Route {
            config,
            from_peer,
            to_user,
            from_user,
            ruri_host,
            method,
            headers,
        } => veil::policy::dry_run::command_then(
            &config,
            &veil::policy::dry_run::Query {
                from_peer,
                to_user,
                from_user,
                ruri_host,
                method: method.to_ascii_uppercase(),
                headers,
            },
            &veil::shell::describe_dns,
        ),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
