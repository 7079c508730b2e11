//! Helpers shared by the integration tests: model specs, the seed-003
//! network, and float comparisons that name the network and parameter.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::{Command, Output};

use gputrain::backend::{Backend, Engine, TrainerSetup};
use gputrain::cpu;
use gputrain::data::Dataset;
use gputrain::gpu::{GpuOptions, Strategy};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{
    ACTIVATIONS, BiasMode, Loss, ModelSpec, Optimizer, OptimizerConfig, Reduction, Topology,
};
use gputrain::trainer::Block;
use gputrain::training::{NetworkOutcome, TrainOptions};
use gputrain::vocab::LOSSES;

/// float32 (GPU) vs float64 (CPU) after the strategy tests' runs (up to
/// 400 epochs, tests/gpu_fused.rs and tests/gpu_layered.rs): parameters
/// within `PARAM_TOL (1 + |ref|)`. Measured on lavapipe over every case of
/// those tests, the worst |diff| was 4.5e-5 (layered, 8-33-2 shared sse);
/// 10x that.
pub const PARAM_TOL: f64 = 4.5e-4;
/// Final losses within `LOSS_TOL (1e-3 + |ref|)`: the worst
/// |diff| / (1e-3 + |ref|) measured in the same runs was 1.2e-4; 10x.
pub const LOSS_TOL: f64 = 1.2e-3;

pub fn options(epochs: u64) -> TrainOptions {
    TrainOptions {
        epochs,
        ..TrainOptions::default()
    }
}

/// What a training gave: outcomes, trained parameters and optimizer
/// state.
pub struct Run {
    pub outcomes: Vec<NetworkOutcome>,
    pub params: Vec<f64>,
    pub state: Vec<f64>,
    pub kernel_seconds: Option<f64>,
}

/// Trains `initial` from fresh optimizer state through the trainer
/// `engine` builds for `setup` (the crate's one backend switch), asking
/// `stop` at every progress report.
pub fn run_on(
    engine: &Engine,
    setup: &TrainerSetup,
    initial: &[f64],
    lrs: &[f64],
    opts: &TrainOptions,
    stop: &dyn Fn() -> bool,
) -> Run {
    let spec = setup.spec;
    let trainer = engine
        .trainer(setup)
        .unwrap_or_else(|e| panic!("building a trainer for {}: {e}", spec.topology));
    let mut params = initial.to_vec();
    let mut state = vec![0.0; spec.optimizer.state_slots() * params.len()];
    let block = Block {
        params: &mut params,
        state: &mut state,
        learning_rates: lrs,
        rows: None,
    };
    let mut control = |_: &_| match stop() {
        true => ControlFlow::Break(()),
        false => ControlFlow::Continue(()),
    };
    let trained = trainer
        .train(block, opts, &mut control)
        .unwrap_or_else(|e| panic!("{} training of {}: {e}", trainer.label(), spec.topology));
    Run {
        outcomes: trained.outcomes,
        params,
        state,
        kernel_seconds: trained.kernel_seconds,
    }
}

/// Trains `params` in place on `engine` with the default setup but
/// `strategy` and `gpu_options`.
pub fn train_on(
    engine: &Engine,
    (strategy, gpu_options): (Strategy, &GpuOptions),
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    lrs: &[f64],
    opts: &TrainOptions,
) -> Vec<NetworkOutcome> {
    let setup = TrainerSetup {
        strategy,
        gpu: gpu_options,
        ..TrainerSetup::new(spec, data, lrs.len())
    };
    let run = run_on(engine, &setup, params, lrs, opts, &|| false);
    params.copy_from_slice(&run.params);
    run.outcomes
}

