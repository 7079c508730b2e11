//! Weights files in safetensors (float32), readable from NumPy and PyTorch:
//! `layers.{l}.weight` [networks, n_{l+1}, n_l], `layers.{l}.bias`
//! [networks, n_{l+1}] (per-neuron) or [networks, 1] (shared), absent for
//! `none`, and `learning_rate` [networks]; metadata records the topology,
//! bias mode, activations, loss, reduction, epochs and seed.
//!
//! Both directions stream: [`WeightsWriter`] and [`WeightsReader`] move a
//! block of networks at a time between the file and memory, so a run never
//! holds a whole population's file image (a safetensors file keeps each
//! tensor contiguous across networks, so a block is one seek per tensor).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata, TensorInfo};

use crate::error::Error;
use crate::model::ModelSpec;
use crate::output::TemporaryFile;

/// The `format` metadata value of the files this version writes and reads.
pub const FORMAT: &str = "gputrain-weights-1";

/// Bytes of the little-endian header length that opens a safetensors file.
const HEADER_LENGTH_BYTES: u64 = 8;

/// safetensors refuses headers beyond 100 MB; so does the reader here.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// What a weights file records beside the tensors and the model.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightsMetadata {
    /// Epochs the weights were trained for (after a Ctrl-C, the fewest any
    /// network completed; the results file has each network's count).
    pub epochs: u64,
    pub seed: u64,
    /// The run was stopped early by Ctrl-C.
    pub interrupted: bool,
}

/// One tensor of a population: its name, where its values start in a
/// network's parameter vector, and its shape per network.
struct TensorSlot {
    name: String,
    offset: usize,
    shape: Vec<usize>,
}

impl TensorSlot {
    fn per_network(&self) -> usize {
        self.shape.iter().product()
    }
}

fn tensor_slots(spec: &ModelSpec) -> Vec<TensorSlot> {
    let mut slots = Vec::new();
    for (l, layer) in spec.layout().layers.iter().enumerate() {
        slots.push(TensorSlot {
            name: format!("layers.{l}.weight"),
            offset: layer.weight_offset,
            shape: vec![layer.fan_out, layer.fan_in],
        });
        if layer.bias_count > 0 {
            slots.push(TensorSlot {
                name: format!("layers.{l}.bias"),
                offset: layer.bias_offset,
                shape: vec![layer.bias_count],
            });
        }
    }
    slots
}

const LEARNING_RATE: &str = "learning_rate";

/// Where each tensor's data starts (bytes after the header), in the order
/// the writer lays them out: the parameter tensors, then the rates.
fn data_starts(slots: &[TensorSlot], networks: usize) -> (Vec<u64>, u64, u64) {
    let mut starts = Vec::with_capacity(slots.len());
    let mut at = 0u64;
    for slot in slots {
        starts.push(at);
        at += 4 * (networks * slot.per_network()) as u64;
    }
    let rates = at;
    (starts, rates, rates + 4 * networks as u64)
}

fn header_bytes(
    spec: &ModelSpec,
    slots: &[TensorSlot],
    networks: usize,
    epochs: &str,
    seed: u64,
    interrupted: &str,
) -> Vec<u8> {
    let (starts, rates, end) = data_starts(slots, networks);
    let mut tensors: Vec<(String, TensorInfo)> = slots
        .iter()
        .zip(&starts)
        .map(|(slot, &start)| {
            let bytes = 4 * (networks * slot.per_network()) as u64;
            let info = TensorInfo {
                dtype: Dtype::F32,
                shape: [vec![networks], slot.shape.clone()].concat(),
                data_offsets: (start as usize, (start + bytes) as usize),
            };
            (slot.name.clone(), info)
        })
        .collect();
    tensors.push((
        LEARNING_RATE.to_string(),
        TensorInfo {
            dtype: Dtype::F32,
            shape: vec![networks],
            data_offsets: (rates as usize, end as usize),
        },
    ));
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
        ("epochs".to_string(), epochs.to_string()),
        ("seed".to_string(), seed.to_string()),
        ("interrupted".to_string(), interrupted.to_string()),
        ("format".to_string(), FORMAT.to_string()),
    ]);
    let header =
        Metadata::new(Some(metadata), tensors).expect("the tensors are laid out back to back");
    serde_json::to_vec(&header).expect("a safetensors header is plain data")
}

