#!/usr/bin/env bash
# The first GPU call of 2026-11-26e (docs/performance.md, "Fourth GPU run"): the compact RK4 step and
# the forward-free reset (new, the working tree) against the commit before them (base), on one warm
# machine. Run from the repository root on the device, with the carried wheels in .whl/ (docs/gpu.md)
# and the base tree made beforehand on this machine:
#   mkdir -p runs/gpu_baseline && git archive 4e4354a pes_rl envs agents | tar -x -C runs/gpu_baseline
# then the device tool's run with carry [".whl", "runs/gpu_baseline"]:
#   mkdir -p $OUT && bash docs/perf/2026-11-26e/gpu_driver.sh
# (Eight of the twelve files it writes came back: the device tool returns a limited count.)
set -u
S=/tmp/site; SB=/tmp/site_base
pip install -q --no-index --no-deps --target $S .whl/*.whl > $OUT/pip.log 2>&1
cp -r pes_rl $S/ && cp -r envs agents $S/pes_rl/
mkdir -p $SB && cp -r runs/gpu_baseline/pes_rl $SB/ && cp -r runs/gpu_baseline/envs runs/gpu_baseline/agents $SB/pes_rl/
export PY="python3 -P"
PYTHONPATH=$S $PY -c "import mujoco_playground, pes_rl.envs as e; print('playground ok; warp', e.warp_installed())" > $OUT/check.log 2>&1
PYTHONPATH=$S PARITY_LIMIT=75 SIZES="" WALL_SEEDS="10 11" WALL_LIMIT=75 HOPPER_PAIRS="" TASKS="CheetahRun:2048" HOPPER_LIMIT=120 \
  BENCH_CPU_PAIRS="" LATENCY_ENVS=2048 LATENCY_PIECES=env_step,env_step_mjx_step LATENCY_LIMIT=90 OUT=$OUT/new bash scripts/gpu_figures.sh
PYTHONPATH=$SB:$S PES_RL_COMPILATION_CACHE=/tmp/cache_base PARITY="" SIZES="" WALL_SEEDS="10" WALL_LIMIT=75 HOPPER_PAIRS="" \
  BENCH_CPU_PAIRS="" LATENCY_ENVS="" OUT=$OUT/base bash scripts/gpu_figures.sh
tail -n 30 $OUT/new/steps.log $OUT/base/steps.log $OUT/check.log
