//! Weights files in safetensors (float32), readable from NumPy and PyTorch:
//! `layers.{l}.weight` [networks, n_{l+1}, n_l], `layers.{l}.bias`
//! [networks, n_{l+1}] (per-neuron) or [networks, 1] (shared), absent for
//! `none`, and `learning_rate` `[networks]`; metadata records the topology,
//! bias mode, activations, loss, reduction, epochs and seed.
//!
//! Both directions stream: [`WeightsWriter`] and [`WeightsReader`] move a
//! block of networks at a time between the file and memory, so a run never
//! holds a whole population's file image (a safetensors file keeps each
//! tensor contiguous across networks, so a block is one seek per tensor).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, Metadata, TensorInfo};

use crate::error::Error;
use crate::init::Init;
use crate::model::ModelSpec;
use crate::output::{Sink, TemporaryFile, Written};
use crate::setting::settings::{
    INIT, INIT_WEIGHTS, RESUME, SEED, SNAPSHOT, SNAPSHOTS, TARGET_LOSS,
};
use crate::training::NetworkOutcome;
use crate::vocab::Hyperparameter;

/// The `format` metadata value of the files this version writes.
pub const FORMAT: &str = "gputrain-weights-2";

/// The format before the optimizer state and per-network epochs were
/// stored: still read by `--init-weights`, refused by `--resume`.
pub const FORMAT_WITHOUT_STATE: &str = "gputrain-weights-1";

/// Bytes of the little-endian header length that opens a safetensors file.
const HEADER_LENGTH_BYTES: u64 = 8;

/// safetensors refuses headers beyond 100 MB; so does the reader here.
const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The number type the backend trained in. A file keeps its parameters
/// and learning rates in float32 (docs/design.md's format) and its optimizer
/// state in this precision; from the float64 CPU reference it adds the
/// exact parameters and rates as `{name}.float64`, so a resumed run
/// continues from exactly the values it stopped at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// The GPU kernels' float32.
    F32,
    /// The CPU reference's float64.
    F64,
}

impl Precision {
    fn dtype(self) -> Dtype {
        match self {
            Precision::F32 => Dtype::F32,
            Precision::F64 => Dtype::F64,
        }
    }
}

/// What a weights file records beside the tensors and the model.
#[derive(Clone, Debug, PartialEq)]
pub struct WeightsMetadata {
    /// Epochs the weights were trained for (after a Ctrl-C, the fewest any
    /// network completed; tensor `epochs_completed` has each network's).
    pub epochs: u64,
    /// The epochs the run was asked for (what `--resume` continues to by
    /// default).
    pub planned_epochs: u64,
    pub seed: u64,
    /// The run was stopped early by Ctrl-C.
    pub interrupted: bool,
    /// Backend and strategy, e.g. `gpu fused` or `cpu reference-f64`:
    /// a resume elsewhere is not bit for bit, and is noted.
    pub trained_on: String,
    /// `--target-loss` of the run, whose target epochs the file keeps.
    pub target_loss: Option<f64>,
    /// The run stopped updating a network once it reached `target_loss`
    /// (metadata `stop_at_target`, present only when true).
    pub stop_at_target: bool,
    pub precision: Precision,
    /// The configuration's fingerprint ([`crate::sweep::fingerprint`]),
    /// where the run has one.
    pub fingerprint: Option<String>,
    /// How the run initialised its networks (`--init`, keyed on `seed`
    /// and the network's index), where one rule does: a plain run from
    /// initialisation. A resume starts the networks a stop came before
    /// (never started: [`NEVER_STARTED`]) by it.
    pub init: Option<Init>,
    /// The epochs whose parameters the file keeps as snapshots
    /// (`--snapshots`; metadata `snapshots`, present only when some).
    pub snapshots: Vec<u64>,
    /// A snapshots file (`--snapshots-out`): the learning rates and the
    /// snapshots only, no final parameters, state or epochs (metadata
    /// `contents = "snapshots"`).
    pub snapshots_only: bool,
    /// With a resample: the networks per grid point (network n of the
    /// file is replicate `n % replicates`, which keys its rows) and the
    /// training rows, so that `predict --oob` can recompute each
    /// network's out-of-bag rows (metadata `replicates`, `training_rows`).
    pub resampled: Option<Resampled>,
}

/// What a resampled run's file records to recompute its networks' rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Resampled {
    pub replicates: usize,
    pub training_rows: usize,
}

/// The `epochs_completed` of a network a stop came before: never started,
/// never initialised, its parameters and optimizer state never written
/// (zeros: the file's unwritten bytes). A resume initialises it by the
/// file's `init` and `seed` metadata; predict and `--init-weights` refuse
/// it (Python's predict gives it NaN).
pub const NEVER_STARTED: i64 = -1;

/// Which values of a network a tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Values {
    /// Parameters from this offset of the network's parameter vector.
    Params(usize),
    /// Optimizer state value `k` of the parameters from this offset.
    State(usize, usize),
    LearningRate,
    EpochsCompleted,
    TargetEpoch,
    /// Parameters from this offset in snapshot `k` ([`snapshot_name`]).
    Snapshot(usize, usize),
}

/// One tensor of a population: its name, what it holds and its shape per
/// network.
struct TensorSlot {
    name: String,
    values: Values,
    shape: Vec<usize>,
    /// The dtype the writer stores it in (the reader takes the file's).
    dtype: Dtype,
}

impl TensorSlot {
    fn per_network(&self) -> usize {
        self.shape.iter().product()
    }
}

const LEARNING_RATE: &str = "learning_rate";
const EPOCHS_COMPLETED: &str = "epochs_completed";
const TARGET_EPOCH: &str = "target_epoch";

/// The parameter tensors of `spec`.
fn parameter_slots(spec: &ModelSpec) -> Vec<TensorSlot> {
    let mut slots = Vec::new();
    for (l, layer) in spec.layout().layers.iter().enumerate() {
        slots.push(TensorSlot {
            name: format!("layers.{l}.weight"),
            values: Values::Params(layer.weight_offset),
            shape: vec![layer.fan_out, layer.fan_in],
            dtype: Dtype::F32,
        });
        if layer.bias_count > 0 {
            slots.push(TensorSlot {
                name: format!("layers.{l}.bias"),
                values: Values::Params(layer.bias_offset),
                shape: vec![layer.bias_count],
                dtype: Dtype::F32,
            });
        }
    }
    slots
}

/// Every tensor a file for `spec` holds, in the order the writer lays them
/// out: parameters, optimizer state (`{parameter}.{state}`, PyTorch's
/// names), learning rates, epochs completed and target epochs.
fn tensor_slots(spec: &ModelSpec) -> Vec<TensorSlot> {
    let params = parameter_slots(spec);
    let mut slots = Vec::new();
    for (k, state) in spec.optimizer.state_names().iter().enumerate() {
        for slot in &params {
            let Values::Params(offset) = slot.values else {
                unreachable!("parameter slots only")
            };
            slots.push(TensorSlot {
                name: format!("{}.{state}", slot.name),
                values: Values::State(k, offset),
                shape: slot.shape.clone(),
                dtype: Dtype::F32,
            });
        }
    }
    let per_network = |name: &str, values, dtype| TensorSlot {
        name: name.to_string(),
        values,
        shape: Vec::new(),
        dtype,
    };
    params
        .into_iter()
        .chain(slots)
        .chain([
            per_network(LEARNING_RATE, Values::LearningRate, Dtype::F32),
            per_network(EPOCHS_COMPLETED, Values::EpochsCompleted, Dtype::I64),
            per_network(TARGET_EPOCH, Values::TargetEpoch, Dtype::I64),
        ])
        .collect()
}

