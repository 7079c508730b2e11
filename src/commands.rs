//! What each subcommand does: `train` (the default), `bench`, `data`,
//! `predict` and `adapters`.

use std::io::Write;

use crate::bench::{self, Report};
use serde::Serialize;

use crate::cli::{
    BenchArgs, Cli, Command, DataCommandArgs, MergeArgs, PlotCommand, PredictArgs, TrainArgs,
};
use crate::data::load_prediction_csv;
use crate::error::Error;
use crate::evaluation::Score;
use crate::gpu::list_adapters;
use crate::memory;
use crate::output::check_writable;
use crate::plan::{Devices, OutputPlan, TrainPlan};
use crate::predict::{Ensemble, ScoreSummary};
use crate::progress::ProgressLine;
use crate::report;
use crate::run::{self, BackendChoice};
use crate::setting::Setting;
use crate::sweep::outputs::{Finished, Kept, OutputPaths, RangeRun, RunRecord, summary_json};
use crate::sweep::shard::Shard;
use crate::training::{Progress, StopFlag};
use std::path::PathBuf;

/// Exit code of a run stopped by Ctrl-C (128 + SIGINT), as shells expect.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The signal that asked the run to stop (0: none yet): set by the signal
/// handler, read for the exit code, 128 + the signal as shells report it
/// (130 for SIGINT, 143 for SIGTERM, 129 for SIGHUP).
static STOP_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The exit code of a stopped run: 128 + the signal that stopped it.
fn exit_stopped() -> u8 {
    match STOP_SIGNAL.load(std::sync::atomic::Ordering::Relaxed) {
        signal @ 1..=127 => 128 + signal as u8,
        _ => EXIT_INTERRUPTED,
    }
}

/// The first Ctrl-C, SIGTERM (Slurm's at a time limit or scancel) or
/// SIGHUP asks the run to stop after the current chunk (outputs are still
/// written, resumable); a second one ends the process at once.
#[cfg(unix)]
fn stop_on_signals() -> StopFlag {
    use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
    use std::sync::atomic::Ordering;
    extern "C" fn on_signal(signal: nix::libc::c_int) {
        // Only async-signal-safe work here: an atomic, and _exit.
        if STOP_SIGNAL
            .compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            unsafe { nix::libc::_exit(128 + signal) };
        }
    }
    let stop = StopFlag::new();
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::SA_RESTART,
        SigSet::empty(),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        // SAFETY: the handler only touches an atomic and calls _exit.
        if let Err(e) = unsafe { sigaction(signal, &action) } {
            eprintln!("note: {signal} will end the run without writing outputs ({e})");
        }
    }
    // A watcher passes the signal on to the run and says so.
    let flag = stop.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let signal = STOP_SIGNAL.load(Ordering::SeqCst);
            if signal == 0 {
                continue;
            }
            let name = Signal::try_from(signal).map_or("a signal", |s| s.as_str());
            let what = match signal == nix::libc::SIGINT {
                true => "interrupt".to_string(),
                false => format!("{name} received"),
            };
            eprintln!(
                "\n{what}: stopping after the current chunk and writing the outputs \
                 (a second signal, or Ctrl-C again, quits at once)"
            );
            flag.request();
            return;
        }
    });
    stop
}

/// The first Ctrl-C asks the run to stop after the current chunk (outputs
/// are still written); a second one ends the process at once.
#[cfg(not(unix))]
fn stop_on_signals() -> StopFlag {
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

/// Runs the command `cli` names and gives the process's exit status:
/// 0, 1 for a failure at run time (or a `--verify` that fails), 2 for a
/// usage error, 130/143/129 for a run stopped by a signal. An error is
/// printed as one `error: ...` line on stderr. The `gputrain` binary and
/// the Python package's `gputrain` command are this function.
pub fn main(cli: &Cli) -> u8 {
    let result = match &cli.command {
        Some(Command::Adapters { json }) => adapters(*json),
        Some(Command::Train(args)) => train(args),
        Some(Command::Bench(args)) => bench(args),
        Some(Command::Data(args)) => data(args),
        Some(Command::Predict(args)) => predict(args),
        Some(Command::Plot(figure)) => plot(figure),
        Some(Command::Merge(args)) => merge(args),
        Some(Command::Rerun(args)) => rerun(args),
        Some(Command::Completions { shell }) => completions(*shell),
        Some(Command::Man { command }) => man(command.as_deref()),
        None => train(&cli.train),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                Error::Config(_) | Error::Topology(_) | Error::Init(_) => 2,
                _ => 1,
            }
        }
    }
}

