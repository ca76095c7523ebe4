#!/usr/bin/env bash
# The sixth round of docs/performance.md: every CPU figure of the performance issue on the final code,
# one after another on idle cores. Run from the repository root with its venv:
#   OUTD=runs/perf_2026-11-27b bash docs/perf/2026-11-27b/measure.sh
set -u
PY=${PY:-.venv/bin/python}
OUTD=${OUTD:-runs/perf_2026-11-27b}
HERE=$(dirname "$0")
mkdir -p "$OUTD"
# 1. a training batch beside an evaluation thread (physics only)
$PY "$HERE/straggler.py" | tee "$OUTD/straggler.json"
# 2. the 20-env and 512-env PES loop against the C MuJoCo limit on its own transitions, twice each
for rep in 1 2; do for n in 10 256; do
  $PY -m pes_rl bench --backend gymnasium --num-pairs $n --no-memory --json 2>/dev/null | tail -1 \
    | sed "s/^/{\"rep\": $rep, \"pairs\": $n, \"bench\": /; s/\$/}/" | tee -a "$OUTD/bench.jsonl"
done; done
# 3. wall time to 350 against the plain loop, seeds 10-19, both evaluated every 20k env steps
$PY scripts/swimmer_sample_efficiency.py --compare-plain --agent nres --seeds 10 --first-seed 10 \
  --out "$OUTD/swimmer_wall" | tee "$OUTD/swimmer_wall.log"
