#!/usr/bin/env bash
# The fourth round of docs/performance.md: the code before (BEFORE, a commit) against the checkout, on
# idle cores, each copied aside as an installed-package layout (envs/ and agents/ under pes_rl/) and
# imported with python -P. Run from the repository root with its venv:
#   BEFORE=68af097 OUTD=runs/perf bash docs/perf/2026-11-26b/measure.sh
set -u
ROOT=$(pwd)
PY=${PY:-$ROOT/.venv/bin/python}
BEFORE=${BEFORE:-68af097}
OUTD=$(realpath -m "${OUTD:-runs/perf_2026-11-26b}")
HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d)
mkdir -p "$OUTD" "$WORK/empty"
layout() {  # layout DEST SRC: SRC's package as installed, in DEST/pes_rl
  mkdir -p "$1" && cp -r "$2/pes_rl" "$1/" && cp -r "$2/envs" "$2/agents" "$1/pes_rl/"
}
git worktree add -q "$WORK/before_src" "$BEFORE" && layout "$WORK/site_before" "$WORK/before_src"
git worktree remove --force "$WORK/before_src"
layout "$WORK/site_now" "$ROOT"
cd "$WORK/empty"  # children run with `python -c`: nothing here may shadow the copies
run() { PYTHONPATH=$WORK/site_$1 "${@:2}"; }
# 1. start-up: one-iteration train, launch to exit, warm cache, alternating
for code in before now; do run $code $PY -P -m pes_rl train --env swimmer --total-steps 4000 --no-progress --run-dir "$WORK/warm_$code" > /dev/null 2>&1; done
for rep in 1 2 3 4 5; do for code in before now; do
  rm -rf "$WORK/st_$code"; t0=$EPOCHREALTIME
  run $code $PY -P -m pes_rl train --env swimmer --total-steps 4000 --no-progress --run-dir "$WORK/st_$code" > /dev/null 2>&1
  t1=$EPOCHREALTIME
  first=$($PY -c "import csv; r=list(csv.DictReader(open('$WORK/st_$code/progress.csv'))); print(r[0]['wall_time'])")
  echo "{\"code\": \"$code\", \"rep\": $rep, \"process_s\": $(awk "BEGIN{print $t1-$t0}"), \"first_row_wall_s\": $first}" | tee -a "$OUTD/startup.jsonl"
done; done
# 2. 20 envs and 512 envs against the C MuJoCo limit, and the bare per-step floor (floor.py beside this script)
for code in before now; do for n in 10 256; do
  run $code $PY -P -m pes_rl bench --backend gymnasium --num-pairs $n --no-memory --json 2>/dev/null | tail -1 | sed "s/^/{\"code\": \"$code\", \"pairs\": $n, \"bench\": /; s/\$/}/" >> "$OUTD/bench.jsonl"
done; done
run now $PY -P "$HERE/floor.py" | tee "$OUTD/floor.json"
# 3. evaluation share (nres, 100k, 3 repeats)
for code in before now; do
  run $code $PY -P "$ROOT/scripts/evaluation_share.py" --agent nres --total-steps 100000 --repeats 3 2>/dev/null | tail -1 | sed "s/^/{\"code\": \"$code\", \"share\": /; s/\$/}/" | tee -a "$OUTD/share.jsonl"
done
# 4. wall time to 350 against the plain loop, seeds 10-19 (the checkout only)
run now $PY -P "$ROOT/scripts/swimmer_sample_efficiency.py" --compare-plain --agent nres --seeds 10 --first-seed 10 --out "$OUTD/wall" 2>/dev/null | tail -1 | tee "$OUTD/wall_summary.json"
rm -rf "$WORK"