/// The name of parameter tensor `name` (`layers.0.weight`) in the snapshot
/// of epoch `epoch`: `snapshot.100.layers.0.weight`.
pub fn snapshot_name(epoch: u64, name: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{epoch}.{name}")
}

const SNAPSHOT_PREFIX: &str = "snapshot.";
/// The metadata field listing a file's snapshot epochs.
const SNAPSHOTS_FIELD: &str = "snapshots";
/// The metadata field that marks a snapshots file (`--snapshots-out`),
/// and its value.
const CONTENTS_FIELD: &str = "contents";
const SNAPSHOTS_ONLY: &str = "snapshots";

/// The snapshot tensors of a file for `spec` with snapshots at `epochs`,
/// after every other: each snapshot's parameters, float32.
fn snapshot_slots(spec: &ModelSpec, epochs: &[u64]) -> Vec<TensorSlot> {
    let mut slots = Vec::new();
    for (k, &epoch) in epochs.iter().enumerate() {
        for slot in parameter_slots(spec) {
            let Values::Params(offset) = slot.values else {
                unreachable!("parameter slots only")
            };
            slots.push(TensorSlot {
                name: snapshot_name(epoch, &slot.name),
                values: Values::Snapshot(k, offset),
                ..slot
            });
        }
    }
    slots
}

/// The suffix of the float64 companions a file from the CPU reference
/// carries beside its float32 parameters and learning rates.
const FLOAT64: &str = ".float64";

/// What a file of `precision` holds: [`tensor_slots`], the parameters and
/// learning rates in float32 as docs/design.md fixes them, the optimizer state
/// in the backend's precision, and, from the float64 CPU reference, the
/// exact parameters and rates again as `{name}.float64` (what a resume or
/// `--init-weights` reads, so a CPU run continues bit for bit); then the
/// snapshots' parameters ([`snapshot_slots`]), with their float64
/// companions from the reference.
/// A snapshots file ([`WeightsMetadata::snapshots_only`]) holds the
/// learning rates and the snapshots only.
fn written_slots(spec: &ModelSpec, meta: &WeightsMetadata) -> Vec<TensorSlot> {
    let (precision, snapshots) = (meta.precision, &meta.snapshots);
    let kept = |slot: &TensorSlot| {
        !meta.snapshots_only || matches!(slot.values, Values::LearningRate | Values::Snapshot(..))
    };
    let mut slots = Vec::new();
    for mut slot in tensor_slots(spec)
        .into_iter()
        .chain(snapshot_slots(spec, snapshots))
        .filter(kept)
    {
        match slot.values {
            Values::State(..) => slot.dtype = precision.dtype(),
            Values::Params(_) | Values::Snapshot(..) | Values::LearningRate
                if precision == Precision::F64 =>
            {
                slots.push(TensorSlot {
                    name: format!("{}{FLOAT64}", slot.name),
                    values: slot.values,
                    shape: slot.shape.clone(),
                    dtype: Dtype::F64,
                });
            }
            _ => {}
        }
        slots.push(slot);
    }
    slots
}

/// Where each tensor's data starts (bytes after the header), and where the
/// data ends.
/// The bytes a weights file of `spec` in `precision` holds per network
/// (its tensors' data; the header is a few kilobytes).
pub fn file_bytes_per_network(spec: &ModelSpec, precision: Precision, snapshots: usize) -> u64 {
    let meta = WeightsMetadata {
        epochs: 0,
        planned_epochs: 0,
        seed: 0,
        interrupted: false,
        trained_on: String::new(),
        target_loss: None,
        stop_at_target: false,
        precision,
        fingerprint: None,
        init: None,
        snapshots: (0..snapshots as u64).collect(),
        snapshots_only: false,
        resampled: None,
    };
    data_starts(&written_slots(spec, &meta), 1).1
}

fn data_starts(slots: &[TensorSlot], networks: usize) -> (Vec<u64>, u64) {
    let mut starts = Vec::with_capacity(slots.len());
    let mut at = 0u64;
    for slot in slots {
        starts.push(at);
        at += (slot.dtype.bitsize() / 8 * networks * slot.per_network()) as u64;
    }
    (starts, at)
}

/// The model and training settings a file records, as metadata pairs.
fn recorded_fields(spec: &ModelSpec) -> Vec<(&'static str, String)> {
    let o = &spec.optimizer;
    let mut fields = vec![
        ("topology", spec.topology.to_string()),
        ("bias", spec.bias.to_string()),
        ("activation", spec.activation.to_string()),
        ("output_activation", spec.output_activation.to_string()),
        ("loss", spec.loss.to_string()),
        ("reduction", spec.reduction.to_string()),
        ("freeze_bias", spec.freeze_bias.to_string()),
        ("optimizer", o.kind.name().to_string()),
    ];
    // The hyperparameters the optimizer's entry lists, weight_decay last
    // (where files from before the list put it).
    let (decay, rest): (Vec<_>, Vec<_>) = o
        .hyperparameters()
        .partition(|(h, _)| *h == Hyperparameter::WeightDecay);
    for (h, value) in rest.into_iter().chain(decay) {
        fields.push((h.name(), h.format(value)));
    }
    fields.push(("lr_schedule", spec.schedule.kind.name().to_string()));
    for (setting, value) in spec.schedule.fields() {
        fields.push((setting.0, value));
    }
    let (size, shuffle) = match spec.batching {
        Some(b) => (b.size.to_string(), b.shuffle.to_string()),
        None => ("full".to_string(), "false".to_string()),
    };
    fields.push(("batch_size", size));
    fields.push(("shuffle", shuffle));
    match spec.early_stopping {
        None => fields.push(("early_stopping", "none".to_string())),
        Some(rule) => {
            fields.push(("early_stopping", rule.patience.to_string()));
            fields.push(("eval_every", rule.every.to_string()));
        }
    }
    match spec.resample {
        None => fields.push(("resample", "none".to_string())),
        Some(r) => {
            fields.push(("resample", r.how.to_string()));
            fields.push(("resample_seed", r.seed.to_string()));
        }
    }
    fields
}

fn header_bytes(
    spec: &ModelSpec,
    slots: &[TensorSlot],
    networks: usize,
    meta: &WeightsMetadata,
) -> Vec<u8> {
    let (starts, end) = data_starts(slots, networks);
    let tensors: Vec<(String, TensorInfo)> = slots
        .iter()
        .enumerate()
        .map(|(i, slot)| {
            let stop = starts.get(i + 1).copied().unwrap_or(end);
            let info = TensorInfo {
                dtype: slot.dtype,
                shape: [vec![networks], slot.shape.clone()].concat(),
                data_offsets: (starts[i] as usize, stop as usize),
            };
            (slot.name.clone(), info)
        })
        .collect();
    let mut metadata: HashMap<String, String> = recorded_fields(spec)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    let target = meta
        .target_loss
        .map_or("none".to_string(), |t| t.to_string());
    for (field, value) in [
        ("epochs", meta.epochs.to_string()),
        ("planned_epochs", meta.planned_epochs.to_string()),
        ("seed", meta.seed.to_string()),
        ("interrupted", meta.interrupted.to_string()),
        ("trained_on", meta.trained_on.clone()),
        ("target_loss", target),
        ("format", FORMAT.to_string()),
    ] {
        metadata.insert(field.to_string(), value);
    }
    if let Some(fingerprint) = &meta.fingerprint {
        metadata.insert("fingerprint".to_string(), fingerprint.clone());
    }
    if let Some(init) = &meta.init {
        metadata.insert("init".to_string(), init.to_string());
    }
    if meta.stop_at_target {
        metadata.insert("stop_at_target".to_string(), "true".to_string());
    }
    if !meta.snapshots.is_empty() {
        let epochs: Vec<String> = meta.snapshots.iter().map(u64::to_string).collect();
        metadata.insert(SNAPSHOTS_FIELD.to_string(), epochs.join(","));
    }
    if meta.snapshots_only {
        metadata.insert(CONTENTS_FIELD.to_string(), SNAPSHOTS_ONLY.to_string());
    }
    if let Some(r) = meta.resampled {
        metadata.insert("replicates".to_string(), r.replicates.to_string());
        metadata.insert("training_rows".to_string(), r.training_rows.to_string());
    }
    let header =
        Metadata::new(Some(metadata), tensors).expect("the tensors are laid out back to back");
    // Through serde_json's sorted map: the metadata is a HashMap, whose
    // order would differ from run to run, and the same training must give
    // the same bytes.
    let sorted = serde_json::to_value(&header).expect("a safetensors header is plain data");
    serde_json::to_vec(&sorted).expect("a safetensors header is plain data")
}

