//! The `gputrain` command: parse the command line, run, map errors to exit
//! codes (2 for usage errors, 1 for failures at run time).

use std::process::ExitCode;

use clap::Parser;
use gputrain::Error;
use gputrain::cli::{Cli, Command};
use gputrain::commands;

fn main() -> ExitCode {
    // SAFETY: first thing in main, before any thread exists.
    unsafe { gputrain::gpu::device::quiet_display_probe() };
    let cli = Cli::parse();
    let result = match &cli.command {
        Some(Command::Adapters { json }) => commands::adapters(*json),
        Some(Command::Train(args)) => commands::train(args),
        Some(Command::Bench(args)) => commands::bench(args),
        Some(Command::Data(args)) => commands::data(args),
        Some(Command::Predict(args)) => commands::predict(args),
        Some(Command::Plot(figure)) => commands::plot(figure),
        Some(Command::Merge(args)) => commands::merge(args),
        None => commands::train(&cli.train),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                Error::Config(_) | Error::Topology(_) | Error::Init(_) => ExitCode::from(2),
                _ => ExitCode::from(1),
            }
        }
    }
}
