#!/usr/bin/env bash
# A real scheduler, tested: starts a one-node Slurm cluster on this machine
# (Debian's slurmctld, slurmd, slurm-client and munge), submits a sharded
# sweep as a 4-task job array (sbatch --array=0-3, each task --shard auto),
# waits for it, merges the shards, and compares the merged files with the
# same sweep run in one process, byte for byte (the summary's timing
# fields aside). Stops the daemons it started, by their pid files.
#
# Usage: tests/slurm/run.sh [GPUTRAIN_BINARY]   (as root, or with sudo)
# Default binary: target/debug/gputrain (built if missing).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

binary=${1:-$root/target/debug/gputrain}
[ -x "$binary" ] || cargo build --quiet
binary=$(realpath "$binary")

if ! command -v sbatch >/dev/null || ! command -v slurmctld >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
fi

work=$(mktemp -d /tmp/gputrain-slurm.XXXXXX)
chmod 755 "$work"
node=$(hostname -s)
cpus=$(nproc)
conf=$work/slurm.conf
cat >"$conf" <<EOF
ClusterName=gputrain-ci
SlurmctldHost=$node
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
JobCompType=jobcomp/none
NodeName=$node CPUs=$cpus State=UNKNOWN
PartitionName=ci Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
mkdir -p "$work/state" "$work/spool" "$work/out"
export SLURM_CONF=$conf

status=1
# On exit: stop the daemons this script started (their pid files are in
# $work), then remove $work if the test passed.
stop() {
    local pids=()
    for file in "$work/slurmd.pid" "$work/slurmctld.pid" "$work/munge/munged.pid"; do
        if [ -s "$file" ]; then pids+=("$(cat "$file")"); fi
    done
    if [ "${#pids[@]}" -gt 0 ]; then
        as_root kill "${pids[@]}" 2>/dev/null || true
        # slurmctld takes a moment to stop; wait for all of them.
        for _ in $(seq 30); do
            local alive=no
            for pid in "${pids[@]}"; do
                if as_root kill -0 "$pid" 2>/dev/null; then alive=yes; fi
            done
            [ "$alive" = yes ] || break
            sleep 0.5
        done
    fi
    if [ "$status" -eq 0 ]; then
        as_root rm -rf "$work"
    else
        echo "slurm: logs and outputs kept in $work"
    fi
}
trap stop EXIT

# munged first: the daemons authenticate through it.
as_root mkdir -p /run/munge /var/log/munge /var/lib/munge /etc/munge
[ -s /etc/munge/munge.key ] || as_root mungekey --create --keyfile /etc/munge/munge.key
as_root chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge 2>/dev/null || true
as_root chmod 0400 /etc/munge/munge.key
mkdir -p "$work/munge"
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    echo "slurm: using the munged already running"
elif id munge >/dev/null 2>&1; then
    as_root chown munge:munge "$work/munge"
    as_root runuser -u munge -- munged --pid-file="$work/munge/munged.pid"
else
    as_root munged --force --pid-file="$work/munge/munged.pid"
fi
as_root env SLURM_CONF="$conf" slurmctld -f "$conf"
as_root env SLURM_CONF="$conf" slurmd -f "$conf"

# Wait for the node to come up (install and start take about two minutes
# on a 2-core machine; the daemons a few seconds).
up=no
for _ in $(seq 90); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then up=yes; break; fi
    sleep 1
done
sinfo || true
if [ "$up" != yes ]; then
    echo "FAIL: the Slurm node did not come up in 90 s; logs:"
    tail -n 30 "$work"/slurmctld.log "$work"/slurmd.log || true
    exit 1
fi

# The sweep: 3 learning rates x 2 init scales x 40 replicates of XOR,
# small enough for CI on the SIMD trainer.
sweep=(--task xor --lr 0.5,2,8 --init uniform:0.5,1 --replicates 40 --epochs 600
       --target-loss 0.05 --history 100 --backend simd --threads 1 --quiet)

cat >"$work/job.sh" <<EOF
#!/usr/bin/env bash
set -euo pipefail
exec "$binary" ${sweep[*]} --shard auto --out "$work/out/shard-\$SLURM_ARRAY_TASK_ID"
EOF
chmod +x "$work/job.sh"
if ! timeout 900 sbatch --wait --array=0-3 --output="$work/out/task-%a.log" \
        --chdir="$work" "$work/job.sh"; then
    echo "FAIL: the job array did not complete; logs:"
    tail -n 30 "$work"/out/task-*.log "$work"/slurmctld.log "$work"/slurmd.log || true
    exit 1
fi
cat "$work"/out/task-*.log

"$binary" merge --out "$work/merged" "$work"/out/shard-* --quiet
"$binary" "${sweep[@]}" --out "$work/single" >/dev/null

status=0
for file in "$work"/single/*; do
    name=$(basename "$file")
    if [ "$name" = summary.json ]; then
        # Timing differs from run to run; every other line must not.
        if ! diff <(grep -vE '"(wall_seconds|network_epochs_per_second)"' "$file") \
                  <(grep -vE '"(wall_seconds|network_epochs_per_second)"' "$work/merged/$name"); then
            echo "FAIL: $name differs beyond its timing fields"; status=1
        fi
    elif ! cmp "$file" "$work/merged/$name"; then
        echo "FAIL: $name differs between the merged shards and one run"; status=1
    fi
done
[ "$(ls "$work/single" | wc -l)" -eq "$(ls "$work/merged" | wc -l)" ] \
    || { echo "FAIL: the merged directory holds other files"; status=1; }
if [ "$status" -eq 0 ]; then
    echo "slurm: 4-task job array merged into exactly the single run's files ($(ls "$work/single" | tr '\n' ' '))"
fi
exit "$status"
