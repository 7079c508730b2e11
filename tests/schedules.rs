//! Learning-rate schedules mean what PyTorch's mean: every entry's rate
//! at every epoch equals the rate PyTorch's scheduler gives when stepped
//! once per epoch, worked out here from torch/optim/lr_scheduler.py's own
//! recursions (the "chainable" get_lr each step() calls, SequentialLR's
//! switch at its milestone), independently of src/schedule.rs's closed
//! forms. The command line: settings recorded in the weights file and
//! the summary, a schedule as a grid axis, a resume that takes the
//! schedule from its file, and bad settings refused before any output.
//! That every trainer follows the rates: tests/agreement.rs
//! (`every_schedule_agrees_with_the_reference`) and tests/resume.rs.

use crate::common;

use common::{arg, run_err, run_ok, temp_dir};
use gputrain::schedule::{Schedule, ScheduleConfig, ScheduleRequest};

/// A scheduler as torch.optim.lr_scheduler writes it: `initial` is the
/// rate its constructor's first step gives (last_epoch 0), `next` the
/// rate of the step to `epoch` from the group's current rate `lr`.
trait TorchScheduler {
    fn initial(&self, base: f64) -> f64;
    fn next(&mut self, lr: f64, base: f64, epoch: u64) -> f64;
    /// `_get_closed_form_lr` at `epoch`, which `step(epoch)` uses.
    fn closed_form(&self, base: f64, epoch: u64) -> f64;
}

struct StepLr {
    step_size: u64,
    gamma: f64,
}

impl TorchScheduler for StepLr {
    fn initial(&self, base: f64) -> f64 {
        base
    }
    fn next(&mut self, lr: f64, _: f64, epoch: u64) -> f64 {
        if epoch == 0 || !epoch.is_multiple_of(self.step_size) {
            lr
        } else {
            lr * self.gamma
        }
    }
    fn closed_form(&self, base: f64, epoch: u64) -> f64 {
        base * self.gamma.powi((epoch / self.step_size) as i32)
    }
}

struct ExponentialLr {
    gamma: f64,
}

impl TorchScheduler for ExponentialLr {
    fn initial(&self, base: f64) -> f64 {
        base
    }
    fn next(&mut self, lr: f64, _: f64, epoch: u64) -> f64 {
        if epoch == 0 { lr } else { lr * self.gamma }
    }
    fn closed_form(&self, base: f64, epoch: u64) -> f64 {
        base * self.gamma.powi(epoch as i32)
    }
}

struct CosineAnnealingLr {
    t_max: u64,
    eta_min: f64,
    /// `_step_count`: 1 after the constructor's step.
    step_count: u64,
}

impl TorchScheduler for CosineAnnealingLr {
    fn initial(&self, base: f64) -> f64 {
        base
    }
    fn next(&mut self, lr: f64, base: f64, epoch: u64) -> f64 {
        use std::f64::consts::PI;
        self.step_count += 1;
        let (t, e, min) = (self.t_max as f64, epoch as f64, self.eta_min);
        if epoch == 0 {
            lr
        } else if self.step_count == 1 {
            min + (base - min) * (1.0 + (e * PI / t).cos()) / 2.0
        } else if (epoch as i64 - 1 - self.t_max as i64).rem_euclid(2 * self.t_max as i64) == 0 {
            lr + (base - min) * (1.0 - (PI / t).cos()) / 2.0
        } else {
            (1.0 + (PI * e / t).cos()) / (1.0 + (PI * (e - 1.0) / t).cos()) * (lr - min) + min
        }
    }
    fn closed_form(&self, base: f64, epoch: u64) -> f64 {
        use std::f64::consts::PI;
        let min = self.eta_min;
        min + (base - min) * (1.0 + (PI * epoch as f64 / self.t_max as f64).cos()) / 2.0
    }
}

/// LinearLR(start_factor, end_factor=1, total_iters).
struct LinearLr {
    start: f64,
    total: u64,
}

impl TorchScheduler for LinearLr {
    fn initial(&self, base: f64) -> f64 {
        base * self.start
    }
    fn next(&mut self, lr: f64, _: f64, epoch: u64) -> f64 {
        if epoch == 0 {
            return lr * self.start;
        }
        if epoch > self.total {
            return lr;
        }
        let (s, t) = (self.start, self.total as f64);
        lr * (1.0 + (1.0 - s) / (t * s + (epoch as f64 - 1.0) * (1.0 - s)))
    }
    fn closed_form(&self, base: f64, epoch: u64) -> f64 {
        let (s, t) = (self.start, self.total as f64);
        base * (s + (1.0 - s) * (epoch.min(self.total) as f64) / t)
    }
}

