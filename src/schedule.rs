//! Learning-rate schedules, each defined once: torch.optim.lr_scheduler's
//! StepLR, ExponentialLR and CosineAnnealingLR, and LinearLR as a warm-up
//! in front of any of them (PyTorch's SequentialLR([LinearLR, main],
//! milestones=\[W\])), stepped once per epoch as PyTorch's usual loop does:
//!
//! ```text
//! for epoch in range(epochs):
//!     for batch in batches: ...; optimizer.step()   # rate of epoch `epoch`
//!     scheduler.step()
//! ```
//!
//! so every update of run epoch `e` (every minibatch of it) uses the rate
//! after `e` scheduler steps, and epoch 0 the base rate (times the
//! warm-up's start factor).
//!
//! A schedule is a function of the epoch alone, the same for every
//! network, and every rate it gives is affine in the network's base rate:
//! `rate = base x scale(e) + shift(e)` (only the cosine's `eta_min` makes
//! a shift). So each entry's one formula, [`ScheduleDef::pair`], runs in
//! float64 once per epoch on the host, and every trainer takes its rate
//! from that pair: the float64 reference as it is, the float32 trainers
//! as one fused multiply-add of the float32 pair (the SIMD trainer per
//! lane group and epoch, the GPU kernels from a table of the submission's
//! epochs after the networks' rates, `scheduled_rate` in
//! shaders/vocabulary.wgsl). No float32 cosine or power is evaluated
//! anywhere, so the trainers' rates differ from the reference's by one
//! float32 rounding, whatever the device's `cos`.
//!
//! Adding a schedule: a variant of [`Schedule`], its entry in
//! [`SCHEDULES`] (the settings it uses, its pair, PyTorch's name), a
//! line of `docs/usage.md`'s vocabulary table; `tests/schedules.rs` walks every entry.

use clap::ValueEnum;

use crate::error::Error;
use crate::setting::Setting;
use crate::setting::settings::{
    EPOCHS, LR_GAMMA, LR_MIN, LR_SCHEDULE, LR_STEP_SIZE, LR_T_MAX, LR_WARMUP, LR_WARMUP_START,
};

/// A learning-rate schedule over the epochs of a run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum)]
pub enum Schedule {
    /// The base rate at every epoch (the seeds').
    #[default]
    Constant,
    /// `base x gamma^floor(e / step_size)`: torch's StepLR.
    Step,
    /// `base x gamma^e`: torch's ExponentialLR.
    Exponential,
    /// `eta_min + (base - eta_min) (1 + cos(pi e / T_max)) / 2`: torch's
    /// CosineAnnealingLR (T_max: the run's epochs after the warm-up unless
    /// given; past T_max the cosine goes on, as PyTorch's does).
    Cosine,
}

crate::display_as_value_name!(Schedule);

/// A number a schedule may use, by PyTorch's name for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScheduleSetting {
    /// StepLR's and ExponentialLR's `gamma`, in (0, 1].
    Gamma,
    /// StepLR's `step_size`, epochs >= 1.
    StepSize,
    /// CosineAnnealingLR's `T_max`, epochs >= 1.
    TMax,
    /// CosineAnnealingLR's `eta_min`, a rate >= 0.
    Min,
}

impl ScheduleSetting {
    pub const ALL: [ScheduleSetting; 4] = [Self::Gamma, Self::StepSize, Self::TMax, Self::Min];

    /// The run's setting (the flag `--lr-gamma`, Python `lr_gamma=`, the
    /// weights metadata's field).
    pub fn setting(self) -> Setting {
        match self {
            Self::Gamma => LR_GAMMA,
            Self::StepSize => LR_STEP_SIZE,
            Self::TMax => LR_T_MAX,
            Self::Min => LR_MIN,
        }
    }

    /// Whether the value counts epochs (a whole number).
    pub fn is_epochs(self) -> bool {
        matches!(self, Self::StepSize | Self::TMax)
    }
}