/// Writes a weights file a block of networks at a time, to a temporary
/// file renamed into place by [`WeightsWriter::finish`]; dropped unfinished
/// (an error on the way), it leaves nothing behind.
pub struct WeightsWriter {
    file: TemporaryFile,
    slots: Vec<TensorSlot>,
    starts: Vec<u64>,
    rates_start: u64,
    networks: usize,
    /// Bytes reserved for the header, which is written last (the epochs a
    /// run completed are known only at its end).
    header_room: u64,
    parameter_count: usize,
}

impl WeightsWriter {
    /// Creates the temporary file for `networks` networks of `spec`.
    pub fn create(path: &Path, spec: &ModelSpec, networks: usize) -> Result<Self, Error> {
        let slots = tensor_slots(spec);
        // The widest values the header can hold: 20 digits, "false".
        let widest = u64::MAX.to_string();
        let widest = header_bytes(spec, &slots, networks, &widest, u64::MAX, "false");
        let header_room = (widest.len() as u64).next_multiple_of(8);
        let (starts, rates_start, _) = data_starts(&slots, networks);
        Ok(Self {
            file: TemporaryFile::create(path)?,
            slots,
            starts,
            rates_start,
            networks,
            header_room,
            parameter_count: spec.layout().len,
        })
    }

    fn data_offset(&self) -> u64 {
        HEADER_LENGTH_BYTES + self.header_room
    }

    fn write_at(&mut self, at: u64, bytes: &[u8]) -> Result<(), Error> {
        let file = &mut self.file;
        file.handle()
            .seek(SeekFrom::Start(at))
            .and_then(|_| file.handle().write_all(bytes))
            .map_err(|e| file.error(e))
    }

    /// Writes networks `first..first + learning_rates.len()`: their
    /// parameter vectors back to back (float64, stored as float32) and
    /// their learning rates.
    pub fn write_block(
        &mut self,
        first: usize,
        params: &[f64],
        learning_rates: &[f64],
    ) -> Result<(), Error> {
        let count = learning_rates.len();
        let p = self.parameter_count;
        assert_eq!(params.len(), count * p, "one parameter vector per rate");
        assert!(first + count <= self.networks, "block beyond the file");
        let base = self.data_offset();
        for t in 0..self.slots.len() {
            let (offset, per_network) = (self.slots[t].offset, self.slots[t].per_network());
            let mut bytes = Vec::with_capacity(4 * per_network * count);
            for net in params.chunks_exact(p) {
                for v in &net[offset..offset + per_network] {
                    bytes.extend_from_slice(&(*v as f32).to_le_bytes());
                }
            }
            let at = base + self.starts[t] + 4 * (first * per_network) as u64;
            self.write_at(at, &bytes)?;
        }
        let rates: Vec<u8> = learning_rates
            .iter()
            .flat_map(|v| (*v as f32).to_le_bytes())
            .collect();
        self.write_at(base + self.rates_start + 4 * first as u64, &rates)
    }

    /// Writes the header with `meta`, and renames the file into place.
    pub fn finish(mut self, spec: &ModelSpec, meta: &WeightsMetadata) -> Result<(), Error> {
        let mut header = header_bytes(
            spec,
            &self.slots,
            self.networks,
            &meta.epochs.to_string(),
            meta.seed,
            &meta.interrupted.to_string(),
        );
        assert!(header.len() as u64 <= self.header_room, "header room");
        // JSON allows trailing blanks; safetensors pads its headers so.
        header.resize(self.header_room as usize, b' ');
        let mut opening = self.header_room.to_le_bytes().to_vec();
        opening.extend_from_slice(&header);
        self.write_at(0, &opening)?;
        // Exactly the header and data, even where no block was written.
        let end = self.data_offset() + self.rates_start + 4 * self.networks as u64;
        self.file.set_len(end)?;
        self.file.persist()
    }
}