/// A constant rate: no scheduler at all.
struct Constant;

impl TorchScheduler for Constant {
    fn initial(&self, base: f64) -> f64 {
        base
    }
    fn next(&mut self, lr: f64, _: f64, _: u64) -> f64 {
        lr
    }
    fn closed_form(&self, base: f64, _: u64) -> f64 {
        base
    }
}

/// The rates of `epochs` epochs, as a PyTorch loop that calls
/// `scheduler.step()` after each epoch reads them: the main scheduler
/// alone, or SequentialLR([LinearLR, main], milestones=[warmup]), whose
/// step at the milestone is `main.step(0)` (the closed form at 0) and
/// `main.step()` after it.
fn torch_rates(
    base: f64,
    epochs: u64,
    mut main: Box<dyn TorchScheduler>,
    warmup: Option<LinearLr>,
) -> Vec<f64> {
    let mut rates = Vec::new();
    let Some(mut linear) = warmup else {
        let mut lr = main.initial(base);
        for epoch in 0..epochs {
            if epoch > 0 {
                lr = main.next(lr, base, epoch);
            }
            rates.push(lr);
        }
        return rates;
    };
    let milestone = linear.total;
    // SequentialLR resets the rate and steps the first scheduler only.
    let mut lr = linear.initial(base);
    let mut main_epoch = 0;
    for epoch in 0..epochs {
        if epoch > 0 {
            if epoch < milestone {
                lr = linear.next(lr, base, epoch);
            } else if epoch == milestone {
                main_epoch = 0;
                lr = main.closed_form(base, 0);
            } else {
                main_epoch += 1;
                lr = main.next(lr, base, main_epoch);
            }
        }
        rates.push(lr);
    }
    rates
}

/// The PyTorch scheduler of `config`'s main schedule.
fn torch_scheduler(config: &ScheduleConfig) -> Box<dyn TorchScheduler> {
    match config.kind {
        Schedule::Constant => Box::new(Constant),
        Schedule::Step => Box::new(StepLr {
            step_size: config.step_size,
            gamma: config.gamma,
        }),
        Schedule::Exponential => Box::new(ExponentialLr {
            gamma: config.gamma,
        }),
        Schedule::Cosine => Box::new(CosineAnnealingLr {
            t_max: config.t_max,
            eta_min: config.eta_min,
            step_count: 1,
        }),
    }
}

/// Every entry, alone and behind a warm-up, at every epoch of a run that
/// goes well past T_max (400 epochs, T_max 150): gputrain's float64 rate
/// within 2.7e-12 of the base rate of PyTorch's. The recursions round
/// once per step where the closed forms round once: the worst measured
/// was 2.7e-13 (AMD EPYC Zen 4); 10x.
#[test]
fn every_schedule_gives_pytorchs_rate_at_every_epoch() {
    let epochs = 400;
    let mut worst: f64 = 0.0;
    for kind in Schedule::ALL {
        for warmup in [None, Some((25, 0.1)), Some((1, 1.0 / 3.0))] {
            let request = ScheduleRequest {
                kind,
                gamma: match kind {
                    Schedule::Step => Some(0.5),
                    Schedule::Exponential => Some(0.99),
                    _ => None,
                },
                step_size: (kind == Schedule::Step).then_some(30),
                t_max: (kind == Schedule::Cosine).then_some(150),
                eta_min: (kind == Schedule::Cosine).then_some(0.01),
                warmup: warmup.map(|(w, _)| w),
                warmup_start: warmup.map(|(_, s)| s),
            };
            let config = request.resolve(epochs).unwrap();
            for base in [0.5, 3e-3] {
                let linear = warmup.map(|(total, start)| LinearLr { start, total });
                let torch = torch_rates(base, epochs, torch_scheduler(&config), linear);
                for (epoch, &want) in torch.iter().enumerate() {
                    let got = config.rate(base, epoch as u64);
                    let diff = (got - want).abs() / base;
                    worst = worst.max(diff);
                    assert!(
                        diff <= 2.7e-12,
                        "{} at base {base}, epoch {epoch}: gputrain {got}, PyTorch {want}",
                        config.describe()
                    );
                }
            }
        }
    }
    eprintln!("worst |gputrain - PyTorch| / base rate: {worst:e}");
    // The recursions above are PyTorch's, not a copy of the closed form:
    // at the cosine's far end they differ from it in the last digits.
    assert!(
        worst > 0.0,
        "the recursions agree bit for bit: not independent"
    );
}

