//! What each subcommand does: `train` (the default), `bench`, `data`,
//! `predict` and `adapters`.

use std::io::Write;
use std::process::ExitCode;

use crate::bench::{self, Report};
use serde::Serialize;

use crate::cli::{BenchArgs, DataCommandArgs, PlotCommand, PredictArgs, TrainArgs};
use crate::data::load_prediction_csv;
use crate::error::Error;
use crate::evaluation::Score;
use crate::gpu::list_adapters;
use crate::gpu::{GpuContext, GpuPredictor, predict_supports};
use crate::history::{HistoryTally, HistoryWriter};
use crate::memory;
use crate::output::{ResultsWriter, check_writable};
use crate::predict::{Ensemble, ScoreSummary};
use crate::progress::ProgressLine;
use crate::report::{self, Tally, spread};
use crate::run::BackendChoice;
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
    let text = data.to_csv();
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
    let outputs = [
        &out.results,
        &out.weights,
        &out.history_out,
        &out.history_csv,
    ];
    for path in outputs.into_iter().flatten() {
        check_writable(path)?;
    }
    let mut start = run::Starting::open(&mut config)?;
    let config = config;
    memory::check_host(&config, out.verify.unwrap_or(0))?;
    let stop = stop_on_ctrl_c();
    let (engine, backend) = run::open_backend(&config)?;
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
    let plan = config.history_plan();
    let mut curves = match (&out.history_out, &plan) {
        (Some(path), Some(plan)) => Some(HistoryWriter::create(
            path,
            plan,
            config.networks,
            config.options.target_loss,
        )?),
        _ => None,
    };
    let with_target = config.options.target_loss.is_some();
    let mut history_tally = plan.map(|p| HistoryTally::new(&p, config.networks, with_target));
    let verify_indices = spread(config.networks, out.verify.unwrap_or(0));
    let mut tally = Tally::new(
        config.networks,
        config.options.target_loss.is_some(),
        verify_indices,
    );
    let mut progress = ProgressLine::new(out.quiet);
    let seconds = run::execute(
        &config,
        &engine,
        &mut start,
        &mut |p| progress.update(p),
        &stop,
        &mut |block| {
            let metrics = block.metrics;
            tally.record(block, metrics);
            if let Some(results) = &mut results {
                results.write_block(block.first, block.learning_rates, block.outcomes, metrics)?;
            }
            if let Some(history) = block.history {
                if let Some(tally) = &mut history_tally {
                    tally.record(history, block.outcomes);
                }
                if let Some(curves) = &mut curves {
                    curves.write_block(block.first, history)?;
                }
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
    let mut summary = report::summarize(
        &config.spec,
        &config.data,
        &config.options,
        &backend,
        tally,
        seconds,
        verify,
        notes,
        config.eval.as_ref(),
    );
    summary.history = history_tally.map(HistoryTally::points);
    let csv = match (&out.history_csv, &summary.history) {
        (Some(path), Some(points)) => {
            let mut file = crate::output::TemporaryFile::create(path)?;
            let text = crate::history::csv_text(points, config.eval.is_some());
            let written = file.handle().write_all(text.as_bytes());
            written.map_err(|e| file.error(e))?;
            Some(file)
        }
        _ => None,
    };
    if let Some(results) = results {
        results.finish()?;
    }
    if let Some(curves) = curves {
        curves.finish()?;
    }
    if let Some(csv) = csv {
        csv.persist()?;
    }
    if let (Some(path), Some(points)) = (&out.plot, &summary.history) {
        let curves = crate::plot::Curves {
            points: points.clone(),
            networks: config.networks as u64,
            target_loss: config.options.target_loss,
            source: format!("{}, {}", summary.topology, summary.data),
        };
        crate::plot::history(&curves, path, "--plot")?;
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
    let setup = args.peer_setup();
    if let Some(setup) = &setup {
        setup.check()?;
    }
    let quiet = args.quiet;
    let mut log = |line: &str| {
        if !quiet {
            eprintln!("bench: {line}");
        }
    };
    let rows = suite.run(&mut log)?;
    let mut peers = Vec::new();
    if let Some(setup) = &setup {
        let dir = std::env::temp_dir().join(format!("gputrain-peers-{}", std::process::id()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Config(format!("creating {}: {e}", dir.display())))?;
        let measured = suite
            .workloads
            .iter()
            .filter(|w| crate::bench::peers::supports(w))
            .try_for_each(|w| {
                peers.extend(setup.run(w, &rows, suite.seconds, &dir, &mut log)?);
                Ok::<(), Error>(())
            });
        let _ = std::fs::remove_dir_all(&dir);
        measured?;
    }
    let failed = peers
        .iter()
        .any(|p| p.status == crate::bench::PeerStatus::Failed);
    let report = Report {
        quick: args.quick,
        seconds_per_row: suite.seconds,
        flop_formula: bench::FLOP_FORMULA,
        rows,
        machine: crate::bench::runner::cpu_name(crate::run::cpu_threads(None).0),
        peers,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report).expect("the report is plain data") + "\n"
    } else {
        bench::render(&report)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    if failed {
        eprintln!(
            "error: a peer's final losses disagree with the float64 reference (see the table)"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs `gputrain plot`: one figure, written whole or not at all.
pub fn plot(figure: &PlotCommand) -> Result<ExitCode, Error> {
    match figure {
        PlotCommand::History {
            input,
            out,
            target_loss,
        } => {
            let out = out
                .clone()
                .unwrap_or_else(|| crate::plot::default_output(input));
            crate::plot::Format::of(&out, "--out")?;
            let mut curves = crate::plot::read_history(input)?;
            if target_loss.is_some() {
                curves.target_loss = *target_loss;
            }
            crate::plot::history(&curves, &out, "--out")?;
        }
        PlotCommand::Results { input, out } => {
            let out = out
                .clone()
                .unwrap_or_else(|| crate::plot::default_output(input));
            crate::plot::Format::of(&out, "--out")?;
            let networks = crate::plot::read_results(input)?;
            let name = input
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            crate::plot::results(&networks, &name, &out, "--out")?;
        }
    }
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

/// What `gputrain predict` reports (text, or `--json`).
#[derive(Clone, Debug, Serialize)]
pub struct PredictSummary {
    pub weights: String,
    pub data: String,
    pub topology: String,
    pub backend: &'static str,
    pub adapter: Option<String>,
    /// Networks predicted (those chosen).
    pub networks: usize,
    pub samples: usize,
    /// Whether the data has targets (and so scores).
    pub targets: bool,
    pub ensemble: Option<Ensemble>,
    /// Scores of the chosen networks (data with targets).
    pub scores: Option<ScoreSummary>,
    /// Accuracy of the ensemble's combined outputs (class targets).
    pub ensemble_accuracy: Option<f64>,
    pub notes: Vec<String>,
}

/// Runs `gputrain predict`: the chosen networks' outputs on every sample
/// (or their ensemble's) as CSV, and with targets their scores. Output
/// files are written whole or not at all.
pub fn predict(args: &PredictArgs) -> Result<ExitCode, Error> {
    if args.json && args.out.is_none() {
        return Err(Error::Config(
            "--json needs --out FILE.csv: without it the predictions go to standard output".into(),
        ));
    }
    for path in [&args.out, &args.scores].into_iter().flatten() {
        check_writable(path)?;
    }
    let spec = crate::weights::recorded_model(&args.weights)?;
    let (inputs, outputs) = (spec.topology.inputs(), spec.topology.outputs());
    let data = load_prediction_csv(&args.data, inputs, outputs, spec.target_range())?;
    let targets = data.outputs > 0;
    if args.scores.is_some() && !targets {
        return Err(Error::Config(format!(
            "--scores needs targets in --data {} (each row: {inputs} inputs, then {outputs} \
             targets)",
            args.data.display()
        )));
    }
    let loaded = crate::weights::read(&args.weights, &spec)?;
    let p = spec.layout().len;
    let all_scores = targets.then(|| crate::evaluation::scores(&spec, &loaded.params, &data));
    let losses: Option<Vec<f64>> = all_scores
        .as_ref()
        .map(|s| s.iter().map(|x| x.loss).collect());
    let chosen = args
        .networks_select
        .indices(loaded.networks, losses.as_deref())?;
    let per_network = data.samples() * outputs;
    let need = (chosen.len() * per_network) as u64 * (8 + 4) + (chosen.len() * p) as u64 * 8;
    if let Some((available, source)) = crate::memory::available_host_bytes()
        && need > available
    {
        return Err(Error::HostMemory(format!(
            "predicting {} networks on {} samples needs about {} of host memory for the \
             outputs, but this machine has {} available ({source}); choose fewer networks \
             (--networks-select) or split --data",
            chosen.len(),
            data.samples(),
            crate::memory::human(need),
            crate::memory::human(available)
        )));
    }
    let params: Vec<f64> = chosen
        .iter()
        .flat_map(|&n| loaded.params[n * p..(n + 1) * p].iter().copied())
        .collect();
    let mut notes = Vec::new();
    let ctx = match args.backend {
        BackendChoice::Cpu | BackendChoice::Simd => None,
        choice => match GpuContext::open(&args.adapter) {
            Ok(ctx) => match (predict_supports(&spec), choice) {
                (Ok(()), _) => Some(ctx),
                (Err(e), BackendChoice::Auto) => {
                    notes.push(format!("{e}; predicting on the CPU reference instead"));
                    None
                }
                (Err(e), _) => return Err(e),
            },
            Err(e @ Error::NoAdapter { .. }) if choice == BackendChoice::Auto => {
                notes.push(format!("{e}; predicting on the CPU reference instead"));
                None
            }
            Err(e) => return Err(e),
        },
    };
    // The outputs [network][sample][output], and whether they are float32.
    let (values, single) = match &ctx {
        Some(ctx) => {
            let x: Vec<f32> = data.x.iter().map(|&v| v as f32).collect();
            let predicted = GpuPredictor::new(ctx, &spec)?.predict(&params, &x, data.samples())?;
            (
                predicted.into_iter().map(f64::from).collect::<Vec<f64>>(),
                true,
            )
        }
        None => {
            use rayon::prelude::*;
            let all: Vec<f64> = params
                .par_chunks(p.max(1))
                .flat_map_iter(|net| crate::cpu::outputs(&spec, net, &data))
                .collect();
            (all, false)
        }
    };
    let number = |v: f64| match single {
        true => format!("{}", v as f32),
        false => format!("{v}"),
    };
    let mut text = String::new();
    let names = |prefix: &'static str| (0..outputs).map(move |j| format!("{prefix}_{j}"));
    let mut ensemble_accuracy = None;
    match args.ensemble {
        None => {
            let header: Vec<String> = ["network".to_string(), "sample".to_string()]
                .into_iter()
                .chain(names("output"))
                .collect();
            text.push_str(&header.join(","));
            text.push('\n');
            for (i, &network) in chosen.iter().enumerate() {
                for s in 0..data.samples() {
                    let at = (i * data.samples() + s) * outputs;
                    let row: Vec<String> = values[at..at + outputs]
                        .iter()
                        .map(|&v| number(v))
                        .collect();
                    text.push_str(&format!("{network},{s},{}\n", row.join(",")));
                }
            }
        }
        Some(how) => {
            let (combined, spread) =
                crate::predict::combine(how, &values, chosen.len(), per_network);
            let header: Vec<String> = std::iter::once("sample".to_string())
                .chain(names("output"))
                .chain(names("spread"))
                .collect();
            text.push_str(&header.join(","));
            text.push('\n');
            for s in 0..data.samples() {
                let cells: Vec<String> = combined[s * outputs..(s + 1) * outputs]
                    .iter()
                    .chain(&spread[s * outputs..(s + 1) * outputs])
                    .map(|&v| number(v))
                    .collect();
                text.push_str(&format!("{s},{}\n", cells.join(",")));
            }
            ensemble_accuracy = crate::evaluation::labels(&spec, &data)
                .map(|labels| crate::evaluation::accuracy(labels, &combined, &data));
        }
    }
    let chosen_scores: Option<Vec<Score>> = all_scores
        .as_ref()
        .map(|all| chosen.iter().map(|&n| all[n]).collect());
    let summary = PredictSummary {
        weights: args.weights.display().to_string(),
        data: args.data.display().to_string(),
        topology: spec.topology.to_string(),
        backend: if ctx.is_some() { "gpu" } else { "cpu" },
        adapter: ctx.as_ref().map(|c| c.adapter.to_string()),
        networks: chosen.len(),
        samples: data.samples(),
        targets,
        ensemble: args.ensemble,
        scores: chosen_scores.as_deref().map(ScoreSummary::of),
        ensemble_accuracy,
        notes,
    };
    if let (Some(path), Some(scores)) = (&args.scores, &chosen_scores) {
        let mut csv = String::from("network,loss,accuracy\n");
        for s in scores {
            let accuracy = s.accuracy.map_or(String::new(), |a| a.to_string());
            csv.push_str(&format!("{},{},{accuracy}\n", s.network, s.loss));
        }
        write_whole(path, &csv)?;
    }
    let report = if args.json {
        serde_json::to_string_pretty(&summary).expect("the summary is plain data") + "\n"
    } else {
        render_predict_summary(&spec, &summary)
    };
    match &args.out {
        Some(path) => {
            write_whole(path, &text)?;
            if !args.quiet || args.json {
                let _ = std::io::stdout().write_all(report.as_bytes());
            }
        }
        None => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            if !args.quiet {
                let _ = std::io::stderr().write_all(report.as_bytes());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `text` to `path` under a temporary name, renamed when complete.
fn write_whole(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let mut file = crate::output::TemporaryFile::create(path)?;
    file.handle()
        .write_all(text.as_bytes())
        .map_err(|e| file.error(e))?;
    file.persist()
}

/// The predict summary for people.
fn render_predict_summary(spec: &crate::model::ModelSpec, s: &PredictSummary) -> String {
    let mut out = format!(
        "predicted {} networks x {} samples: {} {} (hidden) / {} (output), on {}{}\n",
        s.networks,
        s.samples,
        s.topology,
        spec.activation,
        spec.output_activation,
        s.backend,
        s.adapter
            .as_ref()
            .map_or(String::new(), |a| format!(" ({a})"))
    );
    for note in &s.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    let percent = |v: f64| format!("{:.1}%", 100.0 * v);
    match &s.scores {
        None => out.push_str("no targets in the data: no loss or accuracy\n"),
        Some(scores) => {
            if let Some(q) = &scores.loss {
                out.push_str(&format!(
                    "loss ({}, {}): min {:.4e}  10% {:.4e}  median {:.4e}  90% {:.4e}  max {:.4e}\n",
                    spec.loss, spec.reduction, q.min, q.p10, q.median, q.p90, q.max
                ));
            }
            match (&scores.accuracy, scores.solved) {
                (Some(q), Some(solved)) => out.push_str(&format!(
                    "accuracy: min {}  10% {}  median {}  90% {}  max {}; solved (100%): {solved} \
                     of {}\n",
                    percent(q.min),
                    percent(q.p10),
                    percent(q.median),
                    percent(q.p90),
                    percent(q.max),
                    s.networks
                )),
                _ => out.push_str(
                    "accuracy: none (the targets are not class labels: 0/1 for one output, -1/1 \
                     for tanh, one-hot rows for several)\n",
                ),
            }
            if let Some(best) = &scores.best {
                out.push_str(&format!(
                    "best network: #{}, loss {:.6e}{}\n",
                    best.network,
                    best.loss,
                    best.accuracy
                        .map_or(String::new(), |a| format!(", accuracy {}", percent(a)))
                ));
            }
        }
    }
    if let Some(how) = s.ensemble {
        let how = format!("{how:?}").to_lowercase();
        out.push_str(&format!(
            "ensemble ({how} of {} networks){}\n",
            s.networks,
            s.ensemble_accuracy
                .map_or(String::new(), |a| format!(": accuracy {}", percent(a)))
        ));
    }
    out
}
