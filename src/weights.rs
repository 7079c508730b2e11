//! Weights files in safetensors (float32), readable from NumPy and PyTorch:
//! `layers.{l}.weight` [networks, n_{l+1}, n_l], `layers.{l}.bias`
//! [networks, n_{l+1}] (per-neuron) or [networks, 1] (shared), absent for
//! `none`, and `learning_rate` [networks]; metadata records the topology,
//! bias mode, activations, loss, reduction, epochs and seed.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::error::Error;
use crate::model::ModelSpec;
use crate::output::write_atomically;

/// What a weights file records beside the tensors.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightsMetadata {
    /// Epochs the weights were trained for (after a Ctrl-C, the fewest any
    /// network completed; the results file has each network's count).
    pub epochs: u64,
    pub seed: u64,
    /// The run was stopped early by Ctrl-C.
    pub interrupted: bool,
}

fn tensor_names(spec: &ModelSpec) -> Vec<(String, usize, Vec<usize>)> {
    // (name, first parameter offset, per-network shape)
    let mut names = Vec::new();
    for (l, layer) in spec.layout().layers.iter().enumerate() {
        names.push((
            format!("layers.{l}.weight"),
            layer.weight_offset,
            vec![layer.fan_out, layer.fan_in],
        ));
        if layer.bias_count > 0 {
            names.push((
                format!("layers.{l}.bias"),
                layer.bias_offset,
                vec![layer.bias_count],
            ));
        }
    }
    names
}

/// Serialises a population (parameters back to back, float64 in memory,
/// float32 in the file).
pub fn to_bytes(
    spec: &ModelSpec,
    params: &[f64],
    learning_rates: &[f64],
    meta: &WeightsMetadata,
) -> Result<Vec<u8>, Error> {
    let p = spec.layout().len;
    let networks = learning_rates.len();
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for (name, offset, shape) in tensor_names(spec) {
        let per_network: usize = shape.iter().product();
        let mut bytes = Vec::with_capacity(4 * per_network * networks);
        for net in params.chunks_exact(p) {
            for v in &net[offset..offset + per_network] {
                bytes.extend_from_slice(&(*v as f32).to_le_bytes());
            }
        }
        buffers.push((name, [vec![networks], shape].concat(), bytes));
    }
    let lr_bytes: Vec<u8> = learning_rates
        .iter()
        .flat_map(|v| (*v as f32).to_le_bytes())
        .collect();
    buffers.push(("learning_rate".into(), vec![networks], lr_bytes));
    let mut views = Vec::new();
    for (name, shape, bytes) in &buffers {
        let view = TensorView::new(Dtype::F32, shape.clone(), bytes)
            .map_err(|e| Error::Gpu(format!("building tensor {name}: {e}")))?;
        views.push((name.clone(), view));
    }
    let metadata = HashMap::from([
        ("topology".to_string(), spec.topology.to_string()),
        ("bias".to_string(), spec.bias.to_string()),
        ("freeze_bias".to_string(), spec.freeze_bias.to_string()),
        ("activation".to_string(), spec.activation.to_string()),
        (
            "output_activation".to_string(),
            spec.output_activation.to_string(),
        ),
        ("loss".to_string(), spec.loss.to_string()),
        ("reduction".to_string(), spec.reduction.to_string()),
        ("epochs".to_string(), meta.epochs.to_string()),
        ("seed".to_string(), meta.seed.to_string()),
        ("interrupted".to_string(), meta.interrupted.to_string()),
        ("format".to_string(), "gputrain-weights-1".to_string()),
    ]);
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Gpu(format!("serialising weights: {e}")))
}

/// Writes a weights file atomically.
pub fn write(
    path: &Path,
    spec: &ModelSpec,
    params: &[f64],
    learning_rates: &[f64],
    meta: &WeightsMetadata,
) -> Result<(), Error> {
    write_atomically(path, &to_bytes(spec, params, learning_rates, meta)?)
}

/// A population read back from a weights file.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedWeights {
    pub params: Vec<f64>,
    pub learning_rates: Vec<f64>,
    pub networks: usize,
}

