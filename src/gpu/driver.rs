//! The training loop every GPU strategy shares: networks in chunks that fit
//! the adapter, each chunk's epochs in submissions sized by
//! [`EpochChunker`], progress after every submission, and a clean stop when
//! the caller asks for one (the outcomes then say how many epochs ran),
//! and, when asked, the GPU time of the training passes ([`PassTimer`]).

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::gpu::chunking::EpochChunker;
use crate::gpu::device::GpuContext;
use crate::gpu::options::{GpuOptions, submission_timeout};
use crate::gpu::timing::PassTimer;
use crate::recording::HistoryBlock;
use crate::trainer::{Block, Trained};
use crate::training::{NetworkOutcome, Progress, TrainOptions};

/// What a strategy does with one chunk of networks resident on the device.
pub(crate) trait ChunkKernel {
    fn context(&self) -> &GpuContext;
    /// Networks resident at once.
    fn capacity(&self) -> usize;
    /// Most epochs one submission may run: where the kernel loops over
    /// epochs in the shader, the adapter's loop limit divided by the loop
    /// iterations of an epoch.
    fn max_epochs_per_submission(&self) -> u32;
    fn parameter_count(&self) -> usize;
    /// Loads a chunk's parameters, optimizer state (network after network,
    /// each [`crate::vocab::OptimizerConfig::state_slots`] x parameters)
    /// and learning rates, with a resample its row counts (network after
    /// network, [`crate::trainer::Block::rows`]), and resets its status.
    fn upload(&self, params: &[f64], state: &[f64], learning_rates: &[f64], rows: Option<&[u8]>);
    /// Submits `epochs` epochs for the chunk's first `count` networks,
    /// starting at run epoch `epoch_base`, in one compute pass timed by
    /// `timer` if given (the kernel resolves its timestamps); does not wait.
    fn submit_epochs(
        &self,
        count: usize,
        epoch_base: u32,
        epochs: u32,
        options: &TrainOptions,
        timer: Option<&PassTimer>,
    );
    /// Evaluates the final parameters (loss, divergence, the target check at
    /// `final_epoch`) and copies parameters, optimizer state, outcomes and,
    /// when the kernel records one, the history's loop points back.
    fn finish(
        &self,
        params: &mut [f64],
        state: &mut [f64],
        count: usize,
        final_epoch: u32,
        options: &TrainOptions,
    ) -> Result<(Vec<NetworkOutcome>, Option<HistoryBlock>), Error>;
}

/// Trains every network with `kernel`. `params` holds the parameter vectors
/// back to back and receives the trained ones. When `progress` answers
/// `Break`, no further epochs are submitted: the current chunk is evaluated
/// where it stands and later chunks are evaluated untrained, each outcome
/// recording the epochs its network completed.
pub(crate) fn train_chunked(
    kernel: &dyn ChunkKernel,
    block: Block<'_>,
    options: &TrainOptions,
    gpu: &GpuOptions,
    progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
) -> Result<Trained, Error> {
    options.validate()?;
    let Block {
        params,
        state,
        learning_rates,
        rows,
    } = block;
    let p = kernel.parameter_count();
    assert_eq!(
        params.len(),
        p * learning_rates.len(),
        "one parameter vector per learning rate"
    );
    let total = learning_rates.len();
    let per_state = state.len() / total.max(1);
    assert_eq!(
        state.len(),
        per_state * total,
        "optimizer state per network"
    );
    let capacity = kernel.capacity();
    let mut outcomes = Vec::with_capacity(total);
    let mut report = Progress {
        network_epochs_done: 0,
        network_epochs_total: total as u64 * options.epochs,
    };
    let mut chunker = EpochChunker::new(
        gpu.epochs_per_submission,
        gpu.submission_target,
        kernel.max_epochs_per_submission(),
    );
    let timer = if gpu.kernel_timing {
        PassTimer::new(kernel.context())
    } else {
        None
    };
    let mut stopped = false;
    let mut history: Option<HistoryBlock> = None;
    let mut slowest_epoch: Option<Duration> = None;
    for first in (0..total).step_by(capacity.max(1)) {
        let count = capacity.min(total - first);
        let chunk_params = &mut params[first * p..(first + count) * p];
        let chunk_state = &mut state[first * per_state..(first + count) * per_state];
        let rates = &learning_rates[first..first + count];
        let per_rows = rows.map_or(0, |r| r.len() / total.max(1));
        let chunk_rows = rows.map(|r| &r[first * per_rows..(first + count) * per_rows]);
        kernel.upload(chunk_params, chunk_state, rates, chunk_rows);
        let mut done = 0u64;
        while done < options.epochs && !stopped {
            let epochs = chunker.next_chunk(options.epochs - done);
            let started = Instant::now();
            let epoch_base = (options.first_epoch + done) as u32;
            kernel.submit_epochs(count, epoch_base, epochs, options, timer.as_ref());
            // The slowest epoch so far, scaled to this submission's size,
            // bounds the wait: a stuck device ends the run with an error.
            let expected = slowest_epoch.map(|s: Duration| s * epochs);
            let timeout = gpu.device_timeout.unwrap_or(submission_timeout(expected));
            kernel.context().wait_at_most(timeout, expected)?;
            if let Some(timer) = &timer {
                timer.collect(kernel.context())?;
            }
            let elapsed = started.elapsed();
            chunker.record(epochs, elapsed);
            let per_epoch = elapsed / epochs.max(1);
            slowest_epoch = Some(slowest_epoch.map_or(per_epoch, |s| s.max(per_epoch)));
            done += epochs as u64;
            report.network_epochs_done += count as u64 * epochs as u64;
            stopped = progress(&report).is_break();
        }
        let final_epoch = (options.first_epoch + done) as u32;
        let (mut chunk, curves) =
            kernel.finish(chunk_params, chunk_state, count, final_epoch, options)?;
        for outcome in &mut chunk {
            outcome.epochs_completed = done;
        }
        outcomes.extend(chunk);
        match (&mut history, curves) {
            (Some(all), Some(curves)) => all.extend(curves),
            (all, curves) => *all = all.take().or(curves),
        }
    }
    Ok(Trained {
        outcomes,
        kernel_seconds: timer.map(|t| t.seconds()),
        history,
    })
}