/// Writes a whole population at once (see [`WeightsWriter`]).
pub fn write(
    path: &Path,
    spec: &ModelSpec,
    params: &[f64],
    learning_rates: &[f64],
    meta: &WeightsMetadata,
) -> Result<(), Error> {
    let mut writer = WeightsWriter::create(path, spec, learning_rates.len())?;
    writer.write_block(0, params, learning_rates)?;
    writer.finish(spec, meta)
}

/// A model setting a weights file records: how a difference from the run
/// is treated, and the value files from before the setting existed stand
/// for.
struct Recorded {
    field: &'static str,
    run: String,
    older_files: Option<&'static str>,
    /// A different value changes what the parameters mean (refused), or
    /// only how training goes on from them (a note).
    refuse: bool,
}

fn recorded_settings(spec: &ModelSpec) -> [Recorded; 7] {
    let setting = |field, run: String, older_files, refuse| Recorded {
        field,
        run,
        older_files,
        refuse,
    };
    [
        setting("topology", spec.topology.to_string(), None, true),
        setting("bias", spec.bias.to_string(), None, true),
        setting(
            "activation",
            spec.activation.to_string(),
            Some("sigmoid"),
            true,
        ),
        setting(
            "output_activation",
            spec.output_activation.to_string(),
            Some("sigmoid"),
            true,
        ),
        setting("loss", spec.loss.to_string(), None, false),
        setting("reduction", spec.reduction.to_string(), None, false),
        setting("freeze_bias", spec.freeze_bias.to_string(), None, false),
    ]
}

/// Compares a file's metadata with the run: a setting that changes what
/// the parameters mean (topology, biases, activations) or an unknown
/// format is refused, naming the field and both values; one that changes
/// only how training continues (loss, reduction, frozen biases) and the
/// training the file already had give notes. A file without metadata is
/// noted as such.
fn check_metadata(
    metadata: Option<&HashMap<String, String>>,
    spec: &ModelSpec,
) -> Result<Vec<String>, String> {
    let Some(metadata) = metadata else {
        return Ok(vec![format!(
            "has no gputrain metadata (written by another tool?); its tensors fit {} with {} \
             biases, and it is taken to be for {} / {} activations",
            spec.topology, spec.bias, spec.activation, spec.output_activation
        )]);
    };
    if let Some(format) = metadata.get("format")
        && format != FORMAT
    {
        return Err(format!(
            "is in format '{format}', but this gputrain reads '{FORMAT}'"
        ));
    }
    let mut notes = Vec::new();
    for setting in recorded_settings(spec) {
        let field = setting.field;
        let Some(found) = metadata
            .get(field)
            .map(String::as_str)
            .or(setting.older_files)
        else {
            continue;
        };
        let wanted = setting.run;
        if found == wanted {
            continue;
        }
        if setting.refuse {
            return Err(format!(
                "was written for {field} '{found}', but this run's {field} is '{wanted}' \
                 (use matching flags, or start from --init)"
            ));
        }
        notes.push(format!(
            "was trained with {field} '{found}'; this run continues with {field} '{wanted}'"
        ));
    }
    if let Some(epochs) = metadata.get("epochs") {
        let trained: u64 = epochs
            .parse()
            .map_err(|_| format!("metadata field 'epochs' is '{epochs}', not a whole number"))?;
        let interrupted = match metadata.get("interrupted").map(String::as_str) {
            None | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(format!(
                    "metadata field 'interrupted' is '{other}', not true or false"
                ));
            }
        };
        if trained > 0 {
            notes.push(format!(
                "holds networks already trained for {trained} epochs{}; this run's epochs \
                 (and target epochs) count from 0 again",
                if interrupted {
                    " (at least; that run was interrupted)"
                } else {
                    ""
                }
            ));
        }
    }
    Ok(notes)
}

