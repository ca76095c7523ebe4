#!/usr/bin/env bash
# Before (baseline copy in /tmp/site_before) vs after (/tmp/site_now) on idle cores.
set -u
PY=/work/main/.venv/bin/python
OUTD=${OUTD:-/tmp/perf_out}
mkdir -p $OUTD; cd /tmp/mdir
rm -rf /tmp/site_now && mkdir -p /tmp/site_now && cp -r /work/main/pes_rl /tmp/site_now/ && cp -r /work/main/envs /work/main/agents /tmp/site_now/pes_rl/
run() { PYTHONPATH=/tmp/site_$1 "${@:2}"; }
# 1. start-up: one-iteration train, launch to exit, warm cache, alternating
for code in before now; do run $code $PY -P -m pes_rl train --env swimmer --total-steps 4000 --no-progress --run-dir /tmp/st_warm_$code > /dev/null 2>&1; done
for rep in 1 2 3 4 5; do for code in before now; do
  rm -rf /tmp/st_$code; t0=$EPOCHREALTIME
  run $code $PY -P -m pes_rl train --env swimmer --total-steps 4000 --no-progress --run-dir /tmp/st_$code > /dev/null 2>&1
  t1=$EPOCHREALTIME
  first=$($PY -c "import csv; r=list(csv.DictReader(open('/tmp/st_$code/progress.csv'))); print(r[0]['wall_time'])")
  echo "{\"code\": \"$code\", \"rep\": $rep, \"process_s\": $(awk "BEGIN{print $t1-$t0}"), \"first_row_wall_s\": $first}" | tee -a $OUTD/startup.jsonl
done; done
# 2. 20 envs and 512 envs against the C MuJoCo limit, and the bare per-step floor
for code in before now; do for n in 10 256; do
  run $code $PY -P -m pes_rl bench --backend gymnasium --num-pairs $n --no-memory --json 2>/dev/null | tail -1 | sed "s/^/{\"code\": \"$code\", \"pairs\": $n, \"bench\": /; s/\$/}/" >> $OUTD/bench.jsonl
done; done
tail -4 $OUTD/bench.jsonl | cut -c1-400
run now $PY -P /tmp/floor/floor.py | tee $OUTD/floor.json
# 3. evaluation share (nres, 100k, 3 repeats)
for code in before now; do
  run $code $PY -P /work/main/scripts/evaluation_share.py --agent nres --total-steps 100000 --repeats 3 2>/dev/null | tail -1 | sed "s/^/{\"code\": \"$code\", \"share\": /; s/\$/}/" | tee -a $OUTD/share.jsonl
done
# 4. wall time to 350 against the plain loop, seeds 10-19 (after only)
run now $PY -P /work/main/scripts/swimmer_sample_efficiency.py --compare-plain --agent nres --seeds 10 --first-seed 10 --out $OUTD/wall 2>/dev/null | tail -1 | tee $OUTD/wall_summary.json
