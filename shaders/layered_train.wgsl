// The layered trainer: one dispatch per operation, each covering every
// network of the chunk (the network is workgroup_id.z for the matrix
// products and workgroup_id.x for the per-network reductions). One epoch:
//
//   forward(l), l = 0..L-1       acts[l+1] = f(acts[l] W_l^T + b_l); for the
//                                output layer the net inputs z also go to
//                                deltas[L] (the cross-entropy reads them)
//   output_rows                  with a row form (softmax, OUTPUT_ROWS):
//                                each row's z becomes z - lse(z), its acts
//                                f of that
//   output_delta                 deltas[L] = loss_delta(yhat, y, f'(yhat));
//                                the loss; target and divergence tracking
//   backward(l), l = L-1..1      deltas[l] = (deltas[l+1] W_l) f'(z, a),
//                                a = acts[l], with the weights before the step;
//                                z, where the derivative reads it
//                                (HIDDEN_NEEDS_NET), the net input forward
//                                left in deltas[l]
//   weight_update(l)             W_l = optimizer_step(W_l, deltas[l+1]^T acts[l])
//   bias_update(l)               b_l = optimizer_step(b_l, sum of deltas[l+1])
//                                (with the parameter's optimizer state)
//
// The math is the vocabulary's (vocabulary.wgsl, bound for the run to
// hidden_activation, output_activation, loss_value, loss_delta and
// optimizer_step from the table in src/vocab.rs). Activations and their
// derivatives are applied where the matrix products store their results,
// so no activation is written and read back just to pass through an
// element-wise kernel. With MEAN, the loss and the gradient are divided by
// the op's rows (every sample, or the minibatch's), as in the fused
// kernel.
//
// Minibatches (BATCHED): each batch runs forward, output_delta, backward
// and the updates over its rows, which map to data rows through the
// epoch's order (data_row), then advance; with a target, and at the
// history's epochs, an epoch starts with forward over every sample and
// epoch_loss.
//
// History (HISTORY, src/gpu/status.rs): every HISTORY_EVERY-th epoch's
// loss goes to final_loss beyond the final losses (record_history); with
// EVAL_HISTORY such an epoch first runs forward over the held-out rows
// (their inputs after the training data's in layer 0, their targets after
// its targets) and eval_loss.
//
// ROW_STRIDE (the training samples, or the held-out ones if more) is the
// per-network row stride of the activations and deltas.
//
// Every operation comes in two variants with the same arithmetic: tiled
// (matrix products through workgroup-memory tiles, sums as workgroup
// reductions) and direct (no workgroup memory, no barriers); see below.
//
// Constants prepended by src/gpu/layered.rs: TILE, REDUCE_SIZE,
// DIRECT_SIZE, MEAN, BATCHED, BIAS_MODE (BIAS_NONE, BIAS_SHARED or
// BIAS_PER_NEURON), RESAMPLED and ROWS_BASE (each network's own resample
// of the training rows, src/resample.rs: a training row's loss and delta
// times its weight, row_weight); and by src/gpu/status.rs the status
// protocol.
//
// Layout, every buffer network-major (S samples, n_l neurons in layer l):
//   (an op covers rows s < op.samples: every sample, or a minibatch's)
//   acts[act_base(l) + n * S * n_l + s * n_l + j]; layer 0 holds the data's
//     inputs once for all networks (network stride 0);
//   deltas[delta_base(l) + n * S * n_l + s * n_l + j] for layers 1..L;
//   params[n * P + flat layout of src/model.rs] (W row-major, then biases);
//   opt_state[k * capacity * P + n * P + i]: state slot k of parameter i;
//   targets[s * n_L + j], and with a resample the training row weights of
//     the chunk's networks from ROWS_BASE: targets[ROWS_BASE + n * S + s].

