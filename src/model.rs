//! The network description every backend shares: topology, bias mode, loss,
//! reduction, and the flat per-network parameter layout.
//!
//! Parameters of one network live in one flat vector. For each weight layer
//! `l` (inputs `n_l`, outputs `n_{l+1}`) it holds the weight matrix row-major
//! (`W[j][k]` connects input `k` to neuron `j`) followed by that layer's
//! biases: `n_{l+1}` of them (`per-neuron`), one (`shared`) or none.

use std::fmt;
use std::str::FromStr;

use clap::ValueEnum;

use crate::batches::Batching;
use crate::early_stopping::EarlyStopping;
use crate::error::Error;
use crate::resample::Resampling;
use crate::schedule::ScheduleConfig;
use crate::setting::settings::{ACTIVATION, LOSS, OUTPUT_ACTIVATION};
pub use crate::vocab::{ACTIVATIONS, Activation, Loss, Optimizer, OptimizerConfig};

/// Widest layer accepted. Far beyond what the fused kernel keeps in registers;
/// it bounds memory use and keeps index arithmetic well inside `u32`.
pub const MAX_WIDTH: usize = 4096;
/// Most weight layers accepted.
pub const MAX_WEIGHT_LAYERS: usize = 16;

/// Layer widths `[n0, n1, ..., nL]`: inputs, hidden layers, outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Topology {
    widths: Vec<usize>,
}

impl Topology {
    /// Validates the widths: at least an input and an output layer, every
    /// width in `1..=MAX_WIDTH`, at most `MAX_WEIGHT_LAYERS` weight layers.
    pub fn new(widths: Vec<usize>) -> Result<Self, Error> {
        let bad = |why: String| Error::Topology(why);
        if widths.len() < 2 {
            return Err(bad(format!(
                "needs at least an input and an output layer, got {} width(s)",
                widths.len()
            )));
        }
        if widths.len() - 1 > MAX_WEIGHT_LAYERS {
            return Err(bad(format!(
                "{} weight layers exceeds the maximum of {MAX_WEIGHT_LAYERS}",
                widths.len() - 1
            )));
        }
        if let Some((i, &w)) = widths
            .iter()
            .enumerate()
            .find(|(_, w)| **w == 0 || **w > MAX_WIDTH)
        {
            return Err(bad(format!(
                "layer {i} has width {w}; every width must be between 1 and {MAX_WIDTH}"
            )));
        }
        Ok(Self { widths })
    }

    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    pub fn inputs(&self) -> usize {
        self.widths[0]
    }

    pub fn outputs(&self) -> usize {
        self.widths[self.widths.len() - 1]
    }

    /// Number of weight layers `L`.
    pub fn weight_layers(&self) -> usize {
        self.widths.len() - 1
    }

    pub fn widest(&self) -> usize {
        self.widths.iter().copied().max().unwrap_or(0)
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.widths.iter().map(|w| w.to_string()).collect();
        f.write_str(&parts.join("-"))
    }
}

impl FromStr for Topology {
    type Err = Error;

