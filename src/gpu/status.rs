//! The status protocol between the kernels and the host, defined once: the
//! Rust constants below, from which [`wgsl_constants`] writes the WGSL
//! declarations every kernel is assembled with. Each network has
//! [`STATUS_WORDS`] words in the status buffer, word `w` of network `n` at
//! `w * stride + n` (stride: the chunk's capacity).

use crate::recording::{HistoryBlock, HistoryPlan};
use crate::training::{NetworkOutcome, TrainOptions};

/// Word: the first epoch whose loss was at or below the target.
pub const STATUS_TARGET: u32 = 0;
/// Word: `STATE_*` bits.
pub const STATUS_STATE: u32 = 1;
/// Word: epochs this network has run in the current chunk (the layered
/// kernels count them; the fused kernel knows its epoch from its loop).
pub const STATUS_EPOCH: u32 = 2;
/// Word: minibatches this network's chunk has run (the layered kernels
/// count them for every network, to know the batch and its epoch).
pub const STATUS_STEP: u32 = 3;
/// Word: history points this network has recorded in the current chunk
/// ([`crate::history`]): points below it are set, the rest are not.
pub const STATUS_RECORDED: u32 = 4;
/// Words per network.
pub const STATUS_WORDS: usize = 5;

/// Target word: no epoch reached the target loss.
pub const NOT_REACHED: u32 = u32::MAX;
/// State bit: the network's loss or a parameter became NaN or infinite.
pub const STATE_DIVERGED: u32 = 1;
/// State bit: the network reached its target and stopped updating.
pub const STATE_STOPPED: u32 = 2;
/// Config flag: a target loss is set.
pub const FLAG_HAS_TARGET: u32 = 1;
/// Config flag: networks stop updating once they reach the target.
pub const FLAG_STOP_AT_TARGET: u32 = 2;

/// The protocol as WGSL `const` declarations.
pub fn wgsl_constants() -> String {
    let u32s = [
        ("STATUS_TARGET", STATUS_TARGET),
        ("STATUS_STATE", STATUS_STATE),
        ("STATUS_EPOCH", STATUS_EPOCH),
        ("STATUS_STEP", STATUS_STEP),
        ("STATUS_RECORDED", STATUS_RECORDED),
        ("NOT_REACHED", NOT_REACHED),
        ("STATE_DIVERGED", STATE_DIVERGED),
        ("STATE_STOPPED", STATE_STOPPED),
        ("FLAG_HAS_TARGET", FLAG_HAS_TARGET),
        ("FLAG_STOP_AT_TARGET", FLAG_STOP_AT_TARGET),
    ];
    let mut out = String::from("// The status protocol, from src/gpu/status.rs.\n");
    for (name, value) in u32s {
        out.push_str(&format!("const {name}: u32 = {value}u;\n"));
    }
    out
}

/// The flags word of a run's options.
pub fn option_flags(options: &TrainOptions) -> u32 {
    let mut flags = 0;
    if options.target_loss.is_some() {
        flags |= FLAG_HAS_TARGET;
    }
    if options.stop_at_target {
        flags |= FLAG_STOP_AT_TARGET;
    }
    flags
}

/// Status words of a freshly uploaded chunk of `capacity` network slots:
/// targets not reached, states and epoch counters zero.
pub fn initial(capacity: usize) -> Vec<u32> {
    let mut status = vec![0; STATUS_WORDS * capacity];
    let target = STATUS_TARGET as usize * capacity;
    status[target..target + capacity].fill(NOT_REACHED);
    status
}

/// Outcomes of the first `count` networks from the status words and the
/// final losses (`epochs_completed` is left for the driver to set).
pub fn outcomes(status: &[u32], stride: usize, loss: &[u32], count: usize) -> Vec<NetworkOutcome> {
    let word = |w: u32, n: usize| status[w as usize * stride + n];
    (0..count)
        .map(|n| NetworkOutcome {
            final_loss: f32::from_bits(loss[n]) as f64,
            target_epoch: (word(STATUS_TARGET, n) != NOT_REACHED).then_some(word(STATUS_TARGET, n)),
            diverged: word(STATUS_STATE, n) & STATE_DIVERGED != 0,
            epochs_completed: 0,
        })
        .collect()
}

/// The history's constants for the kernels: whether a run records
/// (`HISTORY`), every how many epochs, the loop points per series
/// (`HISTORY_POINTS`) and whether the held-out loss is recorded too
/// (`EVAL_HISTORY`). The final-loss buffer holds the final losses, then
/// point q of series s (0: training, 1: held-out) of network n at
/// `(1 + s * HISTORY_POINTS + q) * stride + n`.
pub fn history_constants(plan: Option<&HistoryPlan>) -> String {
    let (on, every, points, eval) = match plan {
        Some(p) => (true, p.every, p.loop_points(), p.eval),
        None => (false, 1, 0, false),
    };
    format!(
        "// The history, from src/gpu/status.rs.\n\
         const HISTORY: bool = {on};\n\
         const HISTORY_EVERY: u32 = {every}u;\n\
         const HISTORY_POINTS: u32 = {points}u;\n\
         const EVAL_HISTORY: bool = {eval};\n"
    )
}

/// Words of a chunk's final-loss buffer: the final losses and the
/// history's loop points ([`history_constants`]).
pub fn loss_words(capacity: usize, plan: Option<&HistoryPlan>) -> u64 {
    let points = plan.map_or(0, |p| p.series() * p.loop_points());
    (1 + points as u64) * capacity as u64
}

/// The recorded curves of the first `count` networks, from the status
/// words and the final-loss buffer's words ([`history_constants`]), not
/// yet completed ([`HistoryBlock::complete`]).
pub fn history(
    status: &[u32],
    stride: usize,
    loss: &[u32],
    count: usize,
    plan: &HistoryPlan,
) -> HistoryBlock {
    let mut block = HistoryBlock::new(plan, count);
    let (points, loop_points) = (block.points, plan.loop_points());
    for n in 0..count {
        let recorded = status[STATUS_RECORDED as usize * stride + n].min(loop_points as u32);
        block.recorded[n] = recorded;
        for q in 0..recorded as usize {
            let at = |s: usize| loss[(1 + s * loop_points + q) * stride + n];
            block.train[n * points + q] = f32::from_bits(at(0)) as f64;
            if plan.eval {
                block.eval[n * points + q] = f32::from_bits(at(1)) as f64;
            }
        }
    }
    block
}

/// Bytes of a chunk's status buffer.
pub fn bytes(capacity: usize) -> u64 {
    4 * (STATUS_WORDS * capacity) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_the_words_initial_writes() {
        let mut status = initial(4);
        assert_eq!(status.len(), 4 * STATUS_WORDS);
        status[2] = 17; // network 2 reached its target at epoch 17
        status[4 + 3] = STATE_DIVERGED;
        let loss: Vec<u32> = [0.5f32, 0.25, 0.125, f32::NAN]
            .iter()
            .map(|v| v.to_bits())
            .collect();
        let out = outcomes(&status, 4, &loss, 4);
        assert_eq!(out[2].target_epoch, Some(17));
        assert_eq!(out[0].target_epoch, None);
        assert!(out[3].diverged && !out[1].diverged);
        assert_eq!(out[1].final_loss, 0.25);
    }

    #[test]
    fn wgsl_constants_carry_the_rust_values() {
        let text = wgsl_constants();
        assert!(
            text.contains("const NOT_REACHED: u32 = 4294967295u;"),
            "{text}"
        );
        assert!(text.contains("const STATUS_EPOCH: u32 = 2u;"), "{text}");
    }
}
