#!/usr/bin/env bash
# The GPU figures of docs/performance.md and docs/gpu.md on one H100/H200, each step under its own time
# limit. The default limits add up to 12 min 50 s with every step on (on an H200 the Swimmer bench at
# 1,024 pairs took 132 s); to stay under 8 minutes, skip the steps already measured:
#   0. MJX Swimmer on the GPU matches gymnasium (the parity tests);
#   1. `pes-rl bench` on mjx, Swimmer, K = 100: raw MJX stepping vs the PES loop at 1k and 32k pairs
#      (one bench process per batch size, so a batch that runs out of time loses only its own row);
#   2. wall time to a Swimmer return of 350 on mjx, from process launch (imports and compilation
#      included), evaluation on the host's C MuJoCo (eval_backend gymnasium), held-out seeds;
#   3. gymnasium's Hopper on MJX (pes_rl.envs.mjx_gymnasium): raw stepping and the PES loop at 8k pairs; then each TASKS entry
#      ENV:PAIRS the same way (default: HalfCheetah at its gpu preset's 1,024 pairs; e.g. "CheetahRun:2048
#      walker2d:8192", Playground tasks included);
#   4. the host's C MuJoCo path (2,048 envs), then scripts/gpu_report.py: markdown tables and the
#      crossover population `auto` should use on this machine (report.md, report.json);
#   5. scripts/mjx_latency.py: the milliseconds of one MJX Swimmer env step, one RK4 and one Euler
#      physics step and one forward pass at LATENCY_ENVS envs (where the latency goes).
# Each step's time limit is a variable (PARITY_LIMIT, BENCH_LIMIT, WALL_LIMIT, HOPPER_LIMIT (TASKS too),
# CPU_LIMIT, LATENCY_LIMIT); an empty PARITY, SIZES, WALL_SEEDS, HOPPER_PAIRS, TASKS, BENCH_CPU_PAIRS or
# LATENCY_ENVS skips its step, and LATENCY_PIECES (comma-separated) picks the latency probe's pieces.
# Usage, with pes_rl installed (`pip install -e .`; on a machine without network, see docs/gpu.md:
# the carried wheels and the checkout copied into DIR, DIR on PYTHONPATH and PY="python3 -P"):
#   OUT=runs/gpu bash scripts/gpu_figures.sh
# Everything lands in $OUT: steps.log (each step's exit code and seconds), results.jsonl (one JSON
# object per step), stderr.log, report.md and report.json.
set -u
PY=${PY:-python3}
PARITY=${PARITY-on}
OUT=${OUT:-runs/gpu_figures}
SIZES=${SIZES-"1024 32768"}  # Swimmer batch sizes, in pairs
HOPPER_PAIRS=${HOPPER_PAIRS-8192}
TASKS=${TASKS-"halfcheetah:1024"}  # more MJX tasks to bench, ENV:PAIRS each
BENCH_CPU_PAIRS=${BENCH_CPU_PAIRS-1024}  # the host's C MuJoCo bench (a 2-core CPU needs fewer to fit its limit)
WALL_SEEDS=${WALL_SEEDS-10}
STOP_AT=${STOP_AT:-350}
LATENCY_ENVS=${LATENCY_ENVS-2048}
LATENCY_PIECES=${LATENCY_PIECES:-}  # empty: every piece of scripts/mjx_latency.py
PARITY_LIMIT=${PARITY_LIMIT:-60} BENCH_LIMIT=${BENCH_LIMIT:-150} WALL_LIMIT=${WALL_LIMIT:-90}
HOPPER_LIMIT=${HOPPER_LIMIT:-90} CPU_LIMIT=${CPU_LIMIT:-80} LATENCY_LIMIT=${LATENCY_LIMIT:-60}
# Settings of the mjx wall-time runs: Swimmer's gpu preset (pes_rl.config.GPU_PRESETS; docs/gpu.md).
WALL_ARGS=${WALL_ARGS:-"--preset gpu"}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS CMD...: run CMD under a time limit, its JSON stdout appended to results.jsonl
  local name=$1 limit=$2 start rc
  shift 2
  start=$EPOCHREALTIME
  echo "== $name: $*" >> "$OUT/stderr.log"
  timeout "$limit" "$@" > "$OUT/.step.out" 2>> "$OUT/stderr.log"
  rc=$?
  printf '{"step": "%s", "rc": %d, "seconds": %.2f, "stdout": %s}\n' "$name" "$rc" \
    "$(awk "BEGIN {print $EPOCHREALTIME - $start}")" "$($PY -c 'import json,sys; print(json.dumps(sys.stdin.read()))' < "$OUT/.step.out")" \
    >> "$OUT/results.jsonl"
  echo "$name rc=$rc $(awk "BEGIN {print $EPOCHREALTIME - $start}") s" | tee -a "$OUT/steps.log"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >> "$OUT/steps.log" 2>&1
$PY -c "import jax, mujoco; print('jax', jax.__version__, jax.devices(), 'mujoco', mujoco.__version__)" >> "$OUT/steps.log" 2>&1

# MJX Swimmer on this device against gymnasium: the parity tests' fixed policies (tests/test_mjx_swimmer.py)
[ -n "$PARITY" ] && step parity "$PARITY_LIMIT" $PY -m pytest -q -p no:cacheprovider tests/test_mjx_swimmer.py -k "open_loop_trajectory_matches_gymnasium or same_mean_return"
for n in $SIZES; do
  step "bench_swimmer_$n" "$BENCH_LIMIT" $PY -m pes_rl bench --backend mjx --num-pairs $n -K 100 --no-memory --json
done
for seed in $WALL_SEEDS; do
  # the process's whole life: launch, imports, compilation, training and evaluations until 350
  step "wall_to_350_seed$seed" "$WALL_LIMIT" $PY scripts/swimmer_sample_efficiency.py --backend mjx --seeds 1 \
    --first-seed "$seed" --total-steps 4096000 --stop-at "$STOP_AT" $WALL_ARGS --out "/tmp/wall_$seed"
done
[ -n "$HOPPER_PAIRS" ] && step "bench_hopper_$HOPPER_PAIRS" "$HOPPER_LIMIT" $PY -m pes_rl bench --env hopper \
  --backend mjx --num-pairs "$HOPPER_PAIRS" -K 100 --no-memory --json
for task in $TASKS; do
  step "bench_${task%%:*}_${task##*:}" "$HOPPER_LIMIT" $PY -m pes_rl bench --env "${task%%:*}" \
    --backend mjx --num-pairs "${task##*:}" -K 100 --no-memory --json
done
# the host's own threaded C MuJoCo rate, for the crossover population of `auto` (pes_rl/backend_choice.py)
[ -n "$BENCH_CPU_PAIRS" ] && step bench_cpu "$CPU_LIMIT" $PY -m pes_rl bench --backend gymnasium \
  --num-pairs "$BENCH_CPU_PAIRS" -K 100 --no-memory --json
[ -n "$LATENCY_ENVS" ] && step "latency_$LATENCY_ENVS" "$LATENCY_LIMIT" $PY scripts/mjx_latency.py --num-envs "$LATENCY_ENVS" \
  ${LATENCY_PIECES:+--pieces "$LATENCY_PIECES"}
rm -f "$OUT/.step.out"
$PY scripts/gpu_report.py "$OUT" > /dev/null  # report.md and report.json: the tables and the crossovers