// Rust twin: LayerOp in src/gpu/layered.rs (tests/shader_interface.rs
// checks them field by field).
struct LayerOp {
    samples: u32,
    fan_in: u32,
    fan_out: u32,
    // acts offset and per-network stride of layer l (the stride is 0 for
    // the shared inputs), acts offset of layer l + 1
    in_base: u32,
    in_network_stride: u32,
    out_base: u32,
    // deltas offsets of layers l and l + 1
    delta_in_base: u32,
    delta_out_base: u32,
    param_stride: u32,
    weight_offset: u32,
    bias_offset: u32,
    status_stride: u32,
    // evaluate: the epoch the final parameters stand at
    final_epoch: u32,
    target_loss: f32,
    flags: u32,
    network_count: u32,
    // 1 for the output layer
    output_layer: u32,
    // The run epoch the chunk's epoch counters start from.
    epoch_base: u32,
    // 1: the op's rows are the current minibatch's, whose data rows come
    // from the epoch's order (src/batches.rs); 0: rows are data rows.
    mapped: u32,
    // Where the op's rows' targets start in `targets`: 0, or after the
    // training data's for the held-out rows.
    target_base: u32,
    // The run epoch of the submission's first epoch: with a schedule,
    // epoch e's (scale, shift) pair is at learning_rates[status_stride +
    // 2 (e - rates_base)], after the networks' rates.
    rates_base: u32,
}

const BIAS_NONE: u32 = 0u;
const BIAS_SHARED: u32 = 1u;
const BIAS_PER_NEURON: u32 = 2u;

@group(0) @binding(0) var<uniform> op: LayerOp;
@group(0) @binding(1) var<storage, read_write> acts: array<f32>;
@group(0) @binding(2) var<storage, read_write> deltas: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<f32>;
@group(0) @binding(4) var<storage, read> targets: array<f32>;
@group(0) @binding(5) var<storage, read> learning_rates: array<f32>;
// The status words of src/gpu/status.rs: word w of network n at
// [w * status_stride + n].
@group(0) @binding(6) var<storage, read_write> status: array<u32>;
@group(0) @binding(7) var<storage, read_write> final_loss: array<f32>;
@group(0) @binding(8) var<storage, read_write> opt_state: array<f32>;

// Operand tiles of the matrix products: tile_a[row][depth], tile_b[depth][col].
var<workgroup> tile_a: array<array<f32, TILE>, TILE>;
var<workgroup> tile_b: array<array<f32, TILE>, TILE>;
var<workgroup> partial: array<f32, REDUCE_SIZE>;

// The dot product of row `row` of tile_a with column `col` of tile_b.
// Callers add it to their running sum, so long sums (over 10,000 samples)
// grow by blocks of TILE terms rather than one term at a time.
fn tile_dot(row: u32, col: u32) -> f32 {
    var sum = 0.0;
    for (var i = 0u; i < TILE; i++) {
        sum = fma(tile_a[row][i], tile_b[i][col], sum);
    }
    return sum;
}

// Long sums run as two nested loops: an inner one adding SUM_BLOCK terms
// into a block sum, an outer one adding the block sums. Two reasons: in
// float32, adding each small term to a large running total rounds much of
// it away (a shared bias sums samples x neurons deltas, millions of them);
// and one llvmpipe invocation silently stops looping after about 65,535
// iterations (measured: a shared-bias sum over 256,000 deltas in one
// invocation kept only the first ~68,000), so each invocation's share of
// a sum must stay below that (LayeredPlan bounds samples and sums).
const SUM_BLOCK: u32 = 256u;

