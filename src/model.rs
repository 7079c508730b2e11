//! The network description every backend shares: topology, bias mode, loss,
//! reduction, and the flat per-network parameter layout.
//!
//! Parameters of one network live in one flat vector. For each weight layer
//! `l` (inputs `n_l`, outputs `n_{l+1}`) it holds the weight matrix row-major
//! (`W[j][k]` connects input `k` to neuron `j`) followed by that layer's
//! biases: `n_{l+1}` of them (`per-neuron`), one (`shared`) or none.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;

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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BiasMode {
    /// One bias per neuron.
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

    pub fn name(self) -> &'static str {
        match self {
            BiasMode::PerNeuron => "per-neuron",
            BiasMode::Shared => "shared",
            BiasMode::None => "none",
        }
    }
}

/// The per-sample, per-output error term.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Loss {
    /// `1/2 (y - yhat)^2`; `dL/dyhat = yhat - y` (seed 003).
    HalfSse,
    /// `(y - yhat)^2`; `dL/dyhat = 2 (yhat - y)` (seed 000).
    Sse,
}

impl Loss {
    pub const ALL: [Loss; 2] = [Loss::HalfSse, Loss::Sse];

    /// Factor `c` in `L = c (y - yhat)^2`.
    pub fn scale(self) -> f64 {
        match self {
            Loss::HalfSse => 0.5,
            Loss::Sse => 1.0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Loss::HalfSse => "half-sse",
            Loss::Sse => "sse",
        }
    }
}

/// How per-sample losses combine over a data set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reduction {
    Sum,
    /// Sum divided by the number of samples.
    Mean,
}

impl Reduction {
    pub const ALL: [Reduction; 2] = [Reduction::Sum, Reduction::Mean];

    /// Factor applied to the summed loss and gradient for `samples` samples.
    pub fn factor(self, samples: usize) -> f64 {
        match self {
            Reduction::Sum => 1.0,
            Reduction::Mean => 1.0 / samples as f64,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Reduction::Sum => "sum",
            Reduction::Mean => "mean",
        }
    }
}

macro_rules! parse_by_name {
    ($ty:ty, $what:literal) => {
        impl FromStr for $ty {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                <$ty>::ALL
                    .into_iter()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = <$ty>::ALL.iter().map(|v| v.name()).collect();
                        Error::Config(format!(
                            "unknown {} '{s}'; expected one of: {}",
                            $what,
                            names.join(", ")
                        ))
                    })
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}
parse_by_name!(BiasMode, "bias mode");
parse_by_name!(Loss, "loss");
parse_by_name!(Reduction, "reduction");

/// Everything that defines what a network computes and how it learns,
/// apart from its parameters and learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelSpec {
    pub topology: Topology,
    pub bias: BiasMode,
    /// Keep biases at their initial values.
    pub freeze_bias: bool,
    pub loss: Loss,
    pub reduction: Reduction,
}

impl ModelSpec {
    pub fn layout(&self) -> ParamLayout {
        ParamLayout::new(&self.topology, self.bias)
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
    fn names_parse_back() {
        for b in BiasMode::ALL {
            assert_eq!(b.name().parse::<BiasMode>().unwrap(), b);
        }
        assert!("bogus".parse::<Loss>().is_err());
    }
}