/// Writes a weights file a block of networks at a time, to a temporary
/// file renamed into place by [`WeightsWriter::finish`]; dropped unfinished
/// (an error on the way), it leaves nothing behind.
pub struct WeightsWriter {
    file: Sink,
    spec: ModelSpec,
    meta: WeightsMetadata,
    slots: Vec<TensorSlot>,
    starts: Vec<u64>,
    end: u64,
    networks: usize,
    /// Bytes reserved for the header, which is written last (the epochs a
    /// run completed are known only at its end).
    header_room: u64,
}

/// One block of trained networks, as [`WeightsWriter::write_block`] takes
/// it: vectors back to back, optimizer state network after network (its
/// slots x parameters each).
#[derive(Clone, Copy, Debug)]
pub struct BlockValues<'a> {
    pub params: &'a [f64],
    pub state: &'a [f64],
    pub learning_rates: &'a [f64],
    pub outcomes: &'a [NetworkOutcome],
    /// Networks a stop came before, never initialised: only their rate is
    /// written, and [`NEVER_STARTED`] as their epochs.
    pub never_started: &'a [bool],
    /// The snapshots' parameters ([`crate::run::TrainedBlock::snapshots`];
    /// empty without).
    pub snapshots: &'a [f64],
}

impl WeightsWriter {
    /// Creates the temporary file for `networks` networks of `spec`;
    /// `meta`'s epochs and interruption are set by [`Self::finish`].
    pub fn create(
        path: &Path,
        spec: &ModelSpec,
        networks: usize,
        meta: &WeightsMetadata,
    ) -> Result<Self, Error> {
        Self::into_sink(Sink::create(Some(path))?, spec, networks, meta)
    }

    /// As [`Self::create`], into `sink` (a file, or memory: the same
    /// bytes).
    pub fn into_sink(
        sink: Sink,
        spec: &ModelSpec,
        networks: usize,
        meta: &WeightsMetadata,
    ) -> Result<Self, Error> {
        let slots = written_slots(spec, meta);
        // The widest values the header can hold: 20 digits, "false".
        let widest = WeightsMetadata {
            epochs: u64::MAX,
            interrupted: false,
            ..meta.clone()
        };
        let header_room =
            (header_bytes(spec, &slots, networks, &widest).len() as u64).next_multiple_of(8);
        let (starts, end) = data_starts(&slots, networks);
        Ok(Self {
            file: sink,
            spec: spec.clone(),
            meta: meta.clone(),
            slots,
            starts,
            end,
            networks,
            header_room,
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

    /// Writes networks `first..first + block.learning_rates.len()`.
    pub fn write_block(&mut self, first: usize, block: BlockValues) -> Result<(), Error> {
        let count = block.learning_rates.len();
        let p = self.spec.layout().len;
        let per_state = self.spec.optimizer.state_slots() * p;
        assert_eq!(
            block.params.len(),
            count * p,
            "one parameter vector per rate"
        );
        assert_eq!(
            block.state.len(),
            count * per_state,
            "optimizer state per rate"
        );
        assert_eq!(block.outcomes.len(), count, "one outcome per rate");
        assert_eq!(block.never_started.len(), count, "one mark per rate");
        assert_eq!(
            block.snapshots.len(),
            count * self.meta.snapshots.len() * p,
            "every snapshot of every network"
        );
        assert!(first + count <= self.networks, "block beyond the file");
        // Runs of networks alike in being started or not: a never-started
        // network's parameters and state are not written at all (a stop
        // before most of a large population writes little).
        let mut start = 0;
        let runs: Vec<_> = (block.never_started.chunk_by(|a, b| a == b))
            .map(|run| {
                start += run.len();
                (start - run.len()..start, run[0])
            })
            .collect();
        for t in 0..self.slots.len() {
            let (values, dtype) = (self.slots[t].values, self.slots[t].dtype);
            let per_network = self.slots[t].per_network();
            let size = dtype.bitsize() / 8;
            let store = |v: f64, bytes: &mut Vec<u8>| match dtype {
                Dtype::F64 => bytes.extend_from_slice(&v.to_le_bytes()),
                _ => bytes.extend_from_slice(&(v as f32).to_le_bytes()),
            };
            let per_network_values = matches!(
                values,
                Values::Params(_) | Values::State(..) | Values::Snapshot(..)
            );
            for (run, never) in &runs {
                if *never && per_network_values {
                    continue;
                }
                let mut bytes = Vec::with_capacity(size * per_network * run.len());
                for n in run.clone() {
                    match values {
                        Values::Params(offset) => {
                            let values = &block.params[n * p + offset..][..per_network];
                            values.iter().for_each(|&v| store(v, &mut bytes));
                        }
                        Values::State(k, offset) => {
                            let values =
                                &block.state[n * per_state + k * p + offset..][..per_network];
                            values.iter().for_each(|&v| store(v, &mut bytes));
                        }
                        Values::Snapshot(k, offset) => {
                            let kept = self.meta.snapshots.len();
                            let values =
                                &block.snapshots[(n * kept + k) * p + offset..][..per_network];
                            values.iter().for_each(|&v| store(v, &mut bytes));
                        }
                        Values::LearningRate => store(block.learning_rates[n], &mut bytes),
                        Values::EpochsCompleted => {
                            let done = match never {
                                true => NEVER_STARTED,
                                false => block.outcomes[n].epochs_completed as i64,
                            };
                            bytes.extend_from_slice(&done.to_le_bytes());
                        }
                        Values::TargetEpoch => {
                            let target = block.outcomes[n].target_epoch.map_or(-1, i64::from);
                            bytes.extend_from_slice(&target.to_le_bytes());
                        }
                    }
                }
                let at = first + run.start;
                let at = self.data_offset() + self.starts[t] + (at * per_network * size) as u64;
                self.write_at(at, &bytes)?;
            }
        }
        Ok(())
    }

    /// Writes the header (see [`Self::finish`]) and gives the complete
    /// file (to be persisted with the run's other outputs) or bytes.
    pub fn complete(mut self, epochs: u64, interrupted: bool) -> Result<Written, Error> {
        let meta = WeightsMetadata {
            epochs,
            interrupted,
            ..self.meta.clone()
        };
        let mut header = header_bytes(&self.spec, &self.slots, self.networks, &meta);
        assert!(header.len() as u64 <= self.header_room, "header room");
        // JSON allows trailing blanks; safetensors pads its headers so.
        header.resize(self.header_room as usize, b' ');
        let mut opening = self.header_room.to_le_bytes().to_vec();
        opening.extend_from_slice(&header);
        self.write_at(0, &opening)?;
        // Exactly the header and data, even where no block was written.
        let end = self.data_offset() + self.end;
        self.file.set_len(end)?;
        Ok(self.file.written())
    }

    /// Writes the header with the epochs completed (the fewest of any
    /// network) and whether the run was interrupted, and renames the file
    /// into place.
    pub fn finish(self, epochs: u64, interrupted: bool) -> Result<(), Error> {
        match self.complete(epochs, interrupted)? {
            Written::File(file) => file.persist(),
            Written::Memory(_) => Ok(()),
        }
    }
}

/// Writes a whole population at once (see [`WeightsWriter`]), with
/// `meta`'s epochs for every network and no target epochs.
pub fn write(
    path: &Path,
    spec: &ModelSpec,
    params: &[f64],
    state: &[f64],
    learning_rates: &[f64],
    meta: &WeightsMetadata,
) -> Result<(), Error> {
    let networks = learning_rates.len();
    let outcomes = vec![
        NetworkOutcome {
            final_loss: f64::NAN,
            target_epoch: None,
            diverged: false,
            epochs_completed: meta.epochs,
        };
        networks
    ];
    let mut writer = WeightsWriter::create(path, spec, networks, meta)?;
    writer.write_block(
        0,
        BlockValues {
            params,
            state,
            learning_rates,
            outcomes: &outcomes,
            never_started: &vec![false; networks],
            snapshots: &[],
        },
    )?;
    writer.finish(meta.epochs, meta.interrupted)
}

/// What a run reads a weights file for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadFor {
    /// `--init-weights`: the parameters and learning rates, with fresh
    /// optimizer state; training settings may differ (noted).
    Init,
    /// `--resume`: parameters, optimizer state, learning rates and each
    /// network's epochs, to continue the same training exactly; every
    /// training setting must be the run's. `target_loss` is the run's: the
    /// file's target epochs are kept when it is the file's.
    Resume { target_loss: Option<f64> },
}

/// How a recorded setting that differs from the run is treated.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDifference {
    /// It changes what the parameters mean: always refused.
    Refuse,
    /// It changes how training goes on: a note for `--init-weights`,
    /// refused by `--resume`.
    NoteOrRefuseResume,
    /// Only the optimizer and the order: ignored by `--init-weights`
    /// (fresh state), refused by `--resume`.
    ResumeOnly,
}

/// The settings a file records, how a difference is treated, and the
/// value files from before the setting existed stand for.
fn recorded_settings(
    spec: &ModelSpec,
) -> Vec<(&'static str, String, OnDifference, Option<&'static str>)> {
    recorded_fields(spec)
        .into_iter()
        .map(|(field, run)| {
            let (on_difference, older) = match field {
                "topology" | "bias" => (OnDifference::Refuse, None),
                "activation" | "output_activation" => (OnDifference::Refuse, Some("sigmoid")),
                "loss" | "reduction" | "freeze_bias" => (OnDifference::NoteOrRefuseResume, None),
                // Files from before schedules trained at a constant rate.
                "lr_schedule" => (OnDifference::ResumeOnly, Some("constant")),
                // Files from before early stopping trained every epoch.
                "early_stopping" => (OnDifference::ResumeOnly, Some("none")),
                // Files from before resamples trained on every row.
                "resample" => (OnDifference::ResumeOnly, Some("none")),
                _ => (OnDifference::ResumeOnly, None),
            };
            (field, run, on_difference, older)
        })
        .collect()
}

/// What a resumed run takes from a file's metadata and epoch counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeRecord {
    /// The epochs the file's run was asked for.
    pub planned_epochs: u64,
    /// Backend and strategy the file was trained on.
    pub trained_on: String,
    /// The most and the total epochs any network completed.
    pub most_epochs: u64,
    pub total_epochs: u64,
    /// The file's target epochs count (its target loss is the run's).
    pub keep_targets: bool,
}