// Sum of `value` over the workgroup, the same (uniform) in every invocation.
fn workgroup_sum(lid: u32, value: f32) -> f32 {
    partial[lid] = value;
    workgroupBarrier();
    for (var half = REDUCE_SIZE / 2u; half > 0u; half >>= 1u) {
        if lid < half {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    let total = workgroupUniformLoad(&partial[0]);
    workgroupBarrier();
    return total;
}

fn status_word(word: u32, n: u32) -> u32 {
    return word * op.status_stride + n;
}

// The data row of row `row` of the current op for network n: in a
// minibatch op, the sample at the batch's position in its epoch's order
// (the network's batch counter says which batch of which epoch).
fn data_row(n: u32, row: u32) -> u32 {
    if op.mapped == 0u {
        return row;
    }
    let step = status[status_word(STATUS_STEP, n)];
    let epoch = op.epoch_base + step / BATCHES;
    return sample_at((step % BATCHES) * BATCH_SIZE + row, epoch_keys(epoch));
}

// The row of the op's input activations: the data's inputs (layer 0, shared
// by all networks: network stride 0) are read in the batch's order.
fn input_row(n: u32, row: u32) -> u32 {
    if op.in_network_stride == 0u {
        return data_row(n, row);
    }
    return row;
}

fn is_active(n: u32) -> bool {
    return status[status_word(STATUS_STATE, n)] == 0u;
}

fn reached_target(loss: f32) -> bool {
    return (op.flags & FLAG_HAS_TARGET) != 0u && loss <= op.target_loss;
}

fn bias(n: u32, j: u32) -> f32 {
    let base = n * op.param_stride + op.bias_offset;
    if BIAS_MODE == BIAS_PER_NEURON {
        return params[base + j];
    }
    if BIAS_MODE == BIAS_SHARED {
        return params[base];
    }
    return 0.0;
}

// The matrix products' stores, shared by the tiled and direct variants.
// The output layer's net inputs wait in its deltas for output_delta.
fn store_activation(n: u32, s: u32, j: u32, sum: f32) {
    let element = n * ROW_STRIDE * op.fan_out + s * op.fan_out + j;
    let net = sum + bias(n, j);
    if op.output_layer != 0u {
        deltas[op.delta_out_base + element] = net;
        // A row form's outputs come from output_rows, after the whole row.
        if !OUTPUT_ROWS {
            acts[op.out_base + element] = output_activation(net);
        }
    } else {
        if HIDDEN_NEEDS_NET {
            deltas[op.delta_out_base + element] = net;
        }
        acts[op.out_base + element] = hidden_activation(net);
    }
}

// The hidden delta replaces the net input forward left in its slot (when
// the derivative reads it: HIDDEN_NEEDS_NET).
fn store_hidden_delta(n: u32, s: u32, k: u32, back: f32) {
    let a = acts[op.in_base + n * op.in_network_stride + s * op.fan_in + k];
    let lower = op.delta_in_base + n * ROW_STRIDE * op.fan_in + s * op.fan_in + k;
    var z = 0.0;
    if HIDDEN_NEEDS_NET {
        z = deltas[lower];
    }
    deltas[lower] = back * hidden_derivative(z, a);
}

// One parameter's update with its optimizer state: parameter `i` of
// network n's flat layout, `gradient` the sum over the op's rows
// (grad_scale applies the mean). Full batch: output_delta has already counted this
// epoch, so the epoch counter is the update's number within the chunk.
fn update_parameter(n: u32, i: u32, gradient: f32) {
    let at = n * op.param_stride + i;
    let slot = op.status_stride * op.param_stride;
    var s = vec3<f32>(0.0, 0.0, 0.0);
    if OPTIMIZER_SLOTS > 0u {
        s.x = opt_state[at];
    }
    if OPTIMIZER_SLOTS > 1u {
        s.y = opt_state[slot + at];
    }
    if OPTIMIZER_SLOTS > 2u {
        s.z = opt_state[2u * slot + at];
    }
    let counted = status[status_word(STATUS_EPOCH, n)];
    var t = f32(op.epoch_base + counted);
    var epoch = op.epoch_base + counted - 1u;
    if BATCHED {
        // Update number epoch_base * BATCHES + batches run + 1.
        let steps = status[status_word(STATUS_STEP, n)];
        t = f32(op.epoch_base) * f32(BATCHES) + f32(steps + 1u);
        epoch = op.epoch_base + steps / BATCHES;
    }
    var lr = learning_rates[n];
    if SCHEDULED {
        // The schedule's float32 pair of the epoch (src/schedule.rs).
        let at = op.status_stride + 2u * (epoch - op.rates_base);
        lr = scheduled_rate(lr, learning_rates[at], learning_rates[at + 1u]);
    }
    let k = optimizer_scalars(lr, t);
    params[at] = optimizer_step(params[at], gradient * grad_scale(), &s, k);
    if OPTIMIZER_SLOTS > 0u {
        opt_state[at] = s.x;
    }
    if OPTIMIZER_SLOTS > 1u {
        opt_state[slot + at] = s.y;
    }
    if OPTIMIZER_SLOTS > 2u {
        opt_state[2u * slot + at] = s.z;
    }
}

fn update_weight(n: u32, j: u32, k: u32, gradient: f32) {
    if is_active(n) {
        update_parameter(n, op.weight_offset + j * op.fan_in + k, gradient);
    }
}

// The weight of row `row` of the op for network n: with a resample, its
// training row's count x rows / drawn rows; 1 for the held-out rows and
// without a resample.
fn row_weight(n: u32, row: u32) -> f32 {
    if !RESAMPLED || op.target_base != 0u {
        return 1.0;
    }
    return targets[ROWS_BASE + n * DATA_SAMPLES + data_row(n, row)];
}

// The loss of output element e (sample-major) of network n, from the net
// input forward left in its delta slot, times its row's weight.
fn output_loss(n: u32, e: u32) -> f32 {
    let stride = ROW_STRIDE * op.fan_out;
    let z = deltas[op.delta_out_base + n * stride + e];
    let loss = loss_value(z, acts[op.out_base + n * stride + e], target_value(n, e));
    if RESAMPLED {
        return row_weight(n, e / op.fan_out) * loss;
    }
    return loss;
}

// The target of output element e (row-major) of the op's rows.
fn target_value(n: u32, e: u32) -> f32 {
    return targets[op.target_base + data_row(n, e / op.fan_out) * op.fan_out + e % op.fan_out];
}

// The factor of the op's summed gradients and losses: 1, or for the mean
// 1 / the op's rows (a minibatch's size, or every sample).
fn grad_scale() -> f32 {
    return select(1.0, 1.0 / f32(op.samples), MEAN);
}

// The same, then the element's delta replaces its net input.
fn output_error(n: u32, e: u32) -> f32 {
    let stride = ROW_STRIDE * op.fan_out;
    let yhat = acts[op.out_base + n * stride + e];
    let z = deltas[op.delta_out_base + n * stride + e];
    let loss = output_loss(n, e);
    var delta = loss_delta(yhat, target_value(n, e), output_derivative(z, yhat));
    if RESAMPLED {
        delta *= row_weight(n, e / op.fan_out);
    }
    deltas[op.delta_out_base + n * stride + e] = delta;
    return loss;
}

// Series `series` (0: training, 1: held-out) of network n's history at
// run epoch `epoch`, when that is a point of it; the training series also
// counts the network's recorded points.
fn record_history(n: u32, epoch: u32, series: u32, loss: f32) {
    if HISTORY && is_active(n) && epoch % HISTORY_EVERY == 0u {
        let q = epoch / HISTORY_EVERY;
        final_loss[(1u + series * HISTORY_POINTS + q) * op.status_stride + n] = loss;
        if series == 0u {
            status[status_word(STATUS_RECORDED, n)] = q + 1u;
        }
    }
}

// The run epoch network n is at: from its batch counter with minibatches,
// else from its epoch counter.
fn current_epoch(n: u32) -> u32 {
    if BATCHED {
        return op.epoch_base + status[status_word(STATUS_STEP, n)] / BATCHES;
    }
    return op.epoch_base + status[status_word(STATUS_EPOCH, n)];
}

// One epoch's bookkeeping for network n from the loss of its current
// parameters: divergence, the target epoch, stopping at the target.
fn record_epoch_loss(n: u32, loss: f32) {
    if !is_active(n) {
        return;
    }
    let epoch_index = status_word(STATUS_EPOCH, n);
    let target_index = status_word(STATUS_TARGET, n);
    let epoch = status[epoch_index];
    if !BATCHED {
        record_history(n, op.epoch_base + epoch, 0u, loss);
    }
    var state = 0u;
    if !is_finite(loss) {
        state = STATE_DIVERGED;
    } else {
        if status[target_index] == NOT_REACHED && reached_target(loss) {
            status[target_index] = op.epoch_base + epoch;
        }
        if (op.flags & FLAG_STOP_AT_TARGET) != 0u && status[target_index] != NOT_REACHED {
            state = STATE_STOPPED;
        }
    }
    status[status_word(STATUS_STATE, n)] = state;
    status[epoch_index] = epoch + 1u;
}

// A minibatch's loss: a non-finite one marks the network diverged (the
// target is checked against the full-data loss, in epoch_loss).
fn record_batch_loss(n: u32, loss: f32) {
    if is_active(n) && !is_finite(loss) {
        status[status_word(STATUS_STATE, n)] = STATE_DIVERGED;
    }
}

// The final loss; divergence if it or any parameter (`non_finite` of
// them) is not finite; the target check at the final epoch.
fn record_final_loss(n: u32, loss: f32, non_finite: f32) {
    let target_index = status_word(STATUS_TARGET, n);
    var state = status[status_word(STATUS_STATE, n)];
    if non_finite > 0.0 || !is_finite(loss) {
        state |= STATE_DIVERGED;
    }
    if (state & STATE_DIVERGED) == 0u && status[target_index] == NOT_REACHED && reached_target(loss) {
        status[target_index] = op.final_epoch;
    }
    status[status_word(STATUS_STATE, n)] = state;
    final_loss[n] = loss;
}

fn count_non_finite(n: u32, lane: u32, step: u32) -> f32 {
    var count = 0.0;
    for (var first = lane; first < op.param_stride; first += SUM_BLOCK * step) {
        for (var i = first; i < min(first + SUM_BLOCK * step, op.param_stride); i += step) {
            if !is_finite(params[n * op.param_stride + i]) {
                count += 1.0;
            }
        }
    }
    return count;
}

// ---- Tiled variant: 16 x 16 output tiles through workgroup memory, and
// ---- workgroup reductions (one workgroup per network) for the sums.

// acts[l+1][s][j] = f(sum_k acts[l][s][k] W[j][k] + b[j]).
// Tile rows are samples, columns neurons of layer l + 1.
@compute @workgroup_size(TILE, TILE)
fn forward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = wg.z;
    let row = wg.y * TILE + lid.y;
    let col = wg.x * TILE + lid.x;
    let inputs = op.in_base + n * op.in_network_stride;
    let weights = n * op.param_stride + op.weight_offset;
    // The neuron whose weight row this invocation loads (k runs along x,
    // so neighbouring invocations read neighbouring words).
    let loaded_neuron = wg.x * TILE + lid.y;
    var acc = 0.0;
    for (var d0 = 0u; d0 < op.fan_in; d0 += TILE) {
        let k = d0 + lid.x;
        var a = 0.0;
        if row < op.samples && k < op.fan_in {
            a = acts[inputs + input_row(n, row) * op.fan_in + k];
        }
        var w = 0.0;
        if loaded_neuron < op.fan_out && k < op.fan_in {
            w = params[weights + loaded_neuron * op.fan_in + k];
        }
        tile_a[lid.y][lid.x] = a;
        tile_b[lid.x][lid.y] = w;
        workgroupBarrier();
        acc += tile_dot(lid.y, lid.x);
        workgroupBarrier();
    }
    if row < op.samples && col < op.fan_out {
        store_activation(n, row, col, acc);
    }
}

// Output layer: deltas and the loss of the current parameters, then (one
// invocation) the epoch's bookkeeping: divergence, target epoch, stop.
@compute @workgroup_size(REDUCE_SIZE)
fn output_delta(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    var sum = 0.0;
    for (var first = lid; first < op.samples * op.fan_out; first += SUM_BLOCK * REDUCE_SIZE) {
        var block = 0.0;
        for (var e = first; e < min(first + SUM_BLOCK * REDUCE_SIZE, op.samples * op.fan_out); e += REDUCE_SIZE) {
            block += output_error(n, e);
        }
        sum += block;
    }
    let loss = workgroup_sum(lid, sum) * grad_scale();
    if lid == 0u {
        if BATCHED {
            record_batch_loss(n, loss);
        } else {
            record_epoch_loss(n, loss);
        }
    }
}

// Minibatches: the full-data loss of the parameters the last epoch ended
// with (forward has run over every sample), for the history and the
// target. The epoch comes from the network's batch counter.
@compute @workgroup_size(REDUCE_SIZE)
fn epoch_loss(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    let loss = workgroup_sum(lid, output_loss_sum(n, lid)) * grad_scale();
    if lid == 0u {
        record_history(n, current_epoch(n), 0u, loss);
        // Without a target the history only observes.
        if (op.flags & FLAG_HAS_TARGET) != 0u {
            record_epoch_loss(n, loss);
        }
    }
}

// The held-out loss (forward has run over the held-out rows, and MEAN
// divides by their count): series 1 of the history at the network's
// epoch. Nothing else changes.
@compute @workgroup_size(REDUCE_SIZE)
fn eval_loss(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    let loss = workgroup_sum(lid, output_loss_sum(n, lid)) * grad_scale();
    if lid == 0u {
        record_history(n, current_epoch(n), 1u, loss);
    }
}

// Minibatches: every network moves on to its next batch.
@compute @workgroup_size(DIRECT_SIZE)
fn advance(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < op.network_count {
        status[status_word(STATUS_STEP, gid.x)] += 1u;
    }
}

// deltas[l][s][k] = (sum_j deltas[l+1][s][j] W[j][k]) * a (1 - a).
// Tile rows are samples, columns neurons k of layer l.
@compute @workgroup_size(TILE, TILE)
fn backward(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = wg.z;
    let row = wg.y * TILE + lid.y;
    let col = wg.x * TILE + lid.x;
    let upper = op.delta_out_base + n * ROW_STRIDE * op.fan_out;
    let weights = n * op.param_stride + op.weight_offset;
    var acc = 0.0;
    for (var d0 = 0u; d0 < op.fan_out; d0 += TILE) {
        let j_a = d0 + lid.x;
        var d = 0.0;
        if row < op.samples && j_a < op.fan_out {
            d = deltas[upper + row * op.fan_out + j_a];
        }
        let j_b = d0 + lid.y;
        var w = 0.0;
        if j_b < op.fan_out && col < op.fan_in {
            w = params[weights + j_b * op.fan_in + col];
        }
        tile_a[lid.y][lid.x] = d;
        tile_b[lid.y][lid.x] = w;
        workgroupBarrier();
        acc += tile_dot(lid.y, lid.x);
        workgroupBarrier();
    }
    if row < op.samples && col < op.fan_in {
        store_hidden_delta(n, row, col, acc);
    }
}

// W[j][k] -= step * sum_s deltas[l+1][s][j] acts[l][s][k], for networks
// still training. Tile rows are neurons j of layer l + 1, columns inputs k.
@compute @workgroup_size(TILE, TILE)
fn weight_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
    let n = wg.z;
    let row = wg.y * TILE + lid.y;
    let col = wg.x * TILE + lid.x;
    let upper = op.delta_out_base + n * ROW_STRIDE * op.fan_out;
    let inputs = op.in_base + n * op.in_network_stride;
    // The neuron whose delta this invocation loads (j runs along x).
    let loaded_neuron = wg.y * TILE + lid.x;
    var acc = 0.0;
    for (var s0 = 0u; s0 < op.samples; s0 += TILE) {
        let s = s0 + lid.y;
        var d = 0.0;
        if s < op.samples && loaded_neuron < op.fan_out {
            d = deltas[upper + s * op.fan_out + loaded_neuron];
        }
        var a = 0.0;
        if s < op.samples && col < op.fan_in {
            a = acts[inputs + input_row(n, s) * op.fan_in + col];
        }
        tile_a[lid.x][lid.y] = d;
        tile_b[lid.y][lid.x] = a;
        workgroupBarrier();
        acc += tile_dot(lid.y, lid.x);
        workgroupBarrier();
    }
    if row < op.fan_out && col < op.fan_in {
        update_weight(n, row, col, acc);
    }
}

