//! What each subcommand does: `train` (the default), `bench` and `adapters`.

use std::io::Write;
use std::process::ExitCode;

use crate::bench::{self, Report};
use crate::cli::{BenchArgs, DataCommandArgs, TrainArgs};
use crate::error::Error;
use crate::gpu::list_adapters;
use crate::memory;
use crate::output::{ResultsWriter, check_writable};
use crate::progress::ProgressLine;
use crate::report::{self, Tally, spread};
use crate::run::{self, Start};
use crate::training::StopFlag;
use crate::weights::{BlockValues, WeightsMetadata, WeightsWriter};

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

/// Runs `gputrain data`: the task's samples as CSV (a header x0,...,y0,...
/// then one sample a line, every value as the shortest decimal that reads
/// back to the same float64), written whole or not at all.
pub fn data(args: &DataCommandArgs) -> Result<ExitCode, Error> {
    let data = args.task.generate(&args.drawn.options(Some(args.task))?);
    let mut file = crate::output::TemporaryFile::create(&args.out)?;
    let header: Vec<String> = (0..data.inputs)
        .map(|i| format!("x{i}"))
        .chain((0..data.outputs).map(|j| format!("y{j}")))
        .collect();
    let mut text = header.join(",");
    text.push('\n');
    for s in 0..data.samples() {
        let values: Vec<String> = data
            .input(s)
            .iter()
            .chain(data.target(s))
            .map(|v| format!("{v}"))
            .collect();
        text.push_str(&values.join(","));
        text.push('\n');
    }
    file.handle()
        .write_all(text.as_bytes())
        .map_err(|e| file.error(e))?;
    file.persist()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs `gputrain train`. Returns exit code 1 when `--verify` fails and
/// 130 when Ctrl-C stopped the run (after writing the outputs). The
/// networks go through a block at a time: the results and weights files
/// are written as blocks finish (under temporary names, renamed at the
/// end), and the summary keeps a few bytes per network.
pub fn train(args: &TrainArgs) -> Result<ExitCode, Error> {
    let mut config = args.to_config()?;
    let out = &args.output;
    for path in [&out.results, &out.weights].into_iter().flatten() {
        check_writable(path)?;
    }
    let mut start = run::Starting::open(&mut config)?;
    let config = config;
    memory::check_host(&config, out.verify.unwrap_or(0))?;
    let stop = stop_on_ctrl_c();
    let (ctx, backend) = run::open_backend(&config)?;
    let notes = start.notes(&config, &backend);
    if !out.quiet {
        for note in backend.note.iter().chain(&notes) {
            eprintln!("note: {note}");
        }
        if let Some(adapter) = &backend.adapter {
            eprintln!("adapter: {adapter}");
        }
    }
    let mut results = out
        .results
        .as_deref()
        .map(ResultsWriter::create)
        .transpose()?;
    let record = WeightsMetadata {
        epochs: config.options.epochs,
        planned_epochs: config.options.epochs,
        seed: match config.start {
            Start::Init { seed, .. } => seed,
            _ => args.training.seed,
        },
        interrupted: false,
        trained_on: backend.trained_on(),
        target_loss: config.options.target_loss,
        precision: backend.precision(),
    };
    let mut weights = out
        .weights
        .as_deref()
        .map(|path| WeightsWriter::create(path, &config.spec, config.networks, &record))
        .transpose()?;
    let verify_indices = spread(config.networks, out.verify.unwrap_or(0));
    let mut tally = Tally::new(
        config.networks,
        config.options.target_loss.is_some(),
        verify_indices,
    );
    let mut progress = ProgressLine::new(out.quiet);
    let seconds = run::execute(
        &config,
        ctx.as_ref(),
        &mut start,
        &mut |p| progress.update(p),
        &stop,
        &mut |block| {
            tally.record(block);
            if let Some(results) = &mut results {
                results.write_block(block.first, block.learning_rates, block.outcomes)?;
            }
            if let Some(weights) = &mut weights {
                weights.write_block(
                    block.first,
                    BlockValues {
                        params: block.params,
                        state: block.state,
                        learning_rates: block.learning_rates,
                        outcomes: block.outcomes,
                    },
                )?;
            }
            Ok(())
        },
    )?;
    progress.finish();
    let verify = (!tally.checked().is_empty()).then(|| {
        report::verify(
            &config.spec,
            &config.data,
            &config.options,
            tally.checked(),
            out.verify_tolerance,
        )
    });
    let passed = verify.as_ref().is_none_or(|v| v.passed);
    let summary = report::summarize(
        &config.spec,
        &config.data,
        &config.options,
        &backend,
        tally,
        seconds,
        verify,
        notes,
    );
    if let Some(results) = results {
        results.finish()?;
    }
    if let Some(weights) = weights {
        weights.finish(summary.epochs_completed, summary.interrupted)?;
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
                    "max_loop_iterations": a.quirks.max_loop_iterations,
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
        if let Some(quirk) = a.quirks.describe() {
            println!("    quirk: {quirk}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