/// How a setting a schedule uses gets its value when none is given.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DefaultValue {
    /// PyTorch's default.
    Given(f64),
    /// PyTorch has none: the setting must be given.
    Required,
    /// The run's epochs after the warm-up (a cosine over the whole run).
    RunEpochs,
}

/// One schedule's definition.
pub struct ScheduleDef {
    pub schedule: Schedule,
    /// The settings it uses with their defaults, in the order reports and
    /// the weights metadata list them.
    pub uses: &'static [(ScheduleSetting, DefaultValue)],
    /// `(scale, shift)` of the rate at epoch `e` of the schedule (counted
    /// after the warm-up): `rate = base x scale + shift`, PyTorch's closed
    /// form in float64.
    pub pair: fn(&ScheduleConfig, u64) -> (f64, f64),
    /// The PyTorch scheduler it equals.
    pub pytorch: &'static str,
}

/// Every schedule, in the enum's order (a unit test checks it).
pub const SCHEDULES: &[ScheduleDef] = &[
    ScheduleDef {
        schedule: Schedule::Constant,
        uses: &[],
        pair: |_, _| (1.0, 0.0),
        pytorch: "none (a constant rate)",
    },
    ScheduleDef {
        schedule: Schedule::Step,
        uses: &[
            (ScheduleSetting::StepSize, DefaultValue::Required),
            (ScheduleSetting::Gamma, DefaultValue::Given(0.1)),
        ],
        pair: |c, e| (c.gamma.powf((e / c.step_size) as f64), 0.0),
        pytorch: "torch.optim.lr_scheduler.StepLR(step_size, gamma)",
    },
    ScheduleDef {
        schedule: Schedule::Exponential,
        uses: &[(ScheduleSetting::Gamma, DefaultValue::Required)],
        pair: |c, e| (c.gamma.powf(e as f64), 0.0),
        pytorch: "torch.optim.lr_scheduler.ExponentialLR(gamma)",
    },
    ScheduleDef {
        schedule: Schedule::Cosine,
        uses: &[
            (ScheduleSetting::TMax, DefaultValue::RunEpochs),
            (ScheduleSetting::Min, DefaultValue::Given(0.0)),
        ],
        // eta_min + (base - eta_min) c = base c + eta_min (1 - c), with
        // c = (1 + cos(pi e / T_max)) / 2.
        pair: |c, e| {
            let k = (1.0 + (std::f64::consts::PI * e as f64 / c.t_max as f64).cos()) / 2.0;
            (k, c.eta_min * (1.0 - k))
        },
        pytorch: "torch.optim.lr_scheduler.CosineAnnealingLR(T_max, eta_min)",
    },
];

/// LinearLR's default `start_factor`, the warm-up's first epoch's share
/// of the base rate.
pub const WARMUP_START_DEFAULT: f64 = 1.0 / 3.0;

/// A schedule with its settings, as validated for a run (every default
/// resolved: a cosine over the run knows its T_max).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScheduleConfig {
    pub kind: Schedule,
    pub gamma: f64,
    pub step_size: u64,
    pub t_max: u64,
    pub eta_min: f64,
    /// Epochs of linear warm-up in front (0: none).
    pub warmup: u64,
    /// The warm-up's start factor (LinearLR's `start_factor`), in (0, 1].
    pub warmup_start: f64,
}

impl Default for ScheduleConfig {
    /// The constant rate.
    fn default() -> Self {
        Self {
            kind: Schedule::Constant,
            gamma: 1.0,
            step_size: 1,
            t_max: 1,
            eta_min: 0.0,
            warmup: 0,
            warmup_start: WARMUP_START_DEFAULT,
        }
    }
}

/// The values a face gives a schedule: `None` where the setting was not
/// given.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScheduleRequest {
    pub kind: Schedule,
    pub gamma: Option<f64>,
    pub step_size: Option<u64>,
    pub t_max: Option<u64>,
    pub eta_min: Option<f64>,
    pub warmup: Option<u64>,
    pub warmup_start: Option<f64>,
}