// Bias gradients: per neuron, the sum over samples of its deltas; shared,
// the sum over samples and the layer's neurons. Then the step.
@compute @workgroup_size(REDUCE_SIZE)
fn bias_update(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    let upper = op.delta_out_base + n * ROW_STRIDE * op.fan_out;
    let training = is_active(n);
    if BIAS_MODE == BIAS_SHARED {
        var sum = 0.0;
        for (var first = lid; first < op.samples * op.fan_out; first += SUM_BLOCK * REDUCE_SIZE) {
            var block = 0.0;
            for (var e = first; e < min(first + SUM_BLOCK * REDUCE_SIZE, op.samples * op.fan_out); e += REDUCE_SIZE) {
                block += deltas[upper + e];
            }
            sum += block;
        }
        let total = workgroup_sum(lid, sum);
        if lid == 0u && training {
            update_parameter(n, op.bias_offset, total);
        }
        return;
    }
    // Per neuron: `columns` neurons at a time, `lanes` invocations summing
    // interleaved samples of each, then one invocation per neuron adds the
    // lanes' partial sums.
    let columns = min(op.fan_out, REDUCE_SIZE);
    let lanes = REDUCE_SIZE / columns;
    let column = lid % columns;
    let lane = lid / columns;
    for (var j0 = 0u; j0 < op.fan_out; j0 += columns) {
        let j = j0 + column;
        var sum = 0.0;
        if lane < lanes && j < op.fan_out {
            for (var first = lane; first < op.samples; first += SUM_BLOCK * lanes) {
                var block = 0.0;
                for (var s = first; s < min(first + SUM_BLOCK * lanes, op.samples); s += lanes) {
                    block += deltas[upper + s * op.fan_out + j];
                }
                sum += block;
            }
        }
        partial[lid] = sum;
        workgroupBarrier();
        if lid < columns && j < op.fan_out {
            var total = 0.0;
            for (var q = 0u; q < lanes; q++) {
                total += partial[q * columns + lid];
            }
            if training {
                update_parameter(n, op.bias_offset + j, total);
            }
        }
        workgroupBarrier();
    }
}