/// The model settings a weights file records, each with the value files
/// from before the setting existed stand for (every network was sigmoid).
fn recorded_settings(spec: &ModelSpec) -> [(&'static str, String, Option<&'static str>); 5] {
    [
        ("topology", spec.topology.to_string(), None),
        ("bias", spec.bias.to_string(), None),
        ("activation", spec.activation.to_string(), Some("sigmoid")),
        (
            "output_activation",
            spec.output_activation.to_string(),
            Some("sigmoid"),
        ),
        ("loss", spec.loss.to_string(), None),
    ]
}

/// Refuses a file whose recorded model differs from the run's, naming the
/// field and both values.
fn check_metadata(metadata: &HashMap<String, String>, spec: &ModelSpec) -> Result<(), String> {
    for (field, wanted, older_files) in recorded_settings(spec) {
        let Some(found) = metadata.get(field).map(String::as_str).or(older_files) else {
            continue;
        };
        if found != wanted {
            return Err(format!(
                "was written for {field} '{found}', but this run's {field} is '{wanted}' \
                 (use matching flags, or start from --init)"
            ));
        }
    }
    Ok(())
}

/// Reads a weights file written for `spec`: its recorded model (topology,
/// bias mode, activations, loss) must be the run's, and every tensor's name,
/// dtype and shape must fit it.
pub fn read(path: &Path, spec: &ModelSpec) -> Result<LoadedWeights, Error> {
    let bad = |message: String| Error::WeightsFile {
        path: path.to_path_buf(),
        message,
    };
    let bytes = std::fs::read(path).map_err(|e| bad(format!("cannot read: {e}")))?;
    let file = SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let (_, header) = SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    if let Some(metadata) = header.metadata() {
        check_metadata(metadata, spec).map_err(bad)?;
    }
    let tensor = |name: &str| -> Result<(Vec<usize>, Vec<f64>), Error> {
        let view = file.tensor(name).map_err(|_| {
            bad(format!(
                "has no tensor '{name}', which a {} network with {} biases needs (it holds: {})",
                spec.topology,
                spec.bias,
                file.names().join(", ")
            ))
        })?;
        if view.dtype() != Dtype::F32 {
            return Err(bad(format!(
                "tensor '{name}' is {:?}, expected F32",
                view.dtype()
            )));
        }
        let values = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect();
        Ok((view.shape().to_vec(), values))
    };
    let (lr_shape, learning_rates) = tensor("learning_rate")?;
    if lr_shape.len() != 1 {
        return Err(bad(format!(
            "tensor 'learning_rate' has shape {lr_shape:?}, expected [networks]"
        )));
    }
    let networks = lr_shape[0];
    let p = spec.layout().len;
    let mut params = vec![0.0; networks * p];
    for (name, offset, shape) in tensor_names(spec) {
        let (found, values) = tensor(&name)?;
        let expected = [vec![networks], shape.clone()].concat();
        if found != expected {
            return Err(bad(format!(
                "tensor '{name}' has shape {found:?}, but {networks} networks of {} with {} biases need {expected:?}",
                spec.topology, spec.bias
            )));
        }
        let per_network: usize = shape.iter().product();
        for (n, chunk) in values.chunks_exact(per_network).enumerate() {
            params[n * p + offset..n * p + offset + per_network].copy_from_slice(chunk);
        }
    }
    if let Some(extra) = file
        .names()
        .into_iter()
        .find(|n| *n != "learning_rate" && !tensor_names(spec).iter().any(|(t, _, _)| t == n))
    {
        return Err(bad(format!(
            "holds tensor '{extra}', which a {} network with {} biases does not have",
            spec.topology, spec.bias
        )));
    }
    if let Some(v) = params
        .iter()
        .chain(&learning_rates)
        .find(|v| !v.is_finite())
    {
        return Err(bad(format!("holds the non-finite value {v}")));
    }
    Ok(LoadedWeights {
        params,
        learning_rates,
        networks,
    })
}