impl ScheduleRequest {
    fn given(&self, s: ScheduleSetting) -> Option<f64> {
        match s {
            ScheduleSetting::Gamma => self.gamma,
            ScheduleSetting::StepSize => self.step_size.map(|v| v as f64),
            ScheduleSetting::TMax => self.t_max.map(|v| v as f64),
            ScheduleSetting::Min => self.eta_min,
        }
    }

    /// The validated schedule of a run of `epochs` epochs: every setting
    /// checked as PyTorch checks it (stricter where PyTorch accepts what
    /// only diverges: gamma above 1), defaults resolved, and a setting the
    /// schedule does not use refused, naming both.
    pub fn resolve(&self, epochs: u64) -> Result<ScheduleConfig, Error> {
        let usage = |m: String| Err(Error::Config(m));
        let def = self.kind.def();
        for s in ScheduleSetting::ALL {
            if self.given(s).is_some() && !def.uses.iter().any(|(u, _)| *u == s) {
                return usage(format!(
                    "{} applies to {} {} only, but the schedule is {}",
                    s.setting(),
                    LR_SCHEDULE,
                    Schedule::users_of(s),
                    self.kind
                ));
            }
        }
        let warmup = self.warmup.unwrap_or(0);
        if self.warmup_start.is_some() && warmup == 0 {
            return usage(format!("{LR_WARMUP_START} needs {LR_WARMUP} (its epochs)"));
        }
        if warmup > epochs {
            return usage(format!(
                "{} is longer than the run ({})",
                LR_WARMUP.is(warmup),
                EPOCHS.is(epochs)
            ));
        }
        let warmup_start = self.warmup_start.unwrap_or(WARMUP_START_DEFAULT);
        if !(warmup_start > 0.0 && warmup_start <= 1.0) {
            return usage(format!(
                "{} must be in (0, 1] (LinearLR's start_factor)",
                LR_WARMUP_START.is(warmup_start)
            ));
        }
        let mut config = ScheduleConfig {
            kind: self.kind,
            warmup,
            warmup_start,
            ..ScheduleConfig::default()
        };
        for &(s, default) in def.uses {
            let value = match (self.given(s), default) {
                (Some(v), _) => v,
                (None, DefaultValue::Given(v)) => v,
                (None, DefaultValue::RunEpochs) => (epochs - warmup) as f64,
                (None, DefaultValue::Required) => {
                    return usage(format!(
                        "{} needs {} ({})",
                        LR_SCHEDULE.is(self.kind),
                        s.setting(),
                        def.pytorch
                    ));
                }
            };
            match s {
                ScheduleSetting::Gamma if !(value > 0.0 && value <= 1.0) => {
                    return usage(format!("{} must be in (0, 1]", LR_GAMMA.is(value)));
                }
                ScheduleSetting::Gamma => config.gamma = value,
                ScheduleSetting::StepSize | ScheduleSetting::TMax if value < 1.0 => {
                    let why = match (s, self.given(s)) {
                        (ScheduleSetting::TMax, None) => format!(
                            " (the run's {} after {} leave none to anneal over)",
                            EPOCHS.is(epochs),
                            LR_WARMUP.is(warmup)
                        ),
                        _ => String::new(),
                    };
                    return usage(format!(
                        "{} must be at least 1 epoch{why}",
                        s.setting().is(value)
                    ));
                }
                ScheduleSetting::StepSize => config.step_size = value as u64,
                ScheduleSetting::TMax => config.t_max = value as u64,
                ScheduleSetting::Min if !(value.is_finite() && value >= 0.0) => {
                    return usage(format!("{} must be a finite rate >= 0", LR_MIN.is(value)));
                }
                ScheduleSetting::Min => config.eta_min = value,
            }
        }
        Ok(config)
    }
}

impl Schedule {
    /// Every schedule, in the table's order.
    pub const ALL: [Schedule; 4] = [
        Schedule::Constant,
        Schedule::Step,
        Schedule::Exponential,
        Schedule::Cosine,
    ];

