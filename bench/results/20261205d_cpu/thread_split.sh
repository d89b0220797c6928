#!/usr/bin/env bash
# perf samples of the fused x2 training step (batch 16 of 64x64, L1 + Adam) per thread and
# library, from 12 s of steady steps (perf attaches after three warm-up steps): what the main
# thread runs while torch's second worker thread has nothing to do.
#     OMP_WAIT_POLICY=PASSIVE bash thread_split.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp)
python - > "$log" 2>&1 <<PY &
import sys, time
sys.path.insert(0, "$here/../20261205b_cpu")
from split_ab import training_step
_, step, _ = training_step()
for _ in range(3):
    step()
print("warm", flush=True)
t0 = time.perf_counter()
while time.perf_counter() - t0 < 20:
    step()
PY
pid=$!
until grep -q warm "$log"; do sleep 0.5; done
perf record -q -p "$pid" -o "$log.perf" -- sleep 12 > /dev/null 2>&1
wait "$pid"
perf script -i "$log.perf" -F tid,ip,sym,dso -G 2> /dev/null \
  | awk '{d = $NF; gsub(/.*\//, "", d); gsub(/\)$/, "", d); n[$1 " " d]++; t[$1]++}
         END {for (k in n) {split(k, a, " "); printf "%6d %5.1f%%  thread %s  %s\n", n[k],
              100 * n[k] / t[a[1]], a[1], a[2]}}' | sort -k3,3 -k1,1nr | awk '$2+0 >= 0.3'
rm -f "$log" "$log.perf"
