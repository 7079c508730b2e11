//! Settings named as values, so that each face spells them in its own
//! words: the core writes `format!("{} needs {} > 0",
//! OPTIMIZER.is("nesterov"), MOMENTUM)` and never a flag; the command line
//! shows `--optimizer nesterov needs --momentum > 0`, the Python package
//! `optimizer='nesterov' needs momentum > 0`.
//!
//! A [`Setting`] or a [`Mention`] formats as a marker (control characters
//! around its key and value); [`render`] turns the markers of a message
//! into the current [`Face`]'s words. [`crate::Error`]'s `Display` renders
//! every message it holds, so no marker reaches a user: the command line's
//! face is the default, and [`with_face`] renders in another one.

use std::cell::Cell;
use std::fmt;

/// A setting of a run by its key: the Python keyword, the command line's
/// flag with `-` for `_` (`output_activation` is `--output-activation`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Setting(pub &'static str);

const START: char = '\u{1}';
const VALUE: char = '\u{1f}';
const END: char = '\u{2}';

impl Setting {
    /// The setting with the value it was given.
    pub fn is(self, value: impl fmt::Display) -> Mention {
        Mention {
            setting: self,
            value: value.to_string(),
        }
    }

    /// The key as the command line spells it, without the dashes.
    pub fn flag_name(self) -> String {
        self.0.replace('_', "-")
    }
}

/// The setting alone: `--momentum`, `momentum`.
impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{START}{}{END}", self.0)
    }
}

/// A setting with its value: `--momentum 1.5`, `momentum=1.5`.
#[derive(Clone, Debug, PartialEq)]
pub struct Mention {
    pub setting: Setting,
    pub value: String,
}

impl fmt::Display for Mention {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{START}{}{VALUE}{}{END}", self.setting.0, self.value)
    }
}

/// Who reads a message, and so how it names settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Face {
    /// `--output-activation softmax`.
    CommandLine,
    /// `output_activation='softmax'`, and a setting alone by its keyword.
    Python,
}

thread_local! {
    static FACE: Cell<Face> = const { Cell::new(Face::CommandLine) };
}

/// Runs `f` (which renders messages, e.g. `error.to_string()`) with the
/// settings named as `face` names them.
pub fn with_face<T>(face: Face, f: impl FnOnce() -> T) -> T {
    let before = FACE.with(|c| c.replace(face));
    let out = f();
    FACE.with(|c| c.set(before));
    out
}

/// `text` with each setting's marker in the current face's words.
pub fn render(text: &str) -> String {
    if !text.contains(START) {
        return text.to_string();
    }
    let face = FACE.with(Cell::get);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(START) {
        out.push_str(&rest[..at]);
        let after = &rest[at + START.len_utf8()..];
        let Some(end) = after.find(END) else {
            out.push_str(after);
            return out;
        };
        let (key, value) = match after[..end].split_once(VALUE) {
            Some((key, value)) => (key, Some(value)),
            None => (&after[..end], None),
        };
        out.push_str(&spell(face, key, value));
        rest = &after[end + END.len_utf8()..];
    }
    out.push_str(rest);
    out
}

fn spell(face: Face, key: &str, value: Option<&str>) -> String {
    match (face, value) {
        (Face::CommandLine, None) => format!("--{}", key.replace('_', "-")),
        (Face::CommandLine, Some(v)) => format!("--{} {v}", key.replace('_', "-")),
        (Face::Python, None) => key.replace('-', "_"),
        (Face::Python, Some(v)) => format!("{}={}", key.replace('-', "_"), python_literal(v)),
    }
}

/// A value as the Python user most likely wrote it: a number as it is, a
/// comma list of numbers as a list, anything else as a string.
fn python_literal(value: &str) -> String {
    // A value the message quotes ('0.05..5') is a string either way.
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return format!("{inner:?}").replace('"', "'");
    }
    let number = |t: &str| t.trim().parse::<f64>().is_ok();
    if number(value) {
        return value.to_string();
    }
    // A topology as reports print it: 2-3-1.
    let whole = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let widths: Vec<&str> = value.split('-').collect();
    if widths.len() > 1 && widths.iter().all(|w| whole(w)) {
        return format!("[{}]", widths.join(", "));
    }
    let parts: Vec<&str> = value.split(',').collect();
    if parts.len() > 1 && parts.iter().all(|p| number(p)) {
        let items: Vec<&str> = parts.iter().map(|p| p.trim()).collect();
        return format!("[{}]", items.join(", "));
    }
    format!("{value:?}").replace('"', "'")
}

/// The settings of a run, by key. Every key is a flag of `gputrain
/// train` or `predict` (a test in cli.rs holds them to it).
pub mod settings {
    use super::Setting;