// This invocation's share of the loss over the op's rows.
fn output_loss_sum(n: u32, lid: u32) -> f32 {
    var sum = 0.0;
    for (var first = lid; first < op.samples * op.fan_out; first += SUM_BLOCK * REDUCE_SIZE) {
        var block = 0.0;
        for (var e = first; e < min(first + SUM_BLOCK * REDUCE_SIZE, op.samples * op.fan_out); e += REDUCE_SIZE) {
            block += output_loss(n, e);
        }
        sum += block;
    }
    return sum;
}

// Loss of the final parameters and the final bookkeeping.
@compute @workgroup_size(REDUCE_SIZE)
fn evaluate(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let n = wg.x;
    let loss = workgroup_sum(lid, output_loss_sum(n, lid)) * grad_scale();
    let bad = workgroup_sum(lid, count_non_finite(n, lid, REDUCE_SIZE));
    if lid == 0u {
        record_final_loss(n, loss, bad);
    }
}

// The row form of the output activation (OUTPUT_ROWS, softmax), after
// forward of the output layer, one invocation per (network, row): the row's
// net inputs z (in its deltas) become l = z - lse(z), lse formed with the
// row's maximum subtracted, and its outputs output_activation(l). A NaN
// net makes the sum, and so the row, NaN; an infinite one inf - inf.
@compute @workgroup_size(DIRECT_SIZE)
fn output_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let flat = element(gid, groups);
    if !OUTPUT_ROWS || flat >= op.network_count * op.samples {
        return;
    }
    let n = flat / op.samples;
    let s = flat % op.samples;
    let row = n * ROW_STRIDE * op.fan_out + s * op.fan_out;
    let nets = op.delta_out_base + row;
    var largest = deltas[nets];
    for (var j = 1u; j < op.fan_out; j++) {
        largest = max(largest, deltas[nets + j]);
    }
    var sum = 0.0;
    for (var j = 0u; j < op.fan_out; j++) {
        sum += exp(deltas[nets + j] - largest);
    }
    let lse = largest + log(sum);
    for (var j = 0u; j < op.fan_out; j++) {
        let l = deltas[nets + j] - lse;
        deltas[nets + j] = l;
        acts[op.out_base + row + j] = output_activation(l);
    }
}