/// Compares a file's metadata with the run (see [`ReadFor`]): a setting
/// that changes what the parameters mean or an unknown format is refused,
/// naming the field and both values; for `--init-weights` one that changes
/// only how training continues (loss, reduction, frozen biases) and the
/// training the file already had give notes, while `--resume` refuses any
/// difference in training settings. A file without metadata is noted as
/// such (and cannot be resumed).
fn check_metadata(
    metadata: Option<&HashMap<String, String>>,
    spec: &ModelSpec,
    purpose: ReadFor,
) -> Result<(Vec<String>, Option<ResumeRecord>), String> {
    let resume = matches!(purpose, ReadFor::Resume { .. });
    let no_state = |why: &str| {
        format!(
            "has no optimizer state and epoch counts to resume from ({why}); \
             {INIT_WEIGHTS} starts from its parameters with fresh optimizer state"
        )
    };
    let Some(metadata) = metadata else {
        if resume {
            return Err(no_state("no gputrain metadata: written by another tool?"));
        }
        return Ok((
            vec![format!(
                "has no gputrain metadata (written by another tool?); its tensors fit {} with {} \
                 biases, and it is taken to be for {} / {} activations",
                spec.topology, spec.bias, spec.activation, spec.output_activation
            )],
            None,
        ));
    };
    match metadata.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(FORMAT_WITHOUT_STATE) | None if !resume => {}
        Some(FORMAT_WITHOUT_STATE) | None => {
            return Err(no_state(&format!(
                "format '{FORMAT_WITHOUT_STATE}', written before {RESUME} existed"
            )));
        }
        Some(format) => {
            return Err(format!(
                "is in format '{format}', but this gputrain reads '{FORMAT}' and \
                 '{FORMAT_WITHOUT_STATE}'"
            ));
        }
    }
    let mut notes = Vec::new();
    for (field, wanted, on_difference, older) in recorded_settings(spec) {
        let Some(found) = metadata.get(field).map(String::as_str).or(older) else {
            continue;
        };
        if found == wanted || (!resume && on_difference == OnDifference::ResumeOnly) {
            continue;
        }
        if on_difference == OnDifference::Refuse {
            return Err(format!(
                "was written for {field} '{found}', but this run's {field} is '{wanted}' \
                 (give the settings it was written for, or start from {INIT})"
            ));
        }
        if resume {
            return Err(format!(
                "was trained with {field} '{found}', but this run's {field} is '{wanted}' \
                 ({RESUME} continues the same training: give the settings it was \
                 trained with, or start from its parameters with fresh optimizer state by \
                 {INIT_WEIGHTS})"
            ));
        }
        notes.push(format!(
            "was trained with {field} '{found}'; this run continues with {field} '{wanted}'"
        ));
    }
    let field = |name: &str| metadata.get(name).map(String::as_str);
    let whole = |name: &str| -> Result<Option<u64>, String> {
        field(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("metadata field '{name}' is '{v}', not a whole number"))
            })
            .transpose()
    };
    let trained = whole("epochs")?;
    let interrupted = match field("interrupted") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(format!(
                "metadata field 'interrupted' is '{other}', not true or false"
            ));
        }
    };
    let ReadFor::Resume { target_loss } = purpose else {
        if let Some(trained) = trained.filter(|&t| t > 0) {
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
        return Ok((notes, None));
    };
    let shuffled = spec.batching.is_some_and(|b| b.shuffle);
    let seed = spec.batching.map_or(0, |b| b.seed).to_string();
    if shuffled && field("seed") != Some(seed.as_str()) {
        return Err(format!(
            "was trained with seed '{}', but this run's seed is '{seed}', and the seed sets \
             the minibatch order ({RESUME} continues the same training: give {})",
            field("seed").unwrap_or("none"),
            SEED.is(field("seed").unwrap_or("0"))
        ));
    }
    let planned =
        whole("planned_epochs")?.ok_or_else(|| no_state("no metadata field 'planned_epochs'"))?;
    let recorded_target = field("target_loss").unwrap_or("none");
    let run_target = target_loss.map_or("none".to_string(), |t| t.to_string());
    let keep_targets = recorded_target == run_target;
    if !keep_targets {
        notes.push(format!(
            "was trained with {}, this run has {}: target epochs count from the \
             resumed epoch",
            TARGET_LOSS.is(recorded_target),
            TARGET_LOSS.is(run_target)
        ));
    }
    Ok((
        notes,
        Some(ResumeRecord {
            planned_epochs: planned,
            trained_on: field("trained_on").unwrap_or("unknown").to_string(),
            most_epochs: 0,
            total_epochs: 0,
            keep_targets,
        }),
    ))
}

