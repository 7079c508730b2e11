// The visiting order of minibatches: the twin of src/batches.rs (its
// comments explain the construction; tests/shuffle.rs checks the two agree
// bit for bit). Reads the constants DATA_SAMPLES, SHUFFLE_HALF_BITS,
// SHUFFLE_SEED_LO and SHUFFLE_SEED_HI that src/batches.rs writes.

// lowbias32.
fn hash32(v: u32) -> u32 {
    var x = v;
    x ^= x >> 16u;
    x *= 0x7feb352du;
    x ^= x >> 15u;
    x *= 0x846ca68bu;
    x ^= x >> 16u;
    return x;
}

// The four Feistel round keys of a run epoch.
fn epoch_keys(epoch: u32) -> vec4<u32> {
    let base = hash32(hash32(hash32(epoch) ^ SHUFFLE_SEED_HI) ^ SHUFFLE_SEED_LO);
    return vec4<u32>(
        hash32(base ^ hash32(0x9e3779b9u)),
        hash32(base ^ hash32(0x9e3779bau)),
        hash32(base ^ hash32(0x9e3779bbu)),
        hash32(base ^ hash32(0x9e3779bcu)),
    );
}

fn feistel_round(x: vec2<u32>, key: u32, mask: u32) -> vec2<u32> {
    return vec2<u32>(x.y, x.x ^ (hash32(x.y ^ key) & mask));
}

// The sample visited at `position` (0..DATA_SAMPLES) in the epoch keyed
// by `keys`.
fn shuffled_sample(position: u32, keys: vec4<u32>) -> u32 {
    let mask = (1u << SHUFFLE_HALF_BITS) - 1u;
    var x = position;
    loop {
        var halves = vec2<u32>(x >> SHUFFLE_HALF_BITS, x & mask);
        halves = feistel_round(halves, keys.x, mask);
        halves = feistel_round(halves, keys.y, mask);
        halves = feistel_round(halves, keys.z, mask);
        halves = feistel_round(halves, keys.w, mask);
        x = (halves.x << SHUFFLE_HALF_BITS) | halves.y;
        if x < DATA_SAMPLES {
            break;
        }
    }
    return x;
}

// The sample at `position` of run epoch `epoch`'s order: shuffled, or the
// data's own order.
fn sample_at(position: u32, keys: vec4<u32>) -> u32 {
    if SHUFFLE {
        return shuffled_sample(position, keys);
    }
    return position;
}