    pub fn def(self) -> &'static ScheduleDef {
        &SCHEDULES[self as usize]
    }

    /// The schedule's command-line name.
    pub fn name(self) -> &'static str {
        crate::vocab::value_name(self)
    }

    /// The schedules that use `s`, as `step or exponential`.
    pub fn users_of(s: ScheduleSetting) -> String {
        let names: Vec<&str> = SCHEDULES
            .iter()
            .filter(|d| d.uses.iter().any(|(u, _)| *u == s))
            .map(|d| d.schedule.name())
            .collect();
        names.join(" or ")
    }
}

impl ScheduleConfig {
    /// Whether every epoch's rate is the base rate.
    pub fn is_constant(&self) -> bool {
        self.kind == Schedule::Constant && self.warmup == 0
    }

    /// Whether any epoch's pair has a nonzero shift (only a minimum rate,
    /// `eta_min`, makes one): without, a kernel reads the scale alone, and
    /// `lr x scale` is the same float32 as `fma(lr, scale, 0)`.
    pub fn has_shift(&self) -> bool {
        self.eta_min != 0.0
            && self
                .kind
                .def()
                .uses
                .iter()
                .any(|(u, _)| *u == ScheduleSetting::Min)
    }

    /// `(scale, shift)` at run epoch `e`: a network with base rate `lr`
    /// trains epoch `e` at `lr x scale + shift`.
    pub fn pair(&self, e: u64) -> (f64, f64) {
        if e < self.warmup {
            // LinearLR(start_factor, end_factor=1, total_iters=warmup).
            let s = self.warmup_start;
            return (s + (1.0 - s) * e as f64 / self.warmup as f64, 0.0);
        }
        (self.kind.def().pair)(self, e - self.warmup)
    }

    /// The rate of a network with base rate `lr` at run epoch `e`.
    pub fn rate(&self, lr: f64, e: u64) -> f64 {
        if self.is_constant() {
            return lr;
        }
        let (scale, shift) = self.pair(e);
        lr * scale + shift
    }

    /// The float32 pairs of run epochs `epochs`, interleaved (scale,
    /// shift): the table the GPU kernels read after the networks' rates.
    pub fn table(&self, epochs: std::ops::Range<u64>) -> Vec<f32> {
        epochs
            .flat_map(|e| {
                let (scale, shift) = self.pair(e);
                [scale as f32, shift as f32]
            })
            .collect()
    }

    /// The value of `s` (those the schedule does not use are meaningless).
    pub fn value(&self, s: ScheduleSetting) -> f64 {
        match s {
            ScheduleSetting::Gamma => self.gamma,
            ScheduleSetting::StepSize => self.step_size as f64,
            ScheduleSetting::TMax => self.t_max as f64,
            ScheduleSetting::Min => self.eta_min,
        }
    }

    /// The settings that describe it (the entry's, then the warm-up's
    /// when there is one) as (setting, value text): the weights metadata's
    /// fields and the summary's description.
    pub fn fields(&self) -> Vec<(Setting, String)> {
        let mut fields: Vec<(Setting, String)> = self
            .kind
            .def()
            .uses
            .iter()
            .map(|&(s, _)| (s.setting(), self.value(s).to_string()))
            .collect();
        if self.warmup > 0 {
            fields.push((LR_WARMUP, self.warmup.to_string()));
            fields.push((LR_WARMUP_START, self.warmup_start.to_string()));
        }
        fields
    }