/// The `init` and `seed` a file records (see [`WeightsMetadata::init`]),
/// or `None` where it records no init.
fn recorded_init(
    metadata: Option<&HashMap<String, String>>,
) -> Result<Option<(Init, u64)>, String> {
    let Some(init) = metadata.and_then(|m| m.get("init")) else {
        return Ok(None);
    };
    let init: Init = init
        .parse()
        .map_err(|e: Error| format!("metadata field 'init': {e}"))?;
    let seed = metadata
        .and_then(|m| m.get("seed"))
        .map_or("0", String::as_str);
    let seed = seed
        .parse()
        .map_err(|_| format!("metadata field 'seed' is '{seed}', not a whole number"))?;
    Ok(Some((init, seed)))
}

/// The tensor names `--init-weights` accepts beside the run's own: any
/// optimizer's state of the run's parameters (fresh state is used).
fn other_optimizer_state(spec: &ModelSpec, name: &str) -> bool {
    parameter_slots(spec).iter().any(|slot| {
        crate::vocab::OPTIMIZERS
            .iter()
            .flat_map(|def| def.state)
            .any(|state| name == format!("{}.{state}", slot.name))
    })
}

/// Where a weights file is read from: the file itself, or its bytes in
/// memory (a Python `Run`'s weights, which no file holds), named by
/// `origin` in errors.
#[derive(Clone, Debug)]
pub enum Source {
    Path(PathBuf),
    Bytes {
        bytes: std::sync::Arc<[u8]>,
        origin: PathBuf,
    },
}

impl Source {
    /// The name errors give.
    pub fn origin(&self) -> &Path {
        match self {
            Source::Path(path) => path,
            Source::Bytes { origin, .. } => origin,
        }
    }

    fn open(&self) -> std::io::Result<(Reading, u64)> {
        Ok(match self {
            Source::Path(path) => {
                let file = File::open(path)?;
                let length = file.metadata()?.len();
                (Reading::File(file), length)
            }
            Source::Bytes { bytes, .. } => (
                Reading::Bytes(std::io::Cursor::new(bytes.clone())),
                bytes.len() as u64,
            ),
        })
    }
}

/// A [`Source`] open for reading.
enum Reading {
    File(File),
    Bytes(std::io::Cursor<std::sync::Arc<[u8]>>),
}

impl Read for Reading {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Reading::File(f) => f.read(buf),
            Reading::Bytes(c) => c.read(buf),
        }
    }
}

impl Seek for Reading {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        match self {
            Reading::File(f) => f.seek(to),
            Reading::Bytes(c) => c.seek(to),
        }
    }
}

/// Opens a safetensors file and reads its header: the file, the header,
/// and where the data starts. Errors name the file and what is wrong.
fn read_header(source: &Source) -> Result<(Reading, Metadata, u64), Error> {
    let path = source.origin();
    let bad = |message: String| Error::WeightsFile {
        path: path.to_path_buf(),
        message,
    };
    let (mut file, length) = source
        .open()
        .map_err(|e| bad(format!("cannot read: {e}")))?;
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
    let header: Metadata =
        serde_json::from_slice(&header).map_err(|e| not_safetensors(format!("its header: {e}")))?;
    let data_offset = HEADER_LENGTH_BYTES + header_length;
    if data_offset + header.data_len() as u64 != length {
        return Err(not_safetensors(format!(
            "its header describes {} bytes of data, but {} follow it",
            header.data_len(),
            length - data_offset
        )));
    }
    Ok((file, header, data_offset))
}

/// What a weights file records of the run that wrote it: its network
/// count (the length of tensor `learning_rate`, 0 without one) and its
/// metadata (none from another tool): what a resume of the file alone
/// takes as the run's networks, model and plan.
pub fn recorded_run(path: &Path) -> Result<(usize, HashMap<String, String>), Error> {
    let (_, header, _) = read_header(&Source::Path(path.to_path_buf()))?;
    let networks = header
        .tensors()
        .get(LEARNING_RATE)
        .and_then(|info| info.shape.first().copied())
        .unwrap_or(0);
    Ok((networks, header.metadata().clone().unwrap_or_default()))
}

/// The model a weights file records (topology, bias mode, activations,
/// loss and reduction), for commands that take the model from the file
/// alone (`gputrain predict`). A file without the metadata, or missing a
/// field, is refused naming what is missing; activations absent from
/// older files are sigmoid.
pub fn recorded_model(path: &Path) -> Result<ModelSpec, Error> {
    recorded_model_in(&Source::Path(path.to_path_buf()))
}

/// [`recorded_model`] of a file or bytes.
pub fn recorded_model_in(source: &Source) -> Result<ModelSpec, Error> {
    let path = source.origin();
    let bad = |message: String| Error::WeightsFile {
        path: path.to_path_buf(),
        message,
    };
    let (_, header, _) = read_header(source)?;
    let metadata = header.metadata().clone().ok_or_else(|| {
        bad(
            "has no gputrain metadata (topology, bias, activations, loss), which give \
             the model; was it written by another tool?"
                .to_string(),
        )
    })?;
    let field = |name: &str, older: Option<&'static str>| -> Result<String, Error> {
        metadata
            .get(name)
            .cloned()
            .or(older.map(String::from))
            .ok_or_else(|| {
                bad(format!(
                    "has no metadata field '{name}', which the model needs"
                ))
            })
    };
    fn value<T: clap::ValueEnum>(
        name: &str,
        value: &str,
        bad: &dyn Fn(String) -> Error,
    ) -> Result<T, Error> {
        T::from_str(value, false).map_err(|_| {
            bad(format!(
                "metadata field '{name}' is '{value}', not a known value"
            ))
        })
    }
    let topology: crate::model::Topology = field("topology", None)?
        .parse()
        .map_err(|e: Error| bad(format!("metadata field 'topology': {e}")))?;
    let spec = ModelSpec {
        topology,
        bias: value("bias", &field("bias", None)?, &bad)?,
        activation: value("activation", &field("activation", Some("sigmoid"))?, &bad)?,
        output_activation: value(
            "output_activation",
            &field("output_activation", Some("sigmoid"))?,
            &bad,
        )?,
        loss: value("loss", &field("loss", Some("half-sse"))?, &bad)?,
        reduction: value("reduction", &field("reduction", Some("sum"))?, &bad)?,
        resample: match field("resample", Some("none"))?.as_str() {
            "none" => None,
            text => {
                let seed = field("resample_seed", Some("0"))?;
                let seed = seed.parse().ok();
                let parsed = seed.and_then(|seed| crate::resample::Resampling::parse(text, seed));
                Some(parsed.ok_or_else(|| {
                    bad(format!(
                        "metadata field 'resample' is '{text}', not a known value"
                    ))
                })?)
            }
        },
        ..ModelSpec::default()
    };
    spec.validate()
        .map_err(|e| bad(format!("records a model gputrain cannot use: {e}")))?;
    Ok(spec)
}

/// Reads a weights file a block of networks at a time; opening it checks
/// the header against the run.
pub struct WeightsReader {
    path: PathBuf,
    file: Reading,
    /// Each tensor the run reads, its absolute file offset and dtype.
    slots: Vec<(TensorSlot, u64, Dtype)>,
    networks: usize,
    parameter_count: usize,
    state_slots: usize,
    notes: Vec<String>,
    resume: Option<ResumeRecord>,
    /// The file's `init` and `seed` metadata: how its never-started
    /// networks start.
    init: Option<(Init, u64)>,
    /// The first network never started ([`NEVER_STARTED`]), if any.
    first_never_started: Option<usize>,
}

