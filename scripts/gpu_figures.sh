#!/usr/bin/env bash
# The GPU figures of docs/performance.md and docs/gpu.md, in under 8 minutes on one H100/H200 (the steps'
# limits add up to 7 min 50 s; the install of carried wheels comes on top):
#   0. MJX Swimmer on the GPU matches gymnasium (the parity tests);
#   1. `pes-rl bench` on mjx, Swimmer, K = 100: raw MJX stepping vs the PES loop at 1k and 32k pairs
#      (one bench process per batch size, so a batch that runs out of time loses only its own row);
#   2. wall time to a Swimmer return of 350 on mjx, from process launch (imports and compilation
#      included), evaluation on the host's C MuJoCo (eval_backend gymnasium), held-out seeds;
#   3. one Brax MJX task (hopper): raw stepping and the PES loop at 8k pairs;
#   4. the host's C MuJoCo path (2,048 envs), then scripts/gpu_report.py: markdown tables and the
#      crossover population `auto` should use on this machine (report.md, report.json).
# Usage, with pes_rl installed (`pip install -e .`; on a machine without network, beside carried
# wheels: `pip install --no-deps --no-build-isolation --target DIR .` and DIR on PYTHONPATH):
#   OUT=runs/gpu bash scripts/gpu_figures.sh
# Everything lands in $OUT: steps.log (each step's exit code and seconds), results.jsonl (one JSON
# object per step), stderr.log, report.md and report.json.
set -u
PY=${PY:-python3}
OUT=${OUT:-runs/gpu_figures}
SIZES=${SIZES:-"1024 32768"}  # Swimmer batch sizes, in pairs
HOPPER_PAIRS=${HOPPER_PAIRS:-8192}
BENCH_CPU_PAIRS=${BENCH_CPU_PAIRS:-1024}  # the host's C MuJoCo bench (a 2-core CPU needs fewer to fit its limit)
WALL_SEEDS=${WALL_SEEDS:-10}
STOP_AT=${STOP_AT:-350}
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
step parity 60 $PY -m pytest -q -p no:cacheprovider tests/test_mjx_swimmer.py -k "open_loop_trajectory_matches_gymnasium or same_mean_return"
for n in $SIZES; do
  step "bench_swimmer_$n" 90 $PY -m pes_rl bench --backend mjx --num-pairs $n -K 100 --no-memory --json
done
for seed in $WALL_SEEDS; do
  # the process's whole life: launch, imports, compilation, training and evaluations until 350
  step "wall_to_350_seed$seed" 90 $PY scripts/swimmer_sample_efficiency.py --backend mjx --seeds 1 \
    --first-seed "$seed" --total-steps 4096000 --stop-at "$STOP_AT" $WALL_ARGS --out "/tmp/wall_$seed"
done
step "bench_hopper_$HOPPER_PAIRS" 90 $PY -m pes_rl bench --env hopper --backend mjx --num-pairs "$HOPPER_PAIRS" -K 100 \
  --no-memory --json
# the host's own threaded C MuJoCo rate, for the crossover population of `auto` (pes_rl/backend_choice.py)
step bench_cpu 50 $PY -m pes_rl bench --backend gymnasium --num-pairs "$BENCH_CPU_PAIRS" -K 100 --no-memory --json
rm -f "$OUT/.step.out"
$PY scripts/gpu_report.py "$OUT" > /dev/null  # report.md and report.json: the tables and the crossovers
