//! What each subcommand does: `train` (the default), `bench` and `adapters`.

use std::io::Write;
use std::process::ExitCode;

use crate::bench::{self, Report};
use crate::cli::{BenchArgs, TrainArgs};
use crate::error::Error;
use crate::gpu::list_adapters;
use crate::output::{check_writable, results_csv, write_atomically};
use crate::progress::ProgressLine;
use crate::report::{self, spread};
use crate::run::{self, Start};
use crate::training::StopFlag;
use crate::weights::{self, WeightsMetadata};

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The first Ctrl-C asks the run to stop after the current chunk (outputs
/// are still written); a second one ends the process at once.
fn stop_on_ctrl_c() -> StopFlag {
    let stop = StopFlag::new();
    let flag = stop.clone();
    let installed = ctrlc::set_handler(move || {
        if flag.is_requested() {
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
        eprintln!(
            "\ninterrupt: stopping after the current chunk and writing the outputs \
             (Ctrl-C again to quit now)"
        );
        flag.request();
    });
    if let Err(e) = installed {
        eprintln!("note: Ctrl-C will end the run without writing outputs ({e})");
    }
    stop
}

/// Runs `gputrain train`. Returns exit code 1 when `--verify` fails and
/// 130 when Ctrl-C stopped the run (after writing the outputs).
pub fn train(args: &TrainArgs) -> Result<ExitCode, Error> {
    let config = args.to_config()?;
    let out = &args.output;
    let stop = stop_on_ctrl_c();
    for path in [&out.results, &out.weights].into_iter().flatten() {
        check_writable(path)?;
    }
    let (ctx, backend) = run::open_backend(&config)?;
    if !out.quiet {
        if let Some(note) = &backend.note {
            eprintln!("note: {note}");
        }
        if let Some(adapter) = &backend.adapter {
            eprintln!("adapter: {adapter}");
        }
    }
    let mut population = run::prepare(&config)?;
    let checked: Vec<(usize, Vec<f64>)> = spread(config.networks, out.verify.unwrap_or(0))
        .into_iter()
        .map(|i| (i, population.network(i).to_vec()))
        .collect();
    let mut progress = ProgressLine::new(out.quiet);
    let (outcomes, seconds) = run::train(
        &config,
        ctx.as_ref(),
        &mut population,
        &mut |p| progress.update(p),
        &stop,
    )?;
    progress.finish();
    let verify = (!checked.is_empty()).then(|| {
        report::verify(
            &config.spec,
            &config.data,
            &config.options,
            &checked,
            &population,
            &outcomes,
            out.verify_tolerance,
        )
    });
    let passed = verify.as_ref().is_none_or(|v| v.passed);
    let summary = report::summarize(
        &config.spec,
        &config.data,
        &config.options,
        &backend,
        &population,
        &outcomes,
        seconds,
        verify,
    );
    if let Some(path) = &out.results {
        write_atomically(path, &results_csv(&population.learning_rates, &outcomes))?;
    }
    if let Some(path) = &out.weights {
        let seed = match config.start {
            Start::Init { seed, .. } => seed,
            Start::WeightsFile(_) => args.training.seed,
        };
        let meta = WeightsMetadata {
            epochs: summary.epochs_completed,
            seed,
            interrupted: summary.interrupted,
        };
        weights::write(
            path,
            &config.spec,
            &population.params,
            &population.learning_rates,
            &meta,
        )?;
    }
    let text = if out.json {
        serde_json::to_string_pretty(&summary).expect("the summary is plain data") + "\n"
    } else {
        report::render(&summary)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(if summary.interrupted {
        ExitCode::from(EXIT_INTERRUPTED)
    } else if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Runs `gputrain bench`: measures every row, then prints the table (or
/// JSON) on stdout; what it is measuring goes to stderr.
pub fn bench(args: &BenchArgs) -> Result<ExitCode, Error> {
    let suite = args.to_suite()?;
    let quiet = args.quiet;
    let rows = suite.run(&mut |line| {
        if !quiet {
            eprintln!("bench: {line}");
        }
    })?;
    let report = Report {
        quick: args.quick,
        seconds_per_row: suite.seconds,
        flop_formula: bench::FLOP_FORMULA,
        rows,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report).expect("the report is plain data") + "\n"
    } else {
        bench::render(&report)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    Ok(ExitCode::SUCCESS)
}

/// Runs `gputrain adapters`.
pub fn adapters(json: bool) -> Result<ExitCode, Error> {
    let adapters = list_adapters();
    if json {
        let list: Vec<serde_json::Value> = adapters
            .iter()
            .map(|a| {
                serde_json::json!({
                    "index": a.index,
                    "name": a.name,
                    "backend": a.backend,
                    "device_type": a.device_type,
                    "driver": a.driver,
                    "max_storage_buffer_binding_size": a.max_storage_buffer_binding_size,
                    "max_buffer_size": a.max_buffer_size,
                    "max_compute_workgroups_per_dimension": a.max_compute_workgroups_per_dimension,
                    "max_compute_invocations_per_workgroup": a.max_compute_invocations_per_workgroup,
                    "timestamp_queries": a.timestamp_queries,
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    if adapters.is_empty() {
        return Err(Error::NoAdapter {
            detail: String::new(),
        });
    }
    for a in &adapters {
        println!("[{}] {a}", a.index);
        println!(
            "    max storage binding {} B, max buffer {} B, {} workgroups per dimension, {} invocations per workgroup, timestamp queries {}",
            a.max_storage_buffer_binding_size,
            a.max_buffer_size,
            a.max_compute_workgroups_per_dimension,
            a.max_compute_invocations_per_workgroup,
            if a.timestamp_queries { "yes" } else { "no" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