/// The resumed values of a block: optimizer state (network after network,
/// slots x parameters), epochs completed and target epochs.
pub struct ResumeBlock<'a> {
    pub state: &'a mut [f64],
    pub epochs_completed: &'a mut [u64],
    pub target_epochs: &'a mut [Option<u32>],
}

impl WeightsReader {
    /// Opens `path` for a run of `spec`: the recorded model must be the
    /// run's (see [`ReadFor`] and [`WeightsReader::notes`] for the
    /// differences accepted), and every tensor's name, dtype and shape must
    /// fit it.
    pub fn open(path: &Path, spec: &ModelSpec, purpose: ReadFor) -> Result<Self, Error> {
        Self::open_source(&Source::Path(path.to_path_buf()), spec, purpose)
    }

    /// [`Self::open`] of a file or bytes.
    pub fn open_source(source: &Source, spec: &ModelSpec, purpose: ReadFor) -> Result<Self, Error> {
        Self::open_snapshot(source, spec, purpose, None)
    }

    /// [`Self::open_source`] whose parameters are those of the snapshot
    /// at epoch `snapshot` (`--snapshots`), where one is asked for, by the
    /// setting that asks (named if the file does not hold it).
    pub fn open_snapshot(
        source: &Source,
        spec: &ModelSpec,
        purpose: ReadFor,
        asked: Option<(crate::setting::Setting, u64)>,
    ) -> Result<Self, Error> {
        let snapshot = asked.map(|(_, epoch)| epoch);
        let path = source.origin();
        let bad = |message: String| Error::WeightsFile {
            path: path.to_path_buf(),
            message,
        };
        let (file, header, data_offset) = read_header(source)?;
        let field = |name: &str| {
            header
                .metadata()
                .as_ref()
                .and_then(|m| m.get(name).cloned())
        };
        if snapshot.is_none() && field(CONTENTS_FIELD).as_deref() == Some(SNAPSHOTS_ONLY) {
            use crate::setting::settings::{INIT_SNAPSHOT, SNAPSHOT, SNAPSHOTS_OUT};
            return Err(bad(format!(
                "is a snapshots file ({SNAPSHOTS_OUT}): it holds the parameters at epochs {} \
                 only; ask for one ({SNAPSHOT} E to predict, {INIT_SNAPSHOT} E to start from)",
                field(SNAPSHOTS_FIELD).unwrap_or_default()
            )));
        }
        let (notes, resume) =
            check_metadata(header.metadata().as_ref(), spec, purpose).map_err(bad)?;
        let init = recorded_init(header.metadata().as_ref()).map_err(bad)?;
        let tensors = header.tensors();
        let mut names: Vec<&str> = tensors.keys().map(String::as_str).collect();
        names.sort_unstable();
        let describe =
            |spec: &ModelSpec| format!("{} network with {} biases", spec.topology, spec.bias);
        let networks = match tensors.get(LEARNING_RATE) {
            Some(info) if info.shape.len() == 1 => info.shape[0],
            Some(info) => {
                return Err(bad(format!(
                    "tensor '{LEARNING_RATE}' has shape {:?}, expected [networks]",
                    info.shape
                )));
            }
            None => 0,
        };
        if let Some((setting, epoch)) = asked {
            let kept = header
                .metadata()
                .as_ref()
                .and_then(|m| m.get(SNAPSHOTS_FIELD).cloned());
            let held = kept
                .as_deref()
                .is_some_and(|k| k.split(',').any(|e| e == epoch.to_string()));
            if !held {
                let has = match kept {
                    Some(epochs) => format!("its snapshots are at epochs {epochs}"),
                    None => format!("it holds none (train with {SNAPSHOTS})"),
                };
                return Err(bad(format!(
                    "holds no snapshot at epoch {epoch} ({}): {has}",
                    setting.is(epoch)
                )));
            }
        }
        let mut slots = Vec::new();
        for slot in tensor_slots(spec) {
            // The snapshot's parameters, where one is asked for.
            let slot = match (slot.values, snapshot) {
                (Values::Params(_), Some(epoch)) => TensorSlot {
                    name: snapshot_name(epoch, &slot.name),
                    ..slot
                },
                _ => slot,
            };
            // The exact float64 companion, where the file has one.
            let exact = format!("{}{FLOAT64}", slot.name);
            let slot = match slot.values {
                Values::Params(_) | Values::LearningRate if tensors.contains_key(&exact) => {
                    TensorSlot {
                        name: exact,
                        ..slot
                    }
                }
                _ => slot,
            };
            let needed = match slot.values {
                Values::Params(_) | Values::LearningRate => true,
                _ => resume.is_some(),
            };
            let Some(info) = tensors.get(&slot.name) else {
                if !needed {
                    continue;
                }
                let what = match slot.values {
                    Values::Params(_) | Values::LearningRate => {
                        format!("which a {} needs", describe(spec))
                    }
                    _ => format!(
                        "which {RESUME} needs for {} with {}",
                        spec.optimizer.kind.name(),
                        describe(spec)
                    ),
                };
                return Err(bad(format!(
                    "has no tensor '{}', {what} (it holds: {})",
                    slot.name,
                    names.join(", ")
                )));
            };
            let integer = matches!(slot.values, Values::EpochsCompleted | Values::TargetEpoch);
            let allowed: &[Dtype] = if integer {
                &[Dtype::I64]
            } else {
                &[Dtype::F32, Dtype::F64]
            };
            if !allowed.contains(&info.dtype) {
                return Err(bad(format!(
                    "tensor '{}' is {:?}, expected {}",
                    slot.name,
                    info.dtype,
                    if integer { "I64" } else { "F32 or F64" }
                )));
            }
            let expected = [vec![networks], slot.shape.clone()].concat();
            if info.shape != expected {
                return Err(bad(format!(
                    "tensor '{}' has shape {:?}, but {networks} networks of {} with {} biases \
                     need {expected:?}",
                    slot.name, info.shape, spec.topology, spec.bias
                )));
            }
            let dtype = info.dtype;
            slots.push((slot, data_offset + info.data_offsets.0 as u64, dtype));
        }
        // Any snapshot's tensors (snapshot.{epoch}.{parameter}).
        let parameters = parameter_slots(spec);
        let snapshot_tensor = |name: &str| {
            let rest = name.strip_prefix(SNAPSHOT_PREFIX);
            let tensor = rest.and_then(|r| r.split_once('.'));
            tensor.is_some_and(|(epoch, tensor)| {
                let tensor = tensor.strip_suffix(FLOAT64).unwrap_or(tensor);
                epoch.parse::<u64>().is_ok() && parameters.iter().any(|s| s.name == tensor)
            })
        };
        let known = |name: &str| {
            snapshot_tensor(name)
                || parameters
                    .iter()
                    .any(|s| s.name == name || format!("{}{FLOAT64}", s.name) == name)
                || name == EPOCHS_COMPLETED
                || name == TARGET_EPOCH
                || slots
                    .iter()
                    .any(|(s, _, _)| s.name == name || s.name == format!("{name}{FLOAT64}"))
                || other_optimizer_state(spec, name)
        };
        if let Some(extra) = names.iter().find(|n| !known(n)) {
            return Err(bad(format!(
                "holds tensor '{extra}', which a {} does not have",
                describe(spec)
            )));
        }
        let mut reader = Self {
            path: path.to_path_buf(),
            file,
            slots,
            networks,
            parameter_count: spec.layout().len,
            state_slots: spec.optimizer.state_slots(),
            notes,
            resume,
            init,
            first_never_started: None,
        };
        if reader.slot(Values::EpochsCompleted).is_some() {
            reader.count_epochs()?;
        }
        Ok(reader)
    }