    pub const ACTIVATION: Setting = Setting("activation");
    pub const ADAPTER: Setting = Setting("adapter");
    pub const BACKEND: Setting = Setting("backend");
    pub const BATCH_SIZE: Setting = Setting("batch_size");
    pub const BOOTSTRAP: Setting = Setting("bootstrap");
    pub const DATA: Setting = Setting("data");
    pub const EARLY_STOPPING: Setting = Setting("early_stopping");
    pub const EPOCHS: Setting = Setting("epochs");
    pub const EVAL_DATA: Setting = Setting("eval_data");
    pub const EVAL_EVERY: Setting = Setting("eval_every");
    pub const GROUPS: Setting = Setting("groups");
    pub const HISTORY: Setting = Setting("history");
    pub const HISTORY_CSV: Setting = Setting("history_csv");
    pub const HISTORY_OUT: Setting = Setting("history_out");
    pub const HOLDOUT: Setting = Setting("holdout");
    pub const INIT: Setting = Setting("init");
    pub const INIT_SNAPSHOT: Setting = Setting("init_snapshot");
    pub const INIT_WEIGHTS: Setting = Setting("init_weights");
    pub const KERNEL: Setting = Setting("kernel");
    pub const LAYERS: Setting = Setting("layers");
    pub const LOSS: Setting = Setting("loss");
    pub const LR: Setting = Setting("lr");
    pub const LR_GAMMA: Setting = Setting("lr_gamma");
    pub const LR_MIN: Setting = Setting("lr_min");
    pub const LR_SCHEDULE: Setting = Setting("lr_schedule");
    pub const LR_STEP_SIZE: Setting = Setting("lr_step_size");
    pub const LR_T_MAX: Setting = Setting("lr_t_max");
    pub const LR_WARMUP: Setting = Setting("lr_warmup");
    pub const LR_WARMUP_START: Setting = Setting("lr_warmup_start");
    pub const MOMENTUM: Setting = Setting("momentum");
    pub const NETWORKS: Setting = Setting("networks");
    pub const NETWORKS_SELECT: Setting = Setting("networks_select");
    pub const OPTIMIZER: Setting = Setting("optimizer");
    pub const OUT: Setting = Setting("out");
    pub const OUTPUT_ACTIVATION: Setting = Setting("output_activation");
    pub const PLOT: Setting = Setting("plot");
    pub const REPLICATES: Setting = Setting("replicates");
    pub const RESULTS: Setting = Setting("results");
    pub const RESUME: Setting = Setting("resume");
    pub const SEED: Setting = Setting("seed");
    pub const SHARD: Setting = Setting("shard");
    pub const SNAPSHOT: Setting = Setting("snapshot");
    pub const SNAPSHOTS: Setting = Setting("snapshots");
    pub const SNAPSHOTS_OUT: Setting = Setting("snapshots_out");
    pub const SHARD_COUNT: Setting = Setting("shard_count");
    pub const STOP_AT_TARGET: Setting = Setting("stop_at_target");
    pub const SUBSAMPLE: Setting = Setting("subsample");
    pub const TARGET_LOSS: Setting = Setting("target_loss");
    pub const TARGETS: Setting = Setting("targets");
    pub const TASK: Setting = Setting("task");
    pub const THREADS: Setting = Setting("threads");
    pub const VERIFY: Setting = Setting("verify");
    pub const WEIGHTS: Setting = Setting("weights");

    /// Every constant above.
    pub const ALL: &[Setting] = &[
        ACTIVATION,
        ADAPTER,
        BACKEND,
        BATCH_SIZE,
        BOOTSTRAP,
        DATA,
        EARLY_STOPPING,
        EPOCHS,
        EVAL_DATA,
        EVAL_EVERY,
        GROUPS,
        HISTORY,
        HISTORY_CSV,
        HISTORY_OUT,
        HOLDOUT,
        INIT,
        INIT_SNAPSHOT,
        INIT_WEIGHTS,
        KERNEL,
        LAYERS,
        LOSS,
        LR,
        LR_GAMMA,
        LR_MIN,
        LR_SCHEDULE,
        LR_STEP_SIZE,
        LR_T_MAX,
        LR_WARMUP,
        LR_WARMUP_START,
        MOMENTUM,
        NETWORKS,
        NETWORKS_SELECT,
        OPTIMIZER,
        OUT,
        OUTPUT_ACTIVATION,
        PLOT,
        REPLICATES,
        RESULTS,
        RESUME,
        SEED,
        SHARD,
        SNAPSHOT,
        SNAPSHOTS,
        SNAPSHOTS_OUT,
        SHARD_COUNT,
        STOP_AT_TARGET,
        SUBSAMPLE,
        TARGET_LOSS,
        TARGETS,
        TASK,
        THREADS,
        VERIFY,
        WEIGHTS,
    ];
}

#[cfg(test)]
mod tests {
    use super::settings::*;
    use super::*;

    #[test]
    fn each_face_names_a_setting_in_its_own_words() {
        let message = format!(
            "{} needs {} > 0; {} is {}",
            OPTIMIZER.is("nesterov"),
            MOMENTUM,
            LAYERS.is("2,3,1"),
            OUTPUT_ACTIVATION.is("softmax")
        );
        assert_eq!(
            render(&message),
            "--optimizer nesterov needs --momentum > 0; --layers 2,3,1 is \
             --output-activation softmax"
        );
        assert_eq!(
            with_face(Face::Python, || render(&message)),
            "optimizer='nesterov' needs momentum > 0; layers=[2, 3, 1] is \
             output_activation='softmax'"
        );
        // The face is back to the command line's afterwards.
        assert!(render(&message).starts_with("--optimizer"));
        assert_eq!(render("no settings"), "no settings");
        assert_eq!(
            with_face(Face::Python, || render(&LR.is(0.5).to_string())),
            "lr=0.5"
        );
    }

    #[test]
    fn errors_render_their_settings_for_the_face() {
        let e = crate::Error::Config(format!("{} must be in [0, 1)", MOMENTUM.is(1.5)));
        assert_eq!(e.to_string(), "--momentum 1.5 must be in [0, 1)");
        assert_eq!(
            with_face(Face::Python, || e.to_string()),
            "momentum=1.5 must be in [0, 1)"
        );
    }
}