/// `gputrain rerun DIR`: the command DIR's run.json records, with `--out`
/// the new directory (and a shard's `--shard I/K`), run as `gputrain
/// train`; the line it runs goes to stderr first.
fn rerun(args: &crate::cli::RerunArgs) -> Result<u8, Error> {
    let path = args.dir.join(crate::sweep::outputs::RUN_FILE);
    let refuse = |why: String| Error::Config(format!("rerun: {}: {why}", path.display()));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        refuse(match e.kind() {
            std::io::ErrorKind::NotFound => format!(
                "not found; {} is not a run directory (a run with {} writes one)",
                args.dir.display(),
                crate::setting::settings::OUT.is("DIR")
            ),
            _ => format!("cannot read it: {e}"),
        })
    })?;
    let record: RunRecord = serde_json::from_str(&text)
        .map_err(|e| refuse(format!("is not gputrain's run.json: {e}")))?;
    if record.command.is_empty() {
        return Err(refuse(format!(
            "records no command (gputrain {} wrote it, before run.json held one); run              the flags it was trained with again",
            record.version
        )));
    }
    if record.command.iter().any(|w| w == crate::cli::IN_MEMORY) {
        return Err(refuse(
            "the run trained on arrays handed over from Python, which no command line              can give again; train it from Python again, or save the arrays as CSV and              give --data"
                .to_string(),
        ));
    }
    let out = args.out.clone().unwrap_or_else(|| {
        let dir = args.dir.to_string_lossy();
        PathBuf::from(format!("{}-rerun", dir.trim_end_matches('/')))
    });
    let mut argv: Vec<String> = ["gputrain", "train"].map(String::from).to_vec();
    argv.extend(record.command.iter().cloned());
    argv.extend(["--out".to_string(), out.to_string_lossy().into_owned()]);
    if let [index, count] = record.shard
        && count > 1
    {
        argv.extend(["--shard".to_string(), format!("{index}/{count}")]);
    }
    argv.extend(args.flags.iter().cloned());
    let version = env!("CARGO_PKG_VERSION");
    if record.version != version {
        eprintln!(
            "note: gputrain {} wrote {}; this is {version}, whose numbers may differ",
            record.version,
            path.display()
        );
    }
    let line: Vec<String> = argv.iter().map(|w| shell_word(w)).collect();
    eprintln!("rerun: {}", line.join(" "));
    Ok(main(&Cli::from_args(&argv)))
}

/// `gputrain completions SHELL`: the shell's completion script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    use clap::CommandFactory;
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "gputrain", &mut std::io::stdout());
    Ok(0)
}

/// `gputrain man [SUBCOMMAND]`: the manual page in roff on stdout.
fn man(subcommand: Option<&str>) -> Result<u8, Error> {
    use clap::CommandFactory;
    let mut command = Cli::command()
        .long_version(crate::cli::long_version())
        .display_name("gputrain");
    command.build();
    let page = match subcommand {
        None => command,
        Some(name) => {
            let names: Vec<String> = command
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .filter(|n| n != "help")
                .collect();
            let found = command.find_subcommand(name).cloned();
            let Some(sub) = found else {
                return Err(Error::Config(format!(
                    "man {name}: no such subcommand; there are {}",
                    names.join(", ")
                )));
            };
            sub.name(format!("gputrain-{name}"))
        }
    };
    let mut roff = Vec::new();
    clap_mangen::Man::new(page)
        .render(&mut roff)
        .expect("rendering into memory cannot fail");
    let _ = std::io::stdout().write_all(&roff);
    Ok(0)
}

/// Runs `gputrain data`: the task's samples as CSV (a header x0,...,y0,...
/// then one sample a line, every value as the shortest decimal that reads
/// back to the same float64), written whole or not at all.
pub fn data(args: &DataCommandArgs) -> Result<u8, Error> {
    let data = args.task.generate(&args.drawn.options(Some(args.task))?);
    let mut file = crate::output::TemporaryFile::create(&args.out)?;
    let text = data.to_csv();
    file.handle()
        .write_all(text.as_bytes())
        .map_err(|e| file.error(e))?;
    file.persist()?;
    Ok(0)
}