    /// Reads every network's epochs completed once, for the most and the
    /// total (a run's remaining work and the `--epochs` check) and the
    /// first never started.
    fn count_epochs(&mut self) -> Result<(), Error> {
        const STEP: usize = 1 << 20;
        let (mut most, mut total) = (0u64, 0u64);
        for first in (0..self.networks).step_by(STEP) {
            let count = STEP.min(self.networks - first);
            for (n, done) in self.read_epochs(first, count)?.into_iter().enumerate() {
                let Some(done) = done else {
                    self.first_never_started.get_or_insert(first + n);
                    continue;
                };
                most = most.max(done);
                total = total.saturating_add(done);
            }
        }
        if let Some(record) = &mut self.resume {
            record.most_epochs = most;
            record.total_epochs = total;
        }
        Ok(())
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

    /// What a resumed run continues from (`None` unless opened for it).
    pub fn resume(&self) -> Option<&ResumeRecord> {
        self.resume.as_ref()
    }

    fn slot(&self, values: Values) -> Option<(usize, u64, Dtype)> {
        self.slots
            .iter()
            .find(|(s, _, _)| s.values == values)
            .map(|(s, at, dtype)| (s.per_network(), *at, *dtype))
    }

    fn read_bytes(&mut self, at: u64, count: usize, name: &str) -> Result<Vec<u8>, Error> {
        let mut bytes = vec![0u8; count];
        self.file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.read_exact(&mut bytes))
            .map_err(|e| Error::WeightsFile {
                path: self.path.clone(),
                message: format!("cannot read tensor '{name}': {e}"),
            })?;
        Ok(bytes)
    }

    /// Networks `first..first + count` of an integer tensor.
    fn read_integers(
        &mut self,
        values: Values,
        first: usize,
        count: usize,
    ) -> Result<Vec<i64>, Error> {
        let (_, at, _) = self.slot(values).expect("resumable files have the tensor");
        let name = if values == Values::EpochsCompleted {
            EPOCHS_COMPLETED
        } else {
            TARGET_EPOCH
        };
        let bytes = self.read_bytes(at + 8 * first as u64, 8 * count, name)?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")))
            .collect())
    }

    /// Networks `first..first + count`'s epochs completed, `None` for one
    /// never started ([`NEVER_STARTED`]).
    fn read_epochs(&mut self, first: usize, count: usize) -> Result<Vec<Option<u64>>, Error> {
        let raw = self.read_integers(Values::EpochsCompleted, first, count)?;
        raw.iter()
            .enumerate()
            .map(|(n, &done)| match done {
                NEVER_STARTED => Ok(None),
                done => u64::try_from(done)
                    .ok()
                    .filter(|&d| d <= crate::training::MAX_EPOCHS)
                    .map(Some)
                    .ok_or_else(|| Error::WeightsFile {
                        path: self.path.clone(),
                        message: format!(
                            "holds {done} in '{EPOCHS_COMPLETED}' of network {}, not an epoch \
                             count (or {NEVER_STARTED}: never started)",
                            first + n
                        ),
                    }),
            })
            .collect()
    }

    /// How the file's never-started networks start: its `init` and `seed`
    /// metadata (`None` where it records no init: a grid's file, or one
    /// started from `--init-weights`).
    pub fn recorded_init(&self) -> Option<(Init, u64)> {
        self.init
    }

    /// The first network the file marks never started ([`NEVER_STARTED`]).
    pub fn first_never_started(&self) -> Option<usize> {
        self.first_never_started
    }

    /// Reads networks `first..first + learning_rates.len()` into `params`
    /// (their vectors back to back) and `learning_rates`, and for a resumed
    /// run `resume`'s state, epochs and target epochs. A non-finite value
    /// is refused, naming the network and tensor, except in a resumed
    /// network that diverged: one whose parameters hold a non-finite value
    /// (kept as they were, with its state). Training never leaves a
    /// non-finite optimizer state beside finite parameters (the step that
    /// makes a moment or buffer NaN or inf makes the parameter so too), so
    /// that is refused as damage.
    ///
    /// Returns which networks were never started ([`NEVER_STARTED`]):
    /// their parameters and state are NaN, their epochs 0, and the caller
    /// starts or refuses them.
    pub fn read_block(
        &mut self,
        first: usize,
        params: &mut [f64],
        learning_rates: &mut [f64],
        mut resume: Option<ResumeBlock>,
    ) -> Result<Vec<bool>, Error> {
        let count = learning_rates.len();
        let p = self.parameter_count;
        let per_state = self.state_slots * p;
        assert_eq!(params.len(), count * p, "one parameter vector per rate");
        assert!(first + count <= self.networks, "block beyond the file");
        let epochs = match self.slot(Values::EpochsCompleted) {
            Some(_) => Some(self.read_epochs(first, count)?),
            None => None,
        };
        let never_started: Vec<bool> = match &epochs {
            Some(epochs) => epochs.iter().map(Option::is_none).collect(),
            None => vec![false; count],
        };
        let path = self.path.clone();
        let non_finite = |name: &str, index: usize, v: f64| Error::WeightsFile {
            path: path.clone(),
            message: format!("holds the non-finite value {v} in '{name}' of network {index}"),
        };
        let resuming = resume.is_some();
        // Per network: a parameter is non-finite (it diverged), and the
        // first non-finite state value, with its tensor.
        let mut diverged = vec![false; count];
        let mut bad_state: Vec<Option<(String, f64)>> = vec![None; count];
        for t in 0..self.slots.len() {
            let (slot, at, dtype) = &self.slots[t];
            let (values, per_network, at, dtype) = (slot.values, slot.per_network(), *at, *dtype);
            let name = slot.name.clone();
            let target: (&mut [f64], usize, usize) = match (values, resume.as_mut()) {
                (Values::Params(offset), _) => (&mut *params, p, offset),
                (Values::State(k, offset), Some(r)) => (&mut *r.state, per_state, k * p + offset),
                (Values::LearningRate, _) => (&mut *learning_rates, 1, 0),
                _ => continue,
            };
            let size = dtype.bitsize() / 8;
            let bytes = self.read_bytes(
                at + (first * per_network * size) as u64,
                count * per_network * size,
                &name,
            )?;
            let floats: Vec<f64> = match dtype {
                Dtype::F64 => bytes
                    .chunks_exact(8)
                    .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect(),
                _ => bytes
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes")) as f64)
                    .collect(),
            };
            let (into, stride, offset) = target;
            let may_be_non_finite = resuming && values != Values::LearningRate;
            for (n, chunk) in floats.chunks_exact(per_network).enumerate() {
                let into = &mut into[n * stride + offset..][..per_network];
                if never_started[n] && values != Values::LearningRate {
                    // Never written: whatever the bytes, no values.
                    into.fill(f64::NAN);
                    continue;
                }
                if let Some(v) = chunk.iter().find(|v| !v.is_finite()) {
                    match values {
                        _ if !may_be_non_finite => return Err(non_finite(&name, first + n, *v)),
                        Values::Params(_) => diverged[n] = true,
                        _ => {
                            bad_state[n].get_or_insert_with(|| (name.clone(), *v));
                        }
                    }
                }
                into.copy_from_slice(chunk);
            }
        }
        let damaged = bad_state.iter().zip(&diverged).enumerate();
        let mut damaged = damaged
            .filter_map(|(n, (bad, &diverged))| bad.as_ref().filter(|_| !diverged).map(|b| (n, b)));
        if let Some((n, (name, v))) = damaged.next() {
            return Err(Error::WeightsFile {
                path: self.path.clone(),
                message: format!(
                    "holds the non-finite value {v} in '{name}' of network {}, whose parameters \
                     are finite: training never leaves such a state (a damaged file)",
                    first + n
                ),
            });
        }
        if let Some(r) = resume {
            let keep = self.resume.as_ref().is_some_and(|rec| rec.keep_targets);
            let epochs = epochs.expect("resumable files have the tensor");
            for (into, done) in r.epochs_completed.iter_mut().zip(&epochs) {
                *into = done.unwrap_or(0);
            }
            let targets = self.read_integers(Values::TargetEpoch, first, count)?;
            for (n, (into, &t)) in r.target_epochs.iter_mut().zip(&targets).enumerate() {
                let done = r.epochs_completed[n];
                *into = match t {
                    -1 => None,
                    t if t >= 0 && t as u64 <= done => Some(t as u32).filter(|_| keep),
                    t => {
                        return Err(Error::WeightsFile {
                            path: self.path.clone(),
                            message: format!(
                                "holds {t} in '{TARGET_EPOCH}' of network {}, which completed \
                                 {done} epochs (expected -1 for none, or 0 to {done})",
                                first + n
                            ),
                        });
                    }
                };
            }
        }
        Ok(never_started)
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
    /// The networks never started ([`NEVER_STARTED`]), in order; their
    /// parameters are NaN.
    pub never_started: Vec<usize>,
}