/// Trains in place on the test GPU with `strategy`.
pub fn gpu_train(
    strategy: Strategy,
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    lrs: &[f64],
    opts: &TrainOptions,
    gpu_options: &GpuOptions,
) -> Vec<NetworkOutcome> {
    let engine = gpu_engine();
    assert_eq!(
        engine.backend(spec, data.samples(), strategy).unwrap(),
        Backend::Gpu(strategy),
        "the strategy asked for is the one built"
    );
    train_on(
        &engine,
        (strategy, gpu_options),
        spec,
        data,
        params,
        lrs,
        opts,
    )
}

/// Trains `initial` on the float32 SIMD trainer with an instruction set
/// on a number of threads, from fresh optimizer state, asking `stop`.
pub fn simd_run(
    (isa, threads): (gputrain::simd::Isa, usize),
    spec: &ModelSpec,
    data: &Dataset,
    initial: &[f64],
    lrs: &[f64],
    opts: &TrainOptions,
    stop: &dyn Fn() -> bool,
) -> Run {
    let setup = TrainerSetup {
        threads: Some(threads),
        ..TrainerSetup::new(spec, data, lrs.len())
    };
    run_on(&Engine::Simd(isa), &setup, initial, lrs, opts, stop)
}

/// Every model of the vocabulary on a `widths` network: each hidden
/// activation x (output activation, loss) pair the loss accepts x
/// optimizer of `optimizers` x bias mode, the losses averaged.
pub fn every_model(widths: &[usize], optimizers: &[Optimizer]) -> Vec<ModelSpec> {
    let mut specs = Vec::new();
    for hidden in ACTIVATIONS.iter().filter(|a| a.as_hidden) {
        for output in ACTIVATIONS.iter().filter(|a| a.as_output) {
            for loss in LOSSES
                .iter()
                .filter(|l| l.loss.accepts_output(output.activation))
            {
                for &kind in optimizers {
                    for bias in BiasMode::ALL {
                        specs.push(ModelSpec {
                            topology: Topology::new(widths.to_vec()).unwrap(),
                            bias,
                            activation: hidden.activation,
                            output_activation: output.activation,
                            loss: loss.loss,
                            reduction: Reduction::Mean,
                            optimizer: OptimizerConfig::of(kind),
                            ..ModelSpec::default()
                        });
                    }
                }
            }
        }
    }
    specs
}

/// Asserts two runs of the same population agree: divergence, final loss
/// and every parameter, naming the network and parameter that differ.
pub fn assert_runs_agree(
    label: &str,
    spec: &ModelSpec,
    lrs: &[f64],
    got: (&[NetworkOutcome], &[f64]),
    reference: (&[NetworkOutcome], &[f64]),
) {
    let layout = spec.layout();
    let p = layout.len;
    let (mut worst, mut worst_loss) = (0.0f64, 0.0f64);
    for (i, lr) in lrs.iter().enumerate() {
        let (g, c) = (&got.0[i], &reference.0[i]);
        assert_eq!(
            g.diverged, c.diverged,
            "{label}: network {i} divergence: got {g:?} reference {c:?}"
        );
        let loss_tol = LOSS_TOL * (1e-3 + c.final_loss.abs());
        if !c.diverged {
            let scaled = (g.final_loss - c.final_loss).abs() / (1e-3 + c.final_loss.abs());
            worst_loss = worst_loss.max(scaled);
        }
        assert!(
            (g.final_loss - c.final_loss).abs() <= loss_tol,
            "{label}: network {i} (lr {lr}): final loss {} vs reference {} differ by more than {loss_tol:e}",
            g.final_loss,
            c.final_loss
        );
        for k in 0..p {
            let (gv, cv) = (got.1[i * p + k], reference.1[i * p + k]);
            let tol = PARAM_TOL * (1.0 + cv.abs());
            worst = worst.max((gv - cv).abs());
            assert!(
                (gv - cv).abs() <= tol,
                "{label}: network {i} (lr {lr}) {}: got {gv} reference {cv} differ by {:e} > {tol:e}",
                layout.describe(k),
                (gv - cv).abs()
            );
        }
    }
    eprintln!(
        "{label}: largest parameter |diff| {worst:e} (tolerance {PARAM_TOL:e}), \
         final loss |diff| / (1e-3 + |ref|) {worst_loss:e}"
    );
}