/// The formulas by hand at a few epochs, as PyTorch's documentation
/// gives them.
#[test]
fn the_documented_formulas_at_a_few_epochs() {
    let resolve = |r: ScheduleRequest| r.resolve(100).unwrap();
    let step = resolve(ScheduleRequest {
        kind: Schedule::Step,
        step_size: Some(30),
        ..ScheduleRequest::default()
    });
    // StepLR's docstring: 0.05 for epochs < 30, 0.005 for 30..60, ...
    for (epoch, want) in [
        (0, 0.05),
        (29, 0.05),
        (30, 0.005),
        (59, 0.005),
        (60, 0.0005),
    ] {
        let got = step.rate(0.05, epoch);
        assert!((got - want).abs() < 1e-15, "epoch {epoch}: {got} vs {want}");
    }
    let cosine = resolve(ScheduleRequest {
        kind: Schedule::Cosine,
        ..ScheduleRequest::default()
    });
    assert_eq!(cosine.t_max, 100, "over the run by default");
    assert_eq!(cosine.rate(0.2, 0), 0.2);
    assert!((cosine.rate(0.2, 50) - 0.1).abs() < 1e-15);
    assert!(cosine.rate(0.2, 100).abs() < 1e-17);
    let warm = resolve(ScheduleRequest {
        kind: Schedule::Constant,
        warmup: Some(4),
        warmup_start: Some(0.2),
        ..ScheduleRequest::default()
    });
    let rates: Vec<f64> = (0..6).map(|e| warm.rate(1.0, e)).collect();
    let want = [0.2, 0.4, 0.6, 0.8, 1.0, 1.0];
    for (got, want) in rates.iter().zip(want) {
        assert!((got - want).abs() < 1e-15, "{rates:?}");
    }
}

/// A small run on the CPU reference; `--networks 4` or a grid's
/// `--replicates 4` goes with it.
const RUN: &[&str] = &[
    "--task",
    "xor",
    "--layers",
    "2,3,1",
    "--epochs",
    "50",
    "--backend",
    "cpu",
    "--quiet",
];

const NETWORKS: [&str; 2] = ["--networks", "4"];

/// A weights file's metadata.
fn metadata(path: &std::path::Path) -> std::collections::HashMap<String, String> {
    let bytes = std::fs::read(path).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    meta.metadata().clone().unwrap()
}

#[test]
fn the_weights_file_and_summary_record_the_schedule() {
    let dir = temp_dir("schedule-recorded");
    let out = dir.join("run");
    let schedule = [
        "--lr-schedule",
        "cosine",
        "--lr-warmup",
        "10",
        "--lr-min",
        "0.01",
    ];
    run_ok(&[RUN, &NETWORKS, &schedule, &["--out", arg(&out)]].concat());
    let meta = metadata(&out.join("weights.safetensors"));
    for (field, value) in [
        ("lr_schedule", "cosine"),
        ("lr_t_max", "40"),
        ("lr_min", "0.01"),
        ("lr_warmup", "10"),
        ("lr_warmup_start", "0.3333333333333333"),
    ] {
        assert_eq!(meta.get(field).map(String::as_str), Some(value), "{meta:?}");
    }
    assert!(!meta.contains_key("lr_gamma"), "{meta:?}");
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        summary.contains(
            "\"lr_schedule\": \"cosine (lr_t_max=40, lr_min=0.01, lr_warmup=10, \
             lr_warmup_start=0.3333333333333333)\""
        ),
        "{summary}"
    );
    // A constant rate is recorded as such.
    let plain = dir.join("plain");
    run_ok(&[RUN, &NETWORKS, &["--out", arg(&plain)]].concat());
    let meta = metadata(&plain.join("weights.safetensors"));
    assert_eq!(meta["lr_schedule"], "constant");
    // --resume FILE alone takes the schedule (with its T_max of the first
    // run's 50 epochs) from the file, and continues it.
    let resumed = dir.join("resumed");
    let file = out.join("weights.safetensors");
    let args = [
        "--task",
        "xor",
        "--backend",
        "cpu",
        "--quiet",
        "--epochs",
        "80",
        "--resume",
        arg(&file),
        "--out",
        arg(&resumed),
    ];
    run_ok(&args);
    let meta = metadata(&resumed.join("weights.safetensors"));
    assert_eq!(
        (meta["lr_schedule"].as_str(), meta["lr_t_max"].as_str()),
        ("cosine", "40")
    );
    // Another schedule is refused by --resume, naming the field.
    let err = run_err(
        &[
            &args[..args.len() - 2],
            &["--lr-schedule", "exponential", "--lr-gamma", "0.9"],
            &["--out", arg(&dir.join("other"))],
        ]
        .concat(),
        1,
    );
    assert!(err.contains("lr_schedule 'cosine'"), "{err}");
    assert!(!dir.join("other").exists());
}