/// Runs `gputrain train`: the sweep's networks (a plain run is a sweep of
/// one point), or a shard's range of them, on one device or several.
/// Returns exit code 1 when `--verify` fails and 130 when Ctrl-C stopped
/// the run (after writing the outputs).
pub fn train(args: &TrainArgs) -> Result<u8, Error> {
    let quiet = args.output.quiet;
    let json = args.output.json;
    let plan = args.to_plan()?;
    let mut line = ProgressLine::new(args.output.progress, quiet)?;
    let mut last = None;
    let trained = train_with(
        plan,
        false,
        Hooks {
            progress: &mut |p| {
                line.update(p);
                last = Some(*p);
            },
            log: &mut |message| {
                if !quiet {
                    eprintln!("{}", crate::setting::render(message));
                }
            },
            stop: stop_on_signals(),
        },
    );
    line.finish_with(last.as_ref());
    let Trained {
        summary,
        passed,
        paths,
        models,
        ..
    } = trained?;
    if !quiet {
        for note in &summary.notes {
            eprintln!("note: {}", crate::setting::render(note));
        }
    }
    let text = if json {
        summary_json(&summary)
    } else {
        report::render(&summary)
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    // A stopped run's one weights file finishes it (a grid's cannot yet).
    // An early-stopping run's file holds each network's best weights so
    // far, which a resume cannot go on from.
    if let (true, false, 1, Some(written)) = (summary.interrupted, quiet, models, &paths.weights) {
        match summary.early_stopping {
            Some(_) => eprintln!(
                "{} holds each network's best weights so far; --early-stopping runs cannot \
                 be resumed yet: run the command again to finish",
                written.display()
            ),
            None => {
                let argv: Vec<String> = std::env::args().collect();
                eprintln!("to finish the run: {}", resume_command(&argv, written));
            }
        }
    }
    Ok(if summary.interrupted {
        exit_stopped()
    } else if passed {
        0
    } else {
        1
    })
}

/// The command that finishes a stopped run: `argv` (this one's words)
/// with `--resume WRITTEN`, the weights file the stop left, and the
/// outputs that would overwrite it renamed (`--weights W.safetensors` to
/// `W-resumed.safetensors`, `--out DIR` to `DIR-resumed`: an input is never
/// an output); without the flags a resume takes from the file instead
/// (`--init`, `--init-weights`, `--lr`, an earlier `--resume`). Each word
/// shell-quoted where it needs to be.
fn resume_command(argv: &[String], written: &std::path::Path) -> String {
    const DROPPED: [&str; 4] = ["--init", "--init-weights", "--lr", "--resume"];
    const RENAMED: [&str; 2] = ["--weights", "--out"];
    let mut words: Vec<String> = argv.iter().take(1).cloned().collect();
    let mut rest = argv.iter().skip(1);
    while let Some(word) = rest.next() {
        let (flag, inline) = match word.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (word.as_str(), None),
        };
        let renamed = RENAMED.contains(&flag);
        if !renamed && !DROPPED.contains(&flag) {
            words.push(word.clone());
            continue;
        }
        let value = inline.or_else(|| rest.next().cloned()).unwrap_or_default();
        if renamed {
            let resumed = match std::path::Path::new(&value).extension() {
                Some(ext) if flag == "--weights" => {
                    let ext = ext.to_string_lossy();
                    format!("{}-resumed.{ext}", &value[..value.len() - ext.len() - 1])
                }
                _ => format!("{}-resumed", value.trim_end_matches('/')),
            };
            words.extend([flag.to_string(), resumed]);
        }
    }
    words.extend(["--resume".to_string(), written.display().to_string()]);
    let quoted: Vec<String> = words.iter().map(|w| shell_word(w)).collect();
    quoted.join(" ")
}

/// `word` as a POSIX shell reads it back: as it is when it holds only
/// characters no shell treats specially, else in single quotes.
fn shell_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    match !word.is_empty() && word.chars().all(plain) {
        true => word.to_string(),
        false => format!("'{}'", word.replace('\'', "'\\''")),
    }
}

/// What the caller of [`train_with`] hears while the run goes on.
pub struct Hooks<'a> {
    /// Where the run stands, between chunks (from the training threads).
    pub progress: &'a mut (dyn FnMut(&Progress) + Send),
    /// A line for the user before training: the adapter, a shard's range
    /// (settings in it as markers, [`crate::setting::render`] spells them).
    pub log: &'a mut (dyn FnMut(&str) + Send),
    /// Asks the run to stop after the current chunk.
    pub stop: StopFlag,
}

/// A finished run, its files in place.
pub struct Trained {
    pub summary: crate::report::Summary,
    /// `--verify` passed (or was not asked for).
    pub passed: bool,
    /// Where the outputs went (the model `k` of `models`' weights file is
    /// [`OutputPaths::weights_file`]).
    pub paths: OutputPaths,
    pub models: usize,
    /// The outputs kept in memory (`train_with`'s `keep`).
    pub kept: Kept,
}

/// Trains `plan` ([`TrainArgs::to_plan`]) and writes its outputs, as
/// `gputrain train` does (the command adds the report on stdout and the
/// exit code; the Python package calls this too). With `keep`, the
/// results table, and the weights and (with --history) the curves that
/// the plan sends to no file, are kept in memory ([`Trained::kept`]); the
/// bytes are those the files would hold. (Split over several devices,
/// whose parts are joined from files, they are written to a temporary
/// directory and read back.) The network outputs are written as blocks
/// finish (under temporary names, renamed together at the end), and the
/// summary keeps a few bytes per network. A failed run leaves no trace: a
/// directory `--out` made is removed.
pub fn train_with(plan: TrainPlan, keep: bool, hooks: Hooks) -> Result<Trained, Error> {
    let created = plan.outputs.directory.clone().filter(|dir| !dir.exists());
    let result = train_run(&plan, keep, hooks);
    if let (Err(_), Some(dir)) = (&result, created) {
        // Empty: its files were never renamed into place.
        let _ = std::fs::remove_dir(dir);
    }
    result
}

