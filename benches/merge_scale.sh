#!/usr/bin/env bash
# The merge at scale: K shards of N networks each (default 1,000 x 10,000:
# 10^7 networks, results and weights), merged with the peak resident
# memory and wall time measured, compared byte for byte with the same
# population trained in one process, and set against this disk's write
# speed (dd with fsync of the same number of bytes).
#
# Usage: benches/merge_scale.sh [K] [N] [SCRATCH_DIR]   (needs GNU time)
set -euo pipefail
cd "$(dirname "$0")/.."
shards=${1:-1000}
per=${2:-10000}
scratch=${3:-$(mktemp -d /tmp/gputrain-merge-scale.XXXXXX)}
cargo build --release --quiet
binary=$(pwd)/target/release/gputrain
total=$((shards * per))
run=(--task xor --networks "$total" --epochs 10 --backend simd --quiet)
echo "merge-scale: $shards shards x $per networks = $total networks in $scratch"
seq 0 $((shards - 1)) | xargs -P "$(nproc)" -I{} \
    "$binary" "${run[@]}" --shard "{}/$shards" --out "$scratch/shards/{}" >/dev/null
bytes=$(du -sb "$scratch/shards" | cut -f1)
/usr/bin/time -v "$binary" merge --out "$scratch/merged" "$scratch"/shards/* --quiet \
    2>"$scratch/merge.time"
seconds=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$scratch/merge.time")
rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$scratch/merge.time")
echo "merge-scale: merged $((bytes / 1000000)) MB of shards in $seconds (m:ss), peak resident $((rss / 1024)) MiB"
dd if=/dev/zero of="$scratch/dd" bs=4M count=$((bytes / 4194304 + 1)) conv=fsync 2>&1 | tail -1
rm -f "$scratch/dd"
"$binary" "${run[@]}" --out "$scratch/single" >/dev/null
for file in "$scratch"/single/*; do
    name=$(basename "$file")
    if [ "$name" = summary.json ]; then
        diff <(grep -vE 'wall_seconds|per_second' "$file") \
             <(grep -vE 'wall_seconds|per_second' "$scratch/merged/$name") >/dev/null \
            || { echo "merge-scale: $name differs"; exit 1; }
    else
        cmp "$file" "$scratch/merged/$name" || exit 1
    fi
done
echo "merge-scale: the merged files equal the single run's byte for byte (timing aside)"
rm -rf "$scratch"