#[test]
fn a_schedule_setting_is_a_grid_axis() {
    let dir = temp_dir("schedule-grid");
    let out = dir.join("grid");
    run_ok(
        &[
            RUN,
            &["--replicates", "4"],
            &["--lr-schedule", "exponential", "--lr-gamma", "0.9,0.99,1"],
            &["--out", arg(&out)],
        ]
        .concat(),
    );
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let header = results.lines().next().unwrap();
    assert!(header.split(',').any(|c| c == "lr_gamma"), "{header}");
    let groups = std::fs::read_to_string(out.join("groups.csv")).unwrap();
    assert_eq!(groups.lines().count(), 4, "three points: {groups}");
    // gamma 1 is the constant rate: its networks end where a plain run's do.
    let plain = dir.join("plain.csv");
    run_ok(&[RUN, &NETWORKS, &["--results", arg(&plain)]].concat());
    let loss = |text: &str, row: usize| -> String {
        let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
        let at = header.iter().position(|c| *c == "final_loss").unwrap();
        text.lines()
            .nth(row + 1)
            .unwrap()
            .split(',')
            .nth(at)
            .unwrap()
            .to_string()
    };
    let plain = std::fs::read_to_string(plain).unwrap();
    for n in 0..4 {
        assert_eq!(loss(&results, 8 + n), loss(&plain, n), "network {n}");
        assert_ne!(
            loss(&results, n),
            loss(&plain, n),
            "network {n} at gamma 0.9"
        );
    }
}

#[test]
fn bad_schedule_settings_are_refused_before_any_output() {
    let dir = temp_dir("schedule-bad");
    let out = dir.join("results.csv");
    let refused = |extra: &[&str], says: &str| {
        let err = run_err(
            &[RUN, &NETWORKS, extra, &["--results", arg(&out)]].concat(),
            2,
        );
        assert!(err.contains(says), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} left {}", out.display());
    };
    refused(&["--lr-schedule", "linear"], "invalid value 'linear'");
    for gamma in ["0", "1.5", "-0.5"] {
        refused(
            &["--lr-schedule", "exponential", "--lr-gamma", gamma],
            "must be in (0, 1]",
        );
    }
    refused(
        &["--lr-schedule", "exponential"],
        "--lr-schedule exponential needs --lr-gamma",
    );
    refused(
        &["--lr-schedule", "step"],
        "--lr-schedule step needs --lr-step-size",
    );
    refused(
        &["--lr-schedule", "step", "--lr-step-size", "0"],
        "at least 1",
    );
    refused(
        &["--lr-schedule", "cosine", "--lr-gamma", "0.5"],
        "--lr-gamma applies to --lr-schedule step or exponential only",
    );
    refused(
        &["--lr-warmup", "51"],
        "--lr-warmup 51 is longer than the run (--epochs 50)",
    );
    refused(
        &["--lr-schedule", "cosine", "--lr-t-max", "0"],
        "at least 1",
    );
    refused(
        &["--lr-schedule", "cosine", "--lr-warmup", "50"],
        "--lr-t-max 0 must be at least 1 epoch (the run's --epochs 50 after --lr-warmup 50",
    );
    refused(
        &["--lr-warmup-start", "0.1"],
        "--lr-warmup-start needs --lr-warmup",
    );
    refused(
        &["--lr-warmup", "5", "--lr-warmup-start", "0"],
        "--lr-warmup-start 0 must be in (0, 1]",
    );
    refused(
        &["--lr-schedule", "cosine", "--lr-min", "-1"],
        "--lr-min -1 must be",
    );
}