    /// For reports: "constant", "cosine (lr_t_max=2000, lr_min=0)",
    /// "step (lr_step_size=100, lr_gamma=0.5; lr_warmup=10,
    /// lr_warmup_start=0.1)".
    pub fn describe(&self) -> String {
        let fields: Vec<String> = self
            .fields()
            .iter()
            .map(|(s, v)| format!("{}={v}", s.0))
            .collect();
        match fields.is_empty() {
            true => self.kind.name().to_string(),
            false => format!("{} ({})", self.kind.name(), fields.join(", ")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_enums_order() {
        for (i, def) in SCHEDULES.iter().enumerate() {
            assert_eq!(def.schedule as usize, i, "{:?}", def.schedule);
        }
        assert_eq!(SCHEDULES.len(), Schedule::value_variants().len());
        assert_eq!(&Schedule::ALL[..], Schedule::value_variants());
    }

    #[test]
    fn a_constant_schedule_is_the_base_rate_bit_for_bit() {
        let c = ScheduleConfig::default();
        assert!(c.is_constant());
        for e in [0, 1, 1000, u32::MAX as u64] {
            assert_eq!(c.rate(0.3, e), 0.3);
            assert_eq!(c.pair(e), (1.0, 0.0));
        }
    }

    /// The fused kernel reads only the scale when `has_shift` is false:
    /// every pair's shift must then be exactly zero.
    #[test]
    fn a_shift_comes_only_from_a_minimum_rate() {
        for kind in Schedule::ALL {
            for eta_min in [0.0, 1e-3] {
                for warmup in [0, 5] {
                    let request = ScheduleRequest {
                        kind,
                        step_size: (kind == Schedule::Step).then_some(7),
                        gamma: (kind == Schedule::Exponential).then_some(0.9),
                        eta_min: (kind == Schedule::Cosine).then_some(eta_min),
                        warmup: Some(warmup),
                        ..ScheduleRequest::default()
                    };
                    let c = request.resolve(40).unwrap();
                    let shifts = (0..60).any(|e| c.pair(e).1 != 0.0);
                    assert_eq!(c.has_shift(), shifts, "{}", c.describe());
                    assert_eq!(shifts, kind == Schedule::Cosine && eta_min > 0.0);
                }
            }
        }
    }

    #[test]
    fn defaults_and_refusals() {
        let request = |kind| ScheduleRequest {
            kind,
            ..ScheduleRequest::default()
        };
        let cosine = request(Schedule::Cosine).resolve(500).unwrap();
        assert_eq!((cosine.t_max, cosine.eta_min), (500, 0.0));
        let warm = ScheduleRequest {
            warmup: Some(100),
            ..request(Schedule::Cosine)
        };
        assert_eq!(warm.resolve(500).unwrap().t_max, 400);
        assert!(warm.resolve(100).is_err(), "T_max 0");
        assert!(warm.resolve(99).is_err(), "a warm-up longer than the run");
        let step = request(Schedule::Step);
        assert!(step.resolve(10).is_err(), "step_size has no default");
        let step = ScheduleRequest {
            step_size: Some(3),
            ..step
        };
        assert_eq!(step.resolve(10).unwrap().gamma, 0.1);
        for gamma in [0.0, -0.5, 1.5, f64::NAN] {
            let bad = ScheduleRequest {
                gamma: Some(gamma),
                ..step
            };
            assert!(bad.resolve(10).is_err(), "{gamma}");
        }
        let unused = ScheduleRequest {
            gamma: Some(0.5),
            ..request(Schedule::Cosine)
        };
        let err = unused.resolve(10).unwrap_err().to_string();
        assert!(
            err.contains("--lr-gamma applies to --lr-schedule step or exponential only"),
            "{err}"
        );
        let start_alone = ScheduleRequest {
            warmup_start: Some(0.1),
            ..request(Schedule::Constant)
        };
        assert!(start_alone.resolve(10).is_err());
    }

    #[test]
    fn describe_names_every_setting_used() {
        let c = ScheduleRequest {
            kind: Schedule::Step,
            step_size: Some(100),
            gamma: Some(0.5),
            warmup: Some(10),
            warmup_start: Some(0.1),
            ..ScheduleRequest::default()
        }
        .resolve(1000)
        .unwrap();
        assert_eq!(
            c.describe(),
            "step (lr_step_size=100, lr_gamma=0.5, lr_warmup=10, lr_warmup_start=0.1)"
        );
        assert_eq!(ScheduleConfig::default().describe(), "constant");
    }
}
