//! Test support for the kernel's passes: one group's run with a pass
//! chosen by the test, and the check that two passes give every lane the
//! same bits (the parameters, the optimizer state, the outcome and the
//! learning curves).

use super::{Epochs, Group, GroupOutcome, Plan, Samples};
use crate::data::Dataset;
use crate::init::{Init, network_parameters};
use crate::model::ModelSpec;
use crate::recording::{HistoryPlan, NetworkCurve};
use crate::simd::Isa;
use crate::simd::lanes::Lanes;

/// One group's run: the network, its data and what the run watches.
pub(super) struct Case {
    pub name: &'static str,
    pub spec: ModelSpec,
    pub data: Dataset,
    /// Each sample weighted `1 + (s + lane) % 3`, as a resample weights
    /// them.
    pub weighted: bool,
    /// A learning curve with a point every 5 epochs, with the loss on
    /// `eval` (held-out samples) where given.
    pub history: bool,
    pub eval: Option<Dataset>,
    pub target: Option<f64>,
    pub stop_at_target: bool,
    /// Learning rate of lane `i`.
    pub rate: fn(usize) -> f32,
    /// The run's first epoch (a resumed run's).
    pub first: u64,
    pub epochs: u64,
}

impl Case {
    /// 25 epochs from the first of `spec` on `data`, rates from 0.02 up
    /// by 0.001 a lane, nothing watched.
    pub fn new(name: &'static str, spec: ModelSpec, data: Dataset) -> Self {
        Self {
            name,
            spec,
            data,
            weighted: false,
            history: false,
            eval: None,
            target: None,
            stop_at_target: false,
            rate: |i| 0.02 + 0.001 * i as f32,
            first: 0,
            epochs: 25,
        }
    }

    /// The plan of the case, before a test chooses its pass.
    pub fn plan(&self) -> Plan {
        let history = self.history.then_some(HistoryPlan {
            every: 5,
            epochs: self.first + self.epochs,
            eval: self.eval.is_some(),
        });
        let eval = self.eval.as_ref().map(Samples::new);
        Plan::new(
            &self.spec,
            Samples::new(&self.data),
            eval,
            history,
            self.target,
            self.stop_at_target,
        )
    }
}

/// What a run left: parameters, optimizer state, outcome, curves.
pub(super) struct Trained<const L: usize> {
    pub params: Vec<Lanes<L>>,
    pub state: Vec<Lanes<L>>,
    pub outcome: GroupOutcome<L>,
    pub curves: Vec<NetworkCurve>,
}

/// Trains `L` networks of `case` (each its own initial parameters) on
/// `isa`, the plan's pass chosen by `choose`.
pub(super) fn train<const L: usize>(case: &Case, isa: Isa, choose: fn(&mut Plan)) -> Trained<L> {
    let mut plan = case.plan();
    choose(&mut plan);
    let networks: Vec<Vec<f64>> = (0..L as u64)
        .map(|i| network_parameters(&case.spec, Init::Uniform(0.7), 11, i))
        .collect();
    let mut params: Vec<Lanes<L>> = (0..plan.params)
        .map(|v| Lanes(std::array::from_fn(|i| networks[i][v] as f32)))
        .collect();
    let mut state = vec![Lanes::ZERO; plan.slots() * plan.params];
    let weights: Vec<Lanes<L>> = (0..case.data.samples())
        .map(|s| Lanes(std::array::from_fn(|i| (1 + (s + i) % 3) as f32)))
        .collect();
    let mut curves: Vec<NetworkCurve> = match plan.history {
        Some(history) => (0..L).map(|_| NetworkCurve::new(&history)).collect(),
        None => Vec::new(),
    };
    let rates = plan.schedule_table(case.first, case.epochs);
    let mut group = Group {
        params: &mut params,
        state: &mut state,
        learning_rate: Lanes(std::array::from_fn(case.rate)),
        weights: case.weighted.then_some(&weights[..]),
        curves: &mut curves,
    };
    let epochs = Epochs {
        first: case.first,
        count: case.epochs,
        stop: &|| false,
        done: &|_| {},
        rates: &rates,
    };
    let outcome = isa.train_group(&plan, &mut group, &epochs);
    Trained {
        params,
        state,
        outcome,
        curves,
    }
}

/// Asserts that two values have the same bits, naming the case, the
/// instruction set, the network and the value.
fn same(case: &Case, isa: Isa, passes: [&str; 2], network: usize, what: &str, a: f64, b: f64) {
    assert_eq!(
        a.to_bits(),
        b.to_bits(),
        "{}, {}, network {network}, {what}: {a} {}, {b} {}",
        case.name,
        isa.name(),
        passes[0],
        passes[1]
    );
}

/// The two passes `choose` picks (named by `passes`) give every lane of
/// an `L`-lane group the same bits on every instruction set here: the
/// final loss, every parameter and state value, the target epoch and
/// every point of the curves; no lane may diverge.
pub(super) fn same_bits<const L: usize>(
    case: &Case,
    passes: [&str; 2],
    choose: [fn(&mut Plan); 2],
) {
    for isa in Isa::available() {
        let a = train::<L>(case, isa, choose[0]);
        let b = train::<L>(case, isa, choose[1]);
        let (oa, ob) = (&a.outcome, &b.outcome);
        assert_eq!(oa.epochs_completed, ob.epochs_completed, "{}", case.name);
        for i in 0..L {
            let f = |x: f32| f64::from(x);
            same(
                case,
                isa,
                passes,
                i,
                "final loss",
                f(oa.final_loss.0[i]),
                f(ob.final_loss.0[i]),
            );
            assert!(
                !oa.diverged[i] && !ob.diverged[i],
                "{}, network {i}: diverged",
                case.name
            );
            assert_eq!(
                oa.target_epoch[i], ob.target_epoch[i],
                "{}, network {i}: target epoch",
                case.name
            );
            for (what, x, y) in [
                ("parameter", &a.params, &b.params),
                ("state value", &a.state, &b.state),
            ] {
                for (v, (x, y)) in x.iter().zip(y.iter()).enumerate() {
                    same(
                        case,
                        isa,
                        passes,
                        i,
                        &format!("{what} {v}"),
                        f(x.0[i]),
                        f(y.0[i]),
                    );
                }
            }
        }
        for (i, (x, y)) in a.curves.iter().zip(&b.curves).enumerate() {
            assert_eq!(
                x.recorded, y.recorded,
                "{}, network {i}: points recorded",
                case.name
            );
            let points = x
                .train
                .iter()
                .zip(&y.train)
                .chain(x.eval.iter().zip(&y.eval));
            for (q, (u, v)) in points.enumerate() {
                same(case, isa, passes, i, &format!("curve value {q}"), *u, *v);
            }
        }
    }
}