// ---- Direct variant of the matrix products: one invocation per output
// ---- element reading operands straight from memory, with no barriers.
// ---- Chosen for CPU adapters, where every barrier costs a context switch
// ---- (see src/gpu/layered.rs); the sums stay workgroup reductions, since
// ---- one invocation summing millions of terms is what llvmpipe cuts off.
// ---- Elements of all networks are numbered network after network over a
// ---- 2-D grid, so small networks share workgroups instead of leaving them
// ---- mostly idle.

fn element(gid: vec3<u32>, groups: vec3<u32>) -> u32 {
    return gid.y * groups.x * DIRECT_SIZE + gid.x;
}

@compute @workgroup_size(DIRECT_SIZE)
fn forward_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let per_network = op.samples * op.fan_out;
    let flat = element(gid, groups);
    if flat >= op.network_count * per_network {
        return;
    }
    let n = flat / per_network;
    let e = flat % per_network;
    let s = e / op.fan_out;
    let j = e % op.fan_out;
    let inputs = op.in_base + n * op.in_network_stride + input_row(n, s) * op.fan_in;
    let weights = n * op.param_stride + op.weight_offset + j * op.fan_in;
    var acc = 0.0;
    for (var k = 0u; k < op.fan_in; k++) {
        acc = fma(acts[inputs + k], params[weights + k], acc);
    }
    store_activation(n, s, j, acc);
}