/// Trains the same population with `strategy` and the float64 CPU
/// reference and asserts they agree.
pub fn assert_gpu_matches_cpu(
    label: &str,
    strategy: Strategy,
    spec: &ModelSpec,
    data: &Dataset,
    init: Init,
    lrs: &[f64],
    opts: &TrainOptions,
) {
    let initial = population_parameters(spec, init, 11, 0, lrs.len()).unwrap();
    let (mut on_gpu, mut on_cpu) = (initial.clone(), initial);
    let gpu_out = gpu_train(
        strategy,
        spec,
        data,
        &mut on_gpu,
        lrs,
        opts,
        &GpuOptions::default(),
    );
    let cpu_out = cpu::train_population(spec, data, &mut on_cpu, lrs, opts);
    let label = format!("{strategy} vs cpu, {label}");
    assert_runs_agree(&label, spec, lrs, (&gpu_out, &on_gpu), (&cpu_out, &on_cpu));
}

pub fn spec(widths: &[usize], bias: BiasMode, loss: Loss, reduction: Reduction) -> ModelSpec {
    ModelSpec {
        topology: Topology::new(widths.to_vec()).expect("valid test topology"),
        bias,
        loss,
        reduction,
        // The output the loss is defined for (softmax for the categorical
        // cross-entropy), else the seeds' sigmoid.
        output_activation: loss.def().requires_output.unwrap_or_default(),
        ..ModelSpec::default()
    }
}

/// `data` as `spec` trains on it: for a row-form output (softmax) each
/// sample's targets scaled to sum to 1, a distribution over the classes,
/// as the data loader requires; otherwise as it is.
pub fn data_for(spec: &ModelSpec, data: &Dataset) -> Dataset {
    let mut data = data.clone();
    if spec.output_activation.def().normalizes_rows {
        for row in data.y.chunks_exact_mut(data.outputs) {
            let sum: f64 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= sum);
        }
    }
    data
}

/// docs/design.md: seed 003's parameters after one step, in our layout (w1..w4,
/// b1, w5..w8, b2).
pub const SEED_ONE_STEP: [f64; 10] = [
    0.149780716132763,
    0.199561432265526,
    0.249751143632370,
    0.299502287264739,
    0.340637195302648,
    0.358916479717885,
    0.408666186076233,
    0.511301270238738,
    0.561370121107989,
    0.549799837444000,
];

/// Seed 003's 2-2-2 network with one shared bias per layer and half-sse.
pub fn tutorial_spec() -> ModelSpec {
    spec(&[2, 2, 2], BiasMode::Shared, Loss::HalfSse, Reduction::Sum)
}

/// Asserts `|actual - expected| <= tol` for every element, naming the first
/// offending network and parameter on failure.
pub fn assert_close_per_network(
    what: &str,
    actual: &[f64],
    expected: &[f64],
    per_network: usize,
    tol: f64,
    name_of: impl Fn(usize) -> String,
) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let mut worst = (0.0f64, 0usize);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a - e).abs();
        if diff.is_nan() || diff > tol {
            panic!(
                "{what}: network {} {}: got {a}, expected {e}, |diff| {diff:e} > tolerance {tol:e}",
                i / per_network,
                name_of(i % per_network)
            );
        }
        if diff > worst.0 {
            worst = (diff, i);
        }
    }
    eprintln!("{what}: largest |diff| {:e} (tolerance {tol:e})", worst.0);
}

/// A small deterministic data set with targets in [0.1, 0.9].
pub fn synthetic_dataset(inputs: usize, outputs: usize, samples: usize, salt: u64) -> Dataset {
    gputrain::data::synthetic(inputs, outputs, samples, salt)
}

