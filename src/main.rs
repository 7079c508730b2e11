//! The `gputrain` command: parse the command line, run it
//! ([`gputrain::commands::main`]), exit with its status (2 for usage
//! errors, 1 for failures at run time).

use std::process::ExitCode;

use gputrain::cli::Cli;

fn main() -> ExitCode {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { gputrain::gpu::device::quiet_display_probe() };
    ExitCode::from(gputrain::commands::main(&Cli::from_env()))
}
