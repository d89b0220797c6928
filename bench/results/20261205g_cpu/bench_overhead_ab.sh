#!/bin/bash
# Wall time of `asid-fast bench --ops conv_chain,linear` (ops and inference suites), old and new
# code in alternating processes, 3 rounds. old: a git worktree of a5a437a in /tmp/oldtree with the
# built extension copied in; new: /work/main at 517b1e7 (python -m asid_fast runs the package in
# the current directory).
for r in 1 2 3; do
  for side in old new; do
    if [ $side = old ]; then d=/tmp/oldtree; else d=/work/main; fi
    s=$(date +%s.%N)
    (cd $d && OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=2 /work/main/.venv/bin/python \
      -m asid_fast bench --ops conv_chain,linear --json /tmp/ab_${side}_$r.json > /dev/null 2>&1)
    e=$(date +%s.%N)
    echo "$r $side $(echo "$e - $s" | bc)"
  done
done