    /// Parses `2,2,2` or `2-2-2`.
    fn from_str(s: &str) -> Result<Self, Error> {
        let widths = s
            .split([',', '-'])
            .map(|part| {
                part.trim().parse::<usize>().map_err(|_| {
                    Error::Topology(format!(
                        "'{s}' is not a list of layer widths such as 2,2,2 ('{}' is not a whole number)",
                        part.trim()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(widths)
    }
}

/// How biases are laid out.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum)]
pub enum BiasMode {
    /// One bias per neuron.
    #[default]
    PerNeuron,
    /// One bias per layer, added to every neuron of the layer (seed 003).
    Shared,
    /// No biases (seed 000).
    None,
}

impl BiasMode {
    pub const ALL: [BiasMode; 3] = [BiasMode::PerNeuron, BiasMode::Shared, BiasMode::None];

    /// Number of biases a layer with `fan_out` neurons carries.
    pub fn bias_count(self, fan_out: usize) -> usize {
        match self {
            BiasMode::PerNeuron => fan_out,
            BiasMode::Shared => 1,
            BiasMode::None => 0,
        }
    }
}

/// How per-sample losses combine over a data set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum)]
pub enum Reduction {
    #[default]
    Sum,
    /// Sum divided by the number of samples.
    Mean,
}

impl Reduction {
    pub const ALL: [Reduction; 2] = [Reduction::Sum, Reduction::Mean];

    /// Factor applied to the summed loss and gradient for `samples` samples;
    /// every backend takes it from here.
    pub fn factor(self, samples: usize) -> f64 {
        match self {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / samples as f64,
        }
    }

    /// A loss over `samples` samples, reduced this way, as the mean over
    /// them: what compares across row sets of different sizes (training
    /// and held-out data).
    pub fn per_sample(self, loss: f64, samples: usize) -> f64 {
        match self {
            Reduction::Sum => loss / samples.max(1) as f64,
            Reduction::Mean => loss,
        }
    }
}

crate::display_as_value_name!(BiasMode, Reduction);

/// Everything that defines what a network computes and how it learns,
/// apart from its parameters and learning rate. The default is the seeds'
/// 2-2-2 sigmoid network with shared biases, half-sse summed.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub topology: Topology,
    pub bias: BiasMode,
    /// Keep biases at their initial values.
    pub freeze_bias: bool,
    /// Activation of every hidden layer.
    pub activation: Activation,
    /// Activation of the output layer.
    pub output_activation: Activation,
    pub loss: Loss,
    pub reduction: Reduction,
    /// The update rule and its hyperparameters.
    pub optimizer: OptimizerConfig,
    /// The learning rate's schedule over the epochs (constant: the seeds').
    pub schedule: ScheduleConfig,
    /// Minibatches (size, shuffling and the order's seed); `None`: every
    /// sample in one batch, the seeds' full-batch gradient descent.
    pub batching: Option<Batching>,
    /// Stop each network once its held-out loss stops improving, keeping
    /// its best weights (`--early-stopping`); `None`: train every epoch.
    pub early_stopping: Option<EarlyStopping>,
    /// Each network's own resample of the training rows (`--bootstrap`,
    /// `--subsample`); `None`: every network trains on every row.
    pub resample: Option<Resampling>,
}

#[cfg(test)]
impl ModelSpec {
    /// The default model with these layer widths and bias mode (for the
    /// unit tests).
    pub(crate) fn layers(widths: &[usize], bias: BiasMode) -> Self {
        Self {
            topology: Topology::new(widths.to_vec()).expect("a valid topology"),
            bias,
            ..Self::default()
        }
    }
}

impl Default for ModelSpec {
    fn default() -> Self {
        Self {
            topology: Topology::new(vec![2, 2, 2]).expect("a valid topology"),
            bias: BiasMode::Shared,
            freeze_bias: false,
            activation: Activation::Sigmoid,
            output_activation: Activation::Sigmoid,
            loss: Loss::HalfSse,
            reduction: Reduction::Sum,
            optimizer: OptimizerConfig::sgd(),
            schedule: ScheduleConfig::default(),
            batching: None,
            early_stopping: None,
            resample: None,
        }
    }
}

impl ModelSpec {
    /// Batches per epoch over `samples` samples (1 for full batches).
    pub fn batches(&self, samples: usize) -> usize {
        self.batching.map_or(1, |b| b.batches(samples))
    }

    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(&self.topology, self.bias)
    }

    /// The activation of weight layer `l` (0-based): hidden, or the output
    /// activation for the last.
    pub fn layer_activation(&self, l: usize) -> Activation {
        if l + 1 == self.topology.weight_layers() {
            self.output_activation
        } else {
            self.activation
        }
    }

    /// Checks the combination: the output activation may be one, the
    /// loss accepts it, the optimizer's hyperparameters are in range.
    /// Errors name the flags.
    pub fn validate(&self) -> Result<(), Error> {
        self.optimizer.validate()?;
        if let Some(rule) = self.early_stopping {
            rule.validate()?;
        }
        if let Some(r) = self.resample {
            r.validate()?;
        }
        if !self.output_activation.def().as_output {
            let allowed: Vec<&str> = ACTIVATIONS
                .iter()
                .filter(|a| a.as_output)
                .map(|a| a.activation.name())
                .collect();
            return Err(Error::Config(format!(
                "{} is not available for the output layer; expected one of: {}",
                OUTPUT_ACTIVATION.is(self.output_activation),
                allowed.join(", ")
            )));
        }
        if !self.activation.def().as_hidden {
            return Err(Error::Config(format!(
                "{} is for the output layer only ({})",
                ACTIVATION.is(self.activation),
                OUTPUT_ACTIVATION.is(self.activation)
            )));
        }
        if let Some(needed) = self.loss.def().requires_output
            && needed != self.output_activation
        {
            return Err(Error::Config(format!(
                "{} needs {}, but the output activation is {}",
                LOSS.is(self.loss),
                OUTPUT_ACTIVATION.is(needed),
                self.output_activation
            )));
        }
        // Softmax with a squared loss is refused: its delta would need the
        // softmax's whole Jacobian per output, and a classifier's loss is
        // the cross-entropy of the logits (PyTorch's CrossEntropyLoss).
        if let Some(needed) = self.output_activation.def().requires_loss
            && needed != self.loss
        {
            return Err(Error::Config(format!(
                "{} needs {}, but the loss is {}",
                OUTPUT_ACTIVATION.is(self.output_activation),
                LOSS.is(needed),
                self.loss
            )));
        }
        if self.output_activation.def().normalizes_rows && self.topology.outputs() < 2 {
            return Err(Error::Config(format!(
                "{} needs at least 2 outputs (one per class), but the last layer has {}",
                OUTPUT_ACTIVATION.is(self.output_activation),
                self.topology.outputs()
            )));
        }
        Ok(())
    }

    /// Per parameter of the flat layout: true for those training leaves
    /// alone (biases, with `freeze_bias`).
    pub fn frozen_mask(&self) -> Vec<bool> {
        let layout = self.layout();
        (0..layout.len)
            .map(|i| self.freeze_bias && layout.is_bias(i))
            .collect()
    }

    /// Closed range the targets must lie in for this output activation.
    pub fn target_range(&self) -> (f64, f64) {
        self.output_activation.def().range
    }

    /// What the targets must be for this output activation: in its range,
    /// and for a row form (softmax) a distribution over the classes.
    pub fn target_rule(&self) -> crate::data::TargetRule {
        crate::data::TargetRule {
            range: self.target_range(),
            distribution: self.output_activation.def().normalizes_rows,
            classes: false,
        }
    }
}

/// Where one weight layer's parameters sit in the flat vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerLayout {
    pub fan_in: usize,
    pub fan_out: usize,
    /// Offset of `W[0][0]`; `W[j][k]` is at `weight_offset + j * fan_in + k`.
    pub weight_offset: usize,
    /// Offset of the first bias.
    pub bias_offset: usize,
    /// `fan_out`, 1 or 0 depending on the bias mode.
    pub bias_count: usize,
}

impl LayerLayout {
    pub fn weight_index(&self, neuron: usize, input: usize) -> usize {
        self.weight_offset + neuron * self.fan_in + input
    }

    /// Index of the bias neuron `j` uses, if the layer has biases.
    pub fn bias_index(&self, neuron: usize) -> Option<usize> {
        match self.bias_count {
            0 => None,
            1 => Some(self.bias_offset),
            _ => Some(self.bias_offset + neuron),
        }
    }

    pub fn weight_count(&self) -> usize {
        self.fan_in * self.fan_out
    }
}

/// The flat parameter layout of one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamLayout {
    pub layers: Vec<LayerLayout>,
    /// Parameters per network.
    pub len: usize,
}

impl ParamLayout {
    pub fn new(topology: &Topology, bias: BiasMode) -> Self {
        let mut offset = 0;
        let layers = topology
            .widths()
            .windows(2)
            .map(|pair| {
                let (fan_in, fan_out) = (pair[0], pair[1]);
                let weight_offset = offset;
                let bias_offset = weight_offset + fan_in * fan_out;
                let bias_count = bias.bias_count(fan_out);
                offset = bias_offset + bias_count;
                LayerLayout {
                    fan_in,
                    fan_out,
                    weight_offset,
                    bias_offset,
                    bias_count,
                }
            })
            .collect();
        Self {
            layers,
            len: offset,
        }
    }

    /// True when parameter `index` is a bias.
    pub fn is_bias(&self, index: usize) -> bool {
        self.layers
            .iter()
            .any(|l| (l.bias_offset..l.bias_offset + l.bias_count).contains(&index))
    }

    /// A readable name for parameter `index`, e.g. `layers.1.weight[0][2]`.
    pub fn describe(&self, index: usize) -> String {
        for (l, layer) in self.layers.iter().enumerate() {
            let w_end = layer.weight_offset + layer.weight_count();
            if (layer.weight_offset..w_end).contains(&index) {
                let r = index - layer.weight_offset;
                return format!(
                    "layers.{l}.weight[{}][{}]",
                    r / layer.fan_in,
                    r % layer.fan_in
                );
            }
            if (layer.bias_offset..layer.bias_offset + layer.bias_count).contains(&index) {
                return format!("layers.{l}.bias[{}]", index - layer.bias_offset);
            }
        }
        format!("parameter {index} (out of range)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_of_tutorial_network_matches_seed_order() {
        let t = Topology::new(vec![2, 2, 2]).unwrap();
        let layout = ParamLayout::new(&t, BiasMode::Shared);
        assert_eq!(layout.len, 10);
        assert_eq!(layout.layers[0].bias_offset, 4);
        assert_eq!(layout.layers[1].weight_offset, 5);
        assert_eq!(layout.layers[1].bias_index(1), Some(9));
        assert_eq!(layout.describe(7), "layers.1.weight[1][0]");
        assert!(layout.is_bias(9) && !layout.is_bias(8));
    }

    #[test]
    fn per_neuron_and_none_layouts_count_biases() {
        let t = Topology::new(vec![3, 4, 1]).unwrap();
        assert_eq!(
            ParamLayout::new(&t, BiasMode::PerNeuron).len,
            12 + 4 + 4 + 1
        );
        assert_eq!(ParamLayout::new(&t, BiasMode::None).len, 16);
    }

    #[test]
    fn topology_rejects_bad_widths() {
        assert!(Topology::new(vec![2]).is_err());
        assert!(Topology::new(vec![2, 0, 1]).is_err());
        assert!(Topology::new(vec![2, MAX_WIDTH + 1]).is_err());
        assert!("2,x,1".parse::<Topology>().is_err());
        assert_eq!("2-3-1".parse::<Topology>().unwrap().widths(), &[2, 3, 1]);
    }

    #[test]
    fn names_are_the_command_line_values() {
        for b in BiasMode::ALL {
            assert_eq!(BiasMode::from_str(&b.to_string(), false), Ok(b));
        }
        assert!(Loss::from_str("bogus", false).is_err());
        assert_eq!(Reduction::Mean.to_string(), "mean");
    }

    #[test]
    fn loss_and_output_activation_must_agree() {
        let spec = ModelSpec {
            loss: Loss::CrossEntropy,
            output_activation: Activation::Tanh,
            ..ModelSpec::default()
        };
        let err = spec.validate().unwrap_err().to_string();
        assert!(
            err.contains("--loss cross-entropy needs --output-activation sigmoid"),
            "{err}"
        );
        let relu_out = ModelSpec {
            output_activation: Activation::Relu,
            ..ModelSpec::default()
        };
        assert!(
            relu_out
                .validate()
                .unwrap_err()
                .to_string()
                .contains("--output-activation relu")
        );
    }
}