/// A run's inputs and outputs, each with its setting, checked apart
/// ([`crate::output::check_distinct`]) before any work: every model's
/// weights file, the figure, and with a directory the directory's files.
fn check_train_paths(plan: &OutputPlan, paths: &OutputPaths, models: usize) -> Result<(), Error> {
    // The directory's files are --out's; --snapshots-out names its own.
    let setting = |given: Setting| match plan.directory.is_some() {
        true if given != crate::setting::settings::SNAPSHOTS_OUT => Setting("out"),
        _ => given,
    };
    let mut outputs: Vec<(Setting, PathBuf)> = paths
        .files(models)
        .into_iter()
        .map(|(given, path)| (setting(given), path))
        .collect();
    if let Some(plot) = &plan.plot {
        outputs.push((Setting("plot"), plot.clone()));
    }
    crate::output::check_distinct(&plan.inputs, &outputs)
}

/// Whether this run wrote `path` (one of its outputs).
fn written(paths: &OutputPaths, path: &std::path::Path, models: usize) -> bool {
    paths.files(models).iter().any(|(_, file)| file == path)
}

/// [`train_with`]'s work.
fn train_run(plan: &TrainPlan, keep: bool, hooks: Hooks) -> Result<Trained, Error> {
    let Hooks {
        progress,
        log,
        stop,
    } = hooks;
    let TrainPlan {
        sweep,
        outputs,
        shard,
        ..
    } = plan;
    let shard = *shard;
    // Several devices' parts are joined from files: what is kept goes
    // through a temporary directory there.
    let joined = match (keep, &plan.devices) {
        (true, Devices::Several(_)) => Some(RemoveOnDrop::temporary("joined")?),
        _ => None,
    };
    let paths = outputs.paths(joined.as_ref().map(|dir| dir.0.as_path()));
    check_train_paths(outputs, &paths, sweep.models())?;
    let snapshots = &sweep.points[0].config.snapshots;
    let kept_in = paths.weights_file(0, sweep.models()).is_some() || paths.snapshots.is_some();
    if !snapshots.is_empty() && !keep && !kept_in {
        return Err(Error::Config(format!(
            "{} keeps the parameters at those epochs in the weights file: give {}, {} or {}",
            crate::setting::settings::SNAPSHOTS,
            crate::setting::settings::WEIGHTS.is("FILE"),
            crate::setting::settings::OUT.is("DIR"),
            crate::setting::settings::SNAPSHOTS_OUT.is("FILE")
        )));
    }
    // An --out directory belongs to one run: its lock for the run's
    // lifetime, and an earlier run's files only replaced on --overwrite.
    let mut lock = None;
    let mut earlier = Vec::new();
    if let Some(dir) = &outputs.directory {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
        lock = Some(crate::output::DirLock::acquire(dir)?);
        earlier = crate::output::run_files_in(dir);
        if !earlier.is_empty() && !outputs.overwrite {
            return Err(Error::Config(format!(
                "--out {} already holds a run's files ({}): give --overwrite to replace them, \
                 or choose another --out",
                dir.display(),
                earlier.join(", ")
            )));
        }
    }
    paths.check()?;
    if let Some(plot) = &outputs.plot {
        check_writable(plot)?;
    }
    let range = shard.range(sweep.networks());
    let verify = plan.verify.map_or(0, |v| v.networks);
    for k in 0..sweep.models() {
        let mut config = sweep.points[sweep.model_ids(k).start / sweep.replicates.max(1)]
            .config
            .clone();
        config.networks = range.len().max(1);
        config.population = config.networks;
        memory::check_host(&config, sweep, verify, keep)?;
    }
    let run = RangeRun {
        sweep,
        shard,
        range: range.clone(),
        paths: &paths,
        verify: plan.verify,
        seed: plan.seed,
        command: &plan.command,
        keep: keep && joined.is_none(),
    };
    let finished = match &plan.devices {
        Devices::Several(adapters) => several_devices(&run, adapters, progress, log, &stop)?,
        Devices::One => {
            let (engine, backend) = run::open_backend(&sweep.points[0].config)?;
            if let Some(note) = &backend.note {
                log(&format!("note: {note}"));
            }
            if let Some(adapter) = &backend.adapter {
                log(&format!("adapter: {adapter}"));
            }
            if shard.count > 1 {
                log(&format!(
                    "shard {shard}: networks {}..{} of {}",
                    range.start,
                    range.end,
                    sweep.networks()
                ));
            }
            run.train(&engine, &backend, progress, &stop)?
        }
    };
    let passed = finished.passed;
    let (summary, mut kept) = finished.persist()?;
    if let Some(dir) = &joined {
        kept = Kept::read_back(&paths, &dir.0, sweep.models())?;
    }
    // --overwrite: the earlier run's files this run did not write go.
    if let Some(dir) = &outputs.directory {
        for name in &earlier {
            let path = dir.join(name);
            if !written(&paths, &path, sweep.models()) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    drop(lock);
    if let Some(path) = &outputs.plot {
        plot_at_end(&summary, path)?;
    }
    Ok(Trained {
        summary,
        passed,
        paths: match joined {
            // Gone with the directory: the outputs named are the plan's.
            Some(_) => outputs.paths(None),
            None => paths,
        },
        models: sweep.models(),
        kept,
    })
}

/// Trains `run`'s range split over several devices at once, one thread
/// each (`--adapter all`, `--adapter 0,1`): device i trains the i-th of
/// contiguous parts into a directory of its own, and the parts are joined
/// exactly as `gputrain merge` joins shards. The summary's wall time is
/// the parallel section's.
fn several_devices(
    run: &RangeRun,
    adapters: &[usize],
    progress: &mut (dyn FnMut(&Progress) + Send),
    log: &mut (dyn FnMut(&str) + Send),
    stop: &StopFlag,
) -> Result<Finished, Error> {
    use std::sync::Mutex;
    let count = adapters.len();
    // Beside the outputs where there is a directory (the parts are as
    // large as the run's files), else in the temporary directory.
    let name = format!(".gputrain-devices-{}", std::process::id());
    let scratch = match run.paths.run.as_deref().and_then(std::path::Path::parent) {
        Some(dir) => dir.join(name),
        None => std::env::temp_dir().join(name),
    };
    let _cleanup = RemoveOnDrop(scratch.clone());
    let history = run.sweep.points[0].config.history.is_some();
    let parts: Vec<(PathBuf, OutputPaths, std::ops::Range<usize>)> = (0..count)
        .map(|i| {
            let dir = scratch.join(i.to_string());
            let mut paths = OutputPaths::directory(&dir, history);
            if run.paths.weights.is_none() {
                paths.weights = None;
            }
            let local = Shard { index: i, count }.range(run.range.len());
            let ids = run.range.start + local.start..run.range.start + local.end;
            (dir, paths, ids)
        })
        .collect();
    for (dir, _, _) in &parts {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
    }
    let totals: Vec<u64> = parts
        .iter()
        .map(|(_, _, ids)| ids.len() as u64 * run.sweep.points[0].config.options.epochs)
        .collect();
    let progress = Mutex::new((vec![0u64; count], progress));
    let log = Mutex::new(log);
    let started = std::time::Instant::now();
    let results: Vec<Result<(), Error>> = std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, (_, paths, ids))| {
                let (progress, log) = (&progress, &log);
                let totals = &totals;
                scope.spawn(move || -> Result<(), Error> {
                    let mut config = run.sweep.points[0].config.clone();
                    config.adapter = crate::gpu::AdapterChoice::Index(adapters[i]);
                    config.backend = BackendChoice::Gpu;
                    let (engine, backend) = run::open_backend(&config)?;
                    if let Some(adapter) = &backend.adapter {
                        let mut log = log.lock().expect("log lock");
                        (*log)(&format!(
                            "device {i}: {adapter}, networks {}..{}",
                            ids.start, ids.end
                        ));
                    }
                    let part = RangeRun {
                        shard: Shard { index: i, count },
                        range: ids.clone(),
                        paths,
                        ..*run
                    };
                    let mut report = |p: &Progress| {
                        let mut guard = progress.lock().expect("progress lock");
                        let (done, report) = &mut *guard;
                        done[i] = p.network_epochs_done;
                        report(&Progress {
                            network_epochs_done: done.iter().sum(),
                            network_epochs_total: totals.iter().sum(),
                        });
                    };
                    let finished = part.train(&engine, &backend, &mut report, stop);
                    match finished {
                        Ok(finished) => finished.persist().map(|_| ()),
                        Err(e) => {
                            // The others stop too: their work would be lost.
                            stop.request();
                            Err(e)
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a device thread panicked"))
            .collect()
    });
    for result in results {
        result?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let dirs: Vec<PathBuf> = parts.iter().map(|(dir, _, _)| dir.clone()).collect();
    let shards = crate::sweep::merge::open_parts(&dirs)?;
    let whole = RunRecord::of(run);
    let (mut summary, mut files) = crate::sweep::merge::join(&shards, run.paths, &whole)?;
    let network_epochs = summary.network_epochs_per_second * summary.wall_seconds;
    summary.wall_seconds = seconds;
    summary.network_epochs_per_second = network_epochs / seconds.max(f64::MIN_POSITIVE);
    // The summary's files carry the parallel wall time.
    files.extend(crate::sweep::outputs::summary_files(
        run.paths, &summary, &whole,
    )?);
    Ok(Finished {
        summary,
        passed: true,
        files,
        kept: Kept::default(),
    })
}

/// Removes a scratch directory when dropped.
struct RemoveOnDrop(PathBuf);

impl RemoveOnDrop {
    /// A new directory in the system's temporary directory.
    fn temporary(purpose: &str) -> Result<Self, Error> {
        let dir = std::env::temp_dir().join(format!(".gputrain-{purpose}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            path: dir.clone(),
            source: e,
        })?;
        Ok(Self(dir))
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `gputrain merge`: joins shard directories into one run's files.
pub fn merge(args: &MergeArgs) -> Result<u8, Error> {
    if let Some(shard) = args
        .shards
        .iter()
        .find(|shard| crate::output::same_path(shard, &args.out))
    {
        return Err(Error::Config(format!(
            "--out {} is also the shard {}: the merged files would replace that shard's; \
             give merge a directory of its own",
            args.out.display(),
            shard.display()
        )));
    }
    let summary = crate::sweep::merge::merge(&args.shards, &args.out)?;
    if !args.quiet {
        let text = match args.json {
            true => summary_json(&summary),
            false => report::render(&summary),
        };
        let _ = std::io::stdout().write_all(text.as_bytes());
    }
    Ok(0)
}

/// Runs `gputrain bench`: measures every row, then prints the table (or
/// JSON) on stdout; what it is measuring goes to stderr.
pub fn bench(args: &BenchArgs) -> Result<u8, Error> {
    crate::gpu::device::check_environment()?;
    let suite = args.to_suite()?;
    if let Some(path) = &args.report {
        crate::output::check_distinct(&[], &[(Setting("report"), path.clone())])?;
        check_writable(path)?;
    }
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
        machine: crate::backend::cpu_name(crate::backend::cpu_threads(None).0),
        peak: matches!(
            suite.backends,
            bench::BackendFilter::All | bench::BackendFilter::Simd
        )
        .then(|| {
            let threads = crate::backend::cpu_threads(None).0;
            bench::peak::measure(bench::peak::physical_cores(threads))
        })
        .flatten(),
        peers,
        adapters: match suite.backends {
            bench::BackendFilter::Cpu | bench::BackendFilter::Simd => Vec::new(),
            _ => list_adapters()
                .iter()
                .map(|a| {
                    format!(
                        "{a}; max storage binding {} MiB, {} invocations a workgroup, \
                         timestamp queries {}",
                        a.max_storage_buffer_binding_size >> 20,
                        a.max_compute_invocations_per_workgroup,
                        if a.timestamp_queries { "yes" } else { "no" }
                    )
                })
                .collect(),
        },
    };
    if let Some(path) = &args.report {
        let words: Vec<String> = std::env::args().skip(1).collect();
        let context = bench::ReportContext {
            command: format!("gputrain {}", words.join(" ")),
            date: utc_now(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        };
        write_whole(path, &bench::render_markdown(&report, &context))?;
    }
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
        return Ok(1);
    }
    Ok(0)
}

/// `--plot`'s figure: a grid's grouped statistics, or a run's learning
/// curves (the plan asked for `--history` where there is no grid).
fn plot_at_end(summary: &crate::report::Summary, path: &std::path::Path) -> Result<(), Error> {
    let labels = crate::plot::Labels::of(
        &summary.topology,
        &summary.data,
        &summary.loss,
        &summary.reduction,
    )
    .with_samples(summary.samples, summary.eval_samples);
    if summary.groups.len() > 1 {
        let grid = crate::plot::groups::Grid {
            axes: summary.grid.iter().map(|a| a.column.clone()).collect(),
            groups: summary.groups.clone(),
        };
        return crate::plot::groups::figure(&grid, None, &labels, "", path, "--plot");
    }
    if let Some(points) = &summary.history {
        let curves = crate::plot::Curves {
            points: points.clone(),
            networks: summary.networks as u64,
            target_loss: summary.target_loss,
            source: String::new(),
            labels,
        };
        crate::plot::history(&curves, path, "--plot")?;
    }
    Ok(())
}

/// Runs `gputrain plot`: one figure, written whole or not at all.
pub fn plot(figure: &PlotCommand) -> Result<u8, Error> {
    match figure {
        PlotCommand::History {
            input,
            out,
            target_loss,
            by,
        } => {
            let out = out
                .clone()
                .unwrap_or_else(|| crate::plot::default_output(input));
            crate::plot::Format::of(&out, "--out")?;
            let grid = crate::plot::grid_curves::read(
                input,
                by.as_deref().map(|b| ("--by", b)),
                *target_loss,
            )?;
            if let Some(grid) = grid {
                crate::plot::grid_curves::figure(&grid, &out, "--out")?;
                return Ok(0);
            }
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
            let labels = crate::plot::Labels::beside(input);
            crate::plot::results(&networks, &name, &labels, &out, "--out")?;
        }
        PlotCommand::Groups { input, out, x } => {
            let out = out
                .clone()
                .unwrap_or_else(|| crate::plot::default_output(input));
            crate::plot::Format::of(&out, "--out")?;
            let grid = crate::plot::groups::read(input)?;
            let name = input
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            let labels = crate::plot::Labels::beside(input);
            let along = x.as_deref().map(|x| ("--x", x));
            crate::plot::groups::figure(&grid, along, &labels, &name, &out, "--out")?;
        }
    }
    Ok(0)
}

/// Every adapter wgpu finds, as `gputrain adapters --json` lists them
/// (and the Python package's `adapters()`).
pub fn adapters_json() -> Vec<serde_json::Value> {
    list_adapters()
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
        .collect()
}

/// Runs `gputrain adapters`.
pub fn adapters(json: bool) -> Result<u8, Error> {
    crate::gpu::device::check_environment()?;
    if json {
        println!("{}", serde_json::Value::Array(adapters_json()));
        return Ok(0);
    }
    let adapters = list_adapters();
    let unreached = crate::gpu::hardware::unreached(|| adapters.clone());
    if adapters.is_empty() {
        return Err(match unreached {
            Some(u) => Error::GpuUnreached {
                diagnosis: u.to_string(),
            },
            None => Error::NoAdapter {
                detail: String::new(),
            },
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
    if let Some(u) = unreached {
        eprintln!("note: {u}");
    }
    Ok(0)
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
    /// The resample each network trained on, as the weights file records
    /// it ("bootstrap", "subsample 0.5"): an ensemble of them is a bagged
    /// ensemble (scikit-learn's BaggingClassifier, whose predict_proba is
    /// the mean).
    pub resample: Option<String>,
    /// With `--oob`: the samples some chosen network never drew, which
    /// the out-of-bag ensemble combines and scores (the others' outputs
    /// are NaN).
    pub oob_samples: Option<usize>,
    pub notes: Vec<String>,
}

/// `--oob`: each chosen network's row counts, recomputed from the weights
/// file's resample and its replicate; the data must be the run's training
/// rows (their count is checked).
fn out_of_bag_counts(
    args: &PredictArgs,
    spec: &crate::model::ModelSpec,
    data: &crate::data::Dataset,
    chosen: &[usize],
) -> Result<Vec<Vec<u8>>, Error> {
    let (_, meta) = crate::weights::recorded_run(&args.weights)?;
    let number = |field: &str| meta.get(field).and_then(|v| v.parse::<usize>().ok());
    let (Some(resample), Some(replicates), Some(rows)) =
        (spec.resample, number("replicates"), number("training_rows"))
    else {
        return Err(Error::Config(format!(
            "--oob combines each sample's out-of-bag networks, but --weights {} records no \
             resample of the training rows (train with --bootstrap or --subsample)",
            args.weights.display()
        )));
    };
    if data.samples() != rows {
        return Err(Error::Config(format!(
            "--oob scores the run's training rows: the networks of --weights {} trained on {rows} \
             rows, and --data {} has {}",
            args.weights.display(),
            args.data.display(),
            data.samples()
        )));
    }
    Ok(chosen
        .iter()
        .map(|&n| resample.counts(rows, (n % replicates.max(1)) as u64))
        .collect())
}

/// Runs `gputrain predict`: the chosen networks' outputs on every sample
/// (or their ensemble's) as CSV, and with targets their scores. Output
/// files are written whole or not at all.
pub fn predict(args: &PredictArgs) -> Result<u8, Error> {
    crate::gpu::device::check_environment()?;
    if args.json && args.out.is_none() {
        return Err(Error::Config(
            "--json needs --out FILE.csv: without it the predictions go to standard output".into(),
        ));
    }
    let inputs = [
        (Setting("weights"), args.weights.clone()),
        (Setting("data"), args.data.clone()),
    ];
    let outputs: Vec<(Setting, PathBuf)> = [
        (Setting("out"), &args.out),
        (Setting("scores"), &args.scores),
    ]
    .into_iter()
    .filter_map(|(setting, path)| path.clone().map(|p| (setting, p)))
    .collect();
    crate::output::check_distinct(&inputs, &outputs)?;
    for path in [&args.out, &args.scores].into_iter().flatten() {
        check_writable(path)?;
    }
    let spec = crate::weights::recorded_model(&args.weights)?;
    let (inputs, outputs) = (spec.topology.inputs(), spec.topology.outputs());
    let classes = args.targets == crate::cli::TargetFormat::Class;
    let rule = spec.target_rule().with_classes(classes);
    let data = load_prediction_csv(&args.data, inputs, outputs, rule)?;
    let targets = data.outputs > 0;
    if args.scores.is_some() && !targets {
        return Err(Error::Config(format!(
            "--scores needs targets in --data {} (each row: {inputs} inputs, then {outputs} \
             targets)",
            args.data.display()
        )));
    }
    let source = crate::weights::Source::Path(args.weights.clone());
    let loaded = crate::weights::read_snapshot(&source, &spec, args.snapshot)?;
    let p = spec.layout().len;
    let all_scores = targets.then(|| crate::evaluation::scores(&spec, &loaded.params, &data));
    let losses: Option<Vec<f64>> = all_scores
        .as_ref()
        .map(|s| s.iter().map(|x| x.loss).collect());
    let chosen = args
        .networks_select
        .indices(loaded.networks, losses.as_deref())?;
    crate::predict::refuse_never_started(&args.weights, &loaded, &chosen)?;
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
    let out_of_bag = match args.oob {
        true => Some(out_of_bag_counts(args, &spec, &data, &chosen)?),
        false => None,
    };
    let params: Vec<f64> = chosen
        .iter()
        .flat_map(|&n| loaded.params[n * p..(n + 1) * p].iter().copied())
        .collect();
    let crate::predict::Forward {
        values,
        single,
        adapter,
        notes,
    } = crate::predict::forward(&spec, &params, &data, args.backend, &args.adapter)?;
    let number = |v: f64| match single {
        true => format!("{}", v as f32),
        false => format!("{v}"),
    };
    let mut text = String::new();
    let names = |prefix: &'static str| (0..outputs).map(move |j| format!("{prefix}_{j}"));
    let mut ensemble_accuracy = None;
    let mut oob_samples = None;
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
            let (combined, spread) = match &out_of_bag {
                None => crate::predict::combine(how, &values, chosen.len(), per_network),
                Some(counts) => {
                    let never = |n: usize, s: usize| counts[n][s] == 0;
                    let networks = chosen.len();
                    crate::predict::combine_where(
                        how,
                        &values,
                        networks,
                        per_network,
                        outputs,
                        never,
                    )
                }
            };
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
            // Scored over every sample, but with --oob over those some
            // chosen network left out (a mask of them).
            let scored: Option<Vec<u8>> = out_of_bag.as_ref().map(|_| {
                let left_out = |s: usize| u8::from(combined[s * outputs].is_finite());
                (0..data.samples()).map(left_out).collect()
            });
            oob_samples = scored
                .as_ref()
                .map(|m| m.iter().filter(|&&k| k == 1).count());
            ensemble_accuracy = crate::evaluation::labels(&spec, &data)
                .filter(|_| oob_samples != Some(0))
                .map(|l| {
                    crate::evaluation::weighted_accuracy(l, &combined, &data, scored.as_deref())
                });
        }
    }
    let chosen_scores: Option<Vec<Score>> = all_scores
        .as_ref()
        .map(|all| chosen.iter().map(|&n| all[n]).collect());
    let summary = PredictSummary {
        weights: args.weights.display().to_string(),
        data: args.data.display().to_string(),
        topology: spec.topology.to_string(),
        backend: if adapter.is_some() { "gpu" } else { "cpu" },
        adapter,
        networks: chosen.len(),
        samples: data.samples(),
        targets,
        ensemble: args.ensemble,
        scores: chosen_scores.as_deref().map(ScoreSummary::of),
        ensemble_accuracy,
        resample: spec.resample.map(|r| r.how.to_string()),
        oob_samples,
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
    Ok(0)
}

/// Writes `text` to `path` under a temporary name, renamed when complete.
fn write_whole(path: &std::path::Path, text: &str) -> Result<(), Error> {
    let mut file = crate::output::TemporaryFile::create(path)?;
    file.handle()
        .write_all(text.as_bytes())
        .map_err(|e| file.error(e))?;
    file.persist()
}

/// The time now in UTC as `YYYY-MM-DD HH:MM` (the civil date from the
/// days since 1970 by Howard Hinnant's `civil_from_days`).
fn utc_now() -> String {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60
    )
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
        let bagged = match (&s.resample, s.oob_samples) {
            (Some(r), Some(scored)) => format!(
                "out-of-bag ensemble ({how} over each sample's networks that never drew it, of \
                 {} networks, each on its own {r}; {scored} of {} samples left out by some)",
                s.networks, s.samples
            ),
            _ => match &s.resample {
                Some(r) => format!(
                    "bagged ensemble ({how} of {} networks, each on its own {r})",
                    s.networks
                ),
                None => format!("ensemble ({how} of {} networks)", s.networks),
            },
        };
        out.push_str(&format!(
            "{bagged}{}\n",
            s.ensemble_accuracy
                .map_or(String::new(), |a| format!(": accuracy {}", percent(a)))
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        line.split(' ').map(String::from).collect()
    }

    #[test]
    fn a_resume_command_renames_the_weights_and_drops_the_start() {
        let argv = words(
            "gputrain --task xor --init he --lr=0.1..1 --weights runs/w.safetensors --epochs 9",
        );
        let written = std::path::Path::new("runs/w.safetensors");
        assert_eq!(
            resume_command(&argv, written),
            "gputrain --task xor --weights runs/w-resumed.safetensors --epochs 9 --resume \
             runs/w.safetensors"
        );
        // A resume stopped again: its own --resume gives way to the new file.
        let argv = words("gputrain train --out runs/a/ --resume old.safetensors");
        let written = std::path::Path::new("runs/a/weights.safetensors");
        assert_eq!(
            resume_command(&argv, written),
            "gputrain train --out runs/a-resumed --resume runs/a/weights.safetensors"
        );
    }

    #[test]
    fn shell_words_are_quoted_only_where_a_shell_needs_it() {
        assert_eq!(shell_word("--lr"), "--lr");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), "'it'\\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }
}