/// Opens the GPU the tests run on. No adapter is a loud failure: GPU tests
/// never pass by skipping.
pub fn gpu() -> &'static gputrain::gpu::GpuContext {
    gpu_context()
}

/// The test GPU as an engine to build trainers on.
pub fn gpu_engine() -> Engine {
    Engine::Gpu(gpu_context().clone())
}

fn gpu_context() -> &'static std::sync::Arc<gputrain::gpu::GpuContext> {
    use std::sync::{Arc, OnceLock};
    static CTX: OnceLock<Arc<gputrain::gpu::GpuContext>> = OnceLock::new();
    CTX.get_or_init(
        || match gputrain::gpu::GpuContext::open(&gputrain::gpu::AdapterChoice::Auto) {
            Ok(ctx) => {
                eprintln!("GPU tests run on {}", ctx.adapter);
                Arc::new(ctx)
            }
            Err(e) => panic!(
                "GPU tests need a wgpu adapter and found none: {e}\n\
                 On Debian/Ubuntu without a GPU: apt-get install -y mesa-vulkan-drivers \
                 (lavapipe, Mesa's software Vulkan driver)."
            ),
        },
    )
}

/// Runs the gputrain binary with `args` (headless, as on a server).
pub fn gputrain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gputrain"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run gputrain")
}

/// Runs gputrain with extra environment variables, and without the
/// schedulers' (so a test's `--shard auto` sees only what it sets).
#[allow(dead_code)]
pub fn gputrain_env(args: &[&str], vars: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gputrain"));
    command
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir());
    for name in [
        "SLURM_ARRAY_TASK_ID",
        "SLURM_ARRAY_TASK_COUNT",
        "SLURM_ARRAY_TASK_MIN",
        "SLURM_ARRAY_TASK_MAX",
        "JOB_COMPLETION_INDEX",
    ] {
        command.env_remove(name);
    }
    command
        .envs(vars.iter().copied())
        .output()
        .expect("run gputrain")
}

/// A fresh directory for one test's files.
pub fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gputrain-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A temporary path as a command-line argument.
pub fn arg(path: &std::path::Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// Runs gputrain, which must succeed; returns its standard output.
pub fn run_ok(args: &[&str]) -> String {
    let out = gputrain(args);
    assert!(
        out.status.success(),
        "gputrain {args:?} failed ({:?}): {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Runs gputrain, which must fail with exit `code`; returns its stderr.
pub fn run_err(args: &[&str], code: i32) -> String {
    let out = gputrain(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(code), "gputrain {args:?}: {stderr}");
    stderr
}

/// Starts gputrain with `args` (outputs discarded but stderr), sends it
/// SIGINT (Ctrl-C) after `after`, and waits for it to end.
pub fn interrupted(args: &[&str], after: std::time::Duration) -> Output {
    signalled("INT", args, after)
}

/// Runs gputrain with `args`, sends it `signal` (kill's name: INT, TERM,
/// HUP) after `after`, and waits for it to end.
pub fn signalled(signal: &str, args: &[&str], after: std::time::Duration) -> Output {
    signalled_env(signal, args, after, &[])
}

/// [`signalled`] with extra environment variables.
pub fn signalled_env(
    signal: &str,
    args: &[&str],
    after: std::time::Duration,
    vars: &[(&str, &str)],
) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_gputrain"))
        .args(args)
        .envs(vars.iter().copied())
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gputrain");
    std::thread::sleep(after);
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(sent.success(), "kill -{signal} {}", child.id());
    child
        .wait_with_output()
        .expect("gputrain ends after the signal")
}

/// A results CSV's rows as maps from column to cell.
pub fn results_by_column(
    path: &std::path::Path,
) -> Vec<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let names: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|line| {
            let cells = line.split(',').map(str::to_string);
            names.iter().map(|n| n.to_string()).zip(cells).collect()
        })
        .collect()
}