/// Reads a whole weights file's parameters and learning rates for `spec`
/// (see [`WeightsReader`]).
pub fn read(path: &Path, spec: &ModelSpec) -> Result<LoadedWeights, Error> {
    read_source(&Source::Path(path.to_path_buf()), spec)
}

/// [`read`] of a file or bytes.
pub fn read_source(source: &Source, spec: &ModelSpec) -> Result<LoadedWeights, Error> {
    read_snapshot(source, spec, None)
}

/// [`read_source`] of the snapshot at epoch `snapshot`, where one is
/// asked for: its parameters, the file's learning rates.
pub fn read_snapshot(
    source: &Source,
    spec: &ModelSpec,
    snapshot: Option<u64>,
) -> Result<LoadedWeights, Error> {
    let asked = snapshot.map(|epoch| (SNAPSHOT, epoch));
    let mut reader = WeightsReader::open_snapshot(source, spec, ReadFor::Init, asked)?;
    let networks = reader.networks();
    let mut params = vec![0.0; networks * spec.layout().len];
    let mut learning_rates = vec![0.0; networks];
    let never = reader.read_block(0, &mut params, &mut learning_rates, None)?;
    Ok(LoadedWeights {
        params,
        learning_rates,
        networks,
        notes: reader.notes,
        never_started: (0..networks).filter(|&n| never[n]).collect(),
    })
}

/// Joins weights files of one model, each a contiguous range of networks
/// in order (shards' parts), into `out`: byte for byte the file one run
/// over all of them writes ([`WeightsWriter`]), copied a tensor at a time
/// in bounded memory. The files must record the same model, settings and
/// backend; the merged file's epochs are the fewest any part completed.
/// Returns the complete file, not yet in place.
pub fn merge_files(out: &Path, parts: &[(PathBuf, usize)]) -> Result<TemporaryFile, Error> {
    let expected: Vec<usize> = parts.iter().map(|(_, n)| *n).collect();
    let parts: Vec<PathBuf> = parts.iter().map(|(p, _)| p.clone()).collect();
    let parts = &parts[..];
    use crate::output::TensorFile;
    let files: Vec<TensorFile> = parts
        .iter()
        .map(|p| TensorFile::open(p))
        .collect::<Result<_, _>>()?;
    let first = files.first().expect("at least one part");
    let bad = |path: &Path, message: String| Error::Merge {
        path: path.to_path_buf(),
        message,
    };
    // Tensors in data order, with their dtype and per-network shape.
    let mut tensors: Vec<(String, String, Vec<usize>, u64)> = Vec::new();
    for name in first.header().keys() {
        if name == "__metadata__" {
            continue;
        }
        let (dtype, shape, begin, _) = first.tensor_info(name)?;
        tensors.push((name.clone(), dtype, shape[1..].to_vec(), begin));
    }
    tensors.sort_by_key(|t| t.3);
    let varying = ["epochs", "interrupted"];
    let mut fewest = u64::MAX;
    let mut networks = 0usize;
    for (i, (file, path)) in files.iter().zip(parts).enumerate() {
        for (key, value) in first.metadata_map() {
            let key = key.as_str();
            if !varying.contains(&key) && file.metadata(key) != Some(value.as_str()) {
                return Err(bad(
                    path,
                    format!(
                        "records {key} = {}, but {} records {value}: the shards were trained \
                         differently",
                        file.metadata(key).unwrap_or("nothing"),
                        parts[0].display()
                    ),
                ));
            }
        }
        let epochs = file.metadata("epochs").and_then(|e| e.parse::<u64>().ok());
        fewest = fewest.min(epochs.ok_or_else(|| bad(path, "has no epochs metadata".into()))?);
        let rows = file.rows(&tensors[0].0)?;
        let says = expected[i];
        if rows != says {
            return Err(bad(
                path,
                format!("holds {rows} networks, but its shard's run.json says {says}"),
            ));
        }
        for (name, dtype, shape, _) in &tensors {
            let (d, s, _, _) = file.tensor_info(name)?;
            if &d != dtype || s[1..] != shape[..] || s[0] != rows {
                return Err(bad(
                    path,
                    format!("tensor '{name}' differs from {}'s", parts[0].display()),
                ));
            }
        }
        networks += rows;
    }
    let planned = first
        .metadata("planned_epochs")
        .and_then(|e| e.parse::<u64>().ok())
        .unwrap_or(fewest);
    let size = |dtype: &str| match dtype {
        "F64" | "I64" => 8,
        _ => 4,
    };
    let row_bytes: Vec<usize> = tensors
        .iter()
        .map(|(_, dtype, shape, _)| size(dtype) * shape.iter().product::<usize>())
        .collect();
    let header = |epochs: &str, interrupted: &str| {
        let mut map = first.header().clone();
        let mut at = 0usize;
        for ((name, _, shape, _), row) in tensors.iter().zip(&row_bytes) {
            let end = at + row * networks;
            let info = &mut map[name.as_str()];
            info["shape"] = serde_json::json!([vec![networks], shape.clone()].concat());
            info["data_offsets"] = serde_json::json!([at, end]);
            at = end;
        }
        let meta = &mut map["__metadata__"];
        meta["epochs"] = serde_json::Value::String(epochs.to_string());
        meta["interrupted"] = serde_json::Value::String(interrupted.to_string());
        serde_json::to_vec(&serde_json::Value::Object(map)).expect("a header is plain data")
    };
    // The room WeightsWriter reserves: the widest epochs it could write.
    let room = (header(&u64::MAX.to_string(), "false").len() as u64).next_multiple_of(8);
    let mut text = header(&fewest.to_string(), &(fewest < planned).to_string());
    text.resize(room as usize, b' ');
    let mut file = Sink::create(Some(out))?;
    let opened = file
        .handle()
        .write_all(&room.to_le_bytes())
        .and_then(|_| file.handle().write_all(&text));
    opened.map_err(|e| file.error(e))?;
    let mut at = HEADER_LENGTH_BYTES + room;
    for ((name, dtype, _, _), &row) in tensors.iter().zip(&row_bytes) {
        let dtype = match dtype.as_str() {
            "F64" => Dtype::F64,
            "I64" => Dtype::I64,
            _ => Dtype::F32,
        };
        for part in &files {
            let rows = part.rows(name)?;
            part.copy_rows(name, dtype, rows, row, &mut file, at)?;
            at += (rows * row) as u64;
        }
    }
    file.set_len(at)?;
    match file.written() {
        Written::File(file) => Ok(file),
        Written::Memory(_) => unreachable!("a merge writes a file"),
    }
}