@compute @workgroup_size(DIRECT_SIZE)
fn backward_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let per_network = op.samples * op.fan_in;
    let flat = element(gid, groups);
    if flat >= op.network_count * per_network {
        return;
    }
    let n = flat / per_network;
    let e = flat % per_network;
    let s = e / op.fan_in;
    let k = e % op.fan_in;
    let upper = op.delta_out_base + n * ROW_STRIDE * op.fan_out + s * op.fan_out;
    let weights = n * op.param_stride + op.weight_offset + k;
    var acc = 0.0;
    for (var j = 0u; j < op.fan_out; j++) {
        acc = fma(deltas[upper + j], params[weights + j * op.fan_in], acc);
    }
    store_hidden_delta(n, s, k, acc);
}

@compute @workgroup_size(DIRECT_SIZE)
fn weight_update_direct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
    let per_network = op.fan_out * op.fan_in;
    let flat = element(gid, groups);
    if flat >= op.network_count * per_network {
        return;
    }
    let n = flat / per_network;
    let e = flat % per_network;
    let j = e / op.fan_in;
    let k = e % op.fan_in;
    let upper = op.delta_out_base + n * ROW_STRIDE * op.fan_out + j;
    let inputs = op.in_base + n * op.in_network_stride + k;
    var acc = 0.0;
    for (var first = 0u; first < op.samples; first += SUM_BLOCK) {
        var block = 0.0;
        for (var s = first; s < min(first + SUM_BLOCK, op.samples); s++) {
            block += deltas[upper + s * op.fan_out] * acts[inputs + input_row(n, s) * op.fan_in];
        }
        acc += block;
    }
    update_weight(n, j, k, acc);
}