/// Reads a weights file a block of networks at a time; opening it checks
/// the header against the run.
pub struct WeightsReader {
    path: PathBuf,
    file: File,
    slots: Vec<TensorSlot>,
    /// Absolute file offset of each slot's data, then of the rates.
    starts: Vec<u64>,
    rates_start: u64,
    networks: usize,
    parameter_count: usize,
    notes: Vec<String>,
}

impl WeightsReader {
    /// Opens `path` for a run of `spec`: the recorded model must be the
    /// run's (see [`WeightsReader::notes`] for the differences accepted),
    /// and every tensor's name, dtype and shape must fit it.
    pub fn open(path: &Path, spec: &ModelSpec) -> Result<Self, Error> {
        let bad = |message: String| Error::WeightsFile {
            path: path.to_path_buf(),
            message,
        };
        let mut file = File::open(path).map_err(|e| bad(format!("cannot read: {e}")))?;
        let length = file
            .metadata()
            .map_err(|e| bad(format!("cannot read: {e}")))?
            .len();
        let not_safetensors = |why: String| bad(format!("not a safetensors file ({why})"));
        let mut opening = [0u8; HEADER_LENGTH_BYTES as usize];
        file.read_exact(&mut opening).map_err(|_| {
            not_safetensors(format!(
                "{length} bytes, shorter than the 8-byte header length"
            ))
        })?;
        let header_length = u64::from_le_bytes(opening);
        if header_length > MAX_HEADER_BYTES {
            return Err(not_safetensors(format!(
                "its header length {header_length} is beyond safetensors' 100 MB limit"
            )));
        }
        if header_length > length - HEADER_LENGTH_BYTES {
            return Err(not_safetensors(format!(
                "truncated: its header takes {header_length} bytes, but only {} follow",
                length - HEADER_LENGTH_BYTES
            )));
        }
        let mut header = vec![0u8; header_length as usize];
        file.read_exact(&mut header)
            .map_err(|e| bad(format!("cannot read: {e}")))?;
        let header: Metadata = serde_json::from_slice(&header)
            .map_err(|e| not_safetensors(format!("its header: {e}")))?;
        let data_offset = HEADER_LENGTH_BYTES + header_length;
        if data_offset + header.data_len() as u64 != length {
            return Err(not_safetensors(format!(
                "its header describes {} bytes of data, but {} follow it",
                header.data_len(),
                length - data_offset
            )));
        }
        let notes = check_metadata(header.metadata().as_ref(), spec).map_err(bad)?;
        let tensors = header.tensors();
        let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        let describe =
            |spec: &ModelSpec| format!("{} network with {} biases", spec.topology, spec.bias);
        let find = |name: &str| -> Result<&TensorInfo, Error> {
            let info = tensors.get(name).ok_or_else(|| {
                bad(format!(
                    "has no tensor '{name}', which a {} needs (it holds: {})",
                    describe(spec),
                    names.join(", ")
                ))
            })?;
            if info.dtype != Dtype::F32 {
                return Err(bad(format!(
                    "tensor '{name}' is {:?}, expected F32",
                    info.dtype
                )));
            }
            Ok(*info)
        };
        let rates = find(LEARNING_RATE)?;
        if rates.shape.len() != 1 {
            return Err(bad(format!(
                "tensor '{LEARNING_RATE}' has shape {:?}, expected [networks]",
                rates.shape
            )));
        }
        let networks = rates.shape[0];
        let slots = tensor_slots(spec);
        let mut starts = Vec::with_capacity(slots.len());
        for slot in &slots {
            let info = find(&slot.name)?;
            let expected = [vec![networks], slot.shape.clone()].concat();
            if info.shape != expected {
                return Err(bad(format!(
                    "tensor '{}' has shape {:?}, but {networks} networks of {} with {} biases \
                     need {expected:?}",
                    slot.name, info.shape, spec.topology, spec.bias
                )));
            }
            starts.push(data_offset + info.data_offsets.0 as u64);
        }
        if let Some(extra) = names
            .iter()
            .find(|n| **n != LEARNING_RATE && !slots.iter().any(|s| s.name == **n))
        {
            return Err(bad(format!(
                "holds tensor '{extra}', which a {} does not have",
                describe(spec)
            )));
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            slots,
            starts,
            rates_start: data_offset + rates.data_offsets.0 as u64,
            networks,
            parameter_count: spec.layout().len,
            notes,
        })
    }

    /// The file being read.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Networks the file holds.
    pub fn networks(&self) -> usize {
        self.networks
    }

    /// What differs between the file and the run without being refused
    /// (loss, reduction, frozen biases, earlier training, no metadata),
    /// one line each, for the user to see.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    fn read_floats(&mut self, at: u64, count: usize, name: &str) -> Result<Vec<f64>, Error> {
        let mut bytes = vec![0u8; 4 * count];
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| Error::WeightsFile {
                path: self.path.clone(),
                message: format!("cannot read tensor '{name}': {e}"),
            })?;
        Ok(bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
            .collect())
    }

    /// Reads networks `first..first + learning_rates.len()` into `params`
    /// (their vectors back to back) and `learning_rates`. A non-finite
    /// value is refused, naming the network and tensor.
    pub fn read_block(
        &mut self,
        first: usize,
        params: &mut [f64],
        learning_rates: &mut [f64],
    ) -> Result<(), Error> {
        let count = learning_rates.len();
        let p = self.parameter_count;
        assert_eq!(params.len(), count * p, "one parameter vector per rate");
        assert!(first + count <= self.networks, "block beyond the file");
        let path = self.path.clone();
        let non_finite = |name: &str, index: usize, v: f64| Error::WeightsFile {
            path: path.clone(),
            message: format!("holds the non-finite value {v} in '{name}' of network {index}"),
        };
        for t in 0..self.slots.len() {
            let per_network = self.slots[t].per_network();
            let at = self.starts[t] + 4 * (first * per_network) as u64;
            let name = self.slots[t].name.clone();
            let values = self.read_floats(at, count * per_network, &name)?;
            let offset = self.slots[t].offset;
            for (n, chunk) in values.chunks_exact(per_network).enumerate() {
                if let Some(v) = chunk.iter().find(|v| !v.is_finite()) {
                    return Err(non_finite(&name, first + n, *v));
                }
                params[n * p + offset..n * p + offset + per_network].copy_from_slice(chunk);
            }
        }
        let at = self.rates_start + 4 * first as u64;
        let rates = self.read_floats(at, count, LEARNING_RATE)?;
        if let Some((n, v)) = rates.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(non_finite(LEARNING_RATE, first + n, *v));
        }
        learning_rates.copy_from_slice(&rates);
        Ok(())
    }
}

/// A population read back whole from a weights file.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadedWeights {
    pub params: Vec<f64>,
    pub learning_rates: Vec<f64>,
    pub networks: usize,
    /// See [`WeightsReader::notes`].
    pub notes: Vec<String>,
}

/// Reads a whole weights file written for `spec` (see [`WeightsReader`]).
pub fn read(path: &Path, spec: &ModelSpec) -> Result<LoadedWeights, Error> {
    let mut reader = WeightsReader::open(path, spec)?;
    let networks = reader.networks();
    let mut params = vec![0.0; networks * spec.layout().len];
    let mut learning_rates = vec![0.0; networks];
    reader.read_block(0, &mut params, &mut learning_rates)?;
    Ok(LoadedWeights {
        params,
        learning_rates,
        networks,
        notes: reader.notes,
    })
}
