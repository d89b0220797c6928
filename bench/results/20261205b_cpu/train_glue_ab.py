"""A/B in one process of the training step's glue changes: the fused x2 step (batch 16 of 64x64,
L1 + Adam) with "old" (the IDB's channel splits as slices, conv_chain's backward in parts of 16
rows), "split" (one torch.split per channel split) and "split+parts" (conv_chain's backward in
parts of whole images). Needs a probe build whose backward_parts returns the old parts while
ASID_PROBE_OLD_PARTS is set. Rounds rotate the candidates' order."""
import os
import statistics
import sys
import time

from asid_fast import model as M

sys.path.insert(0, os.path.dirname(__file__))
from split_ab import slices_idb, training_step  # noqa: E402

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
_, step, _ = training_step()
split_idb = M._idb
cands = {"old": (slices_idb, True), "split": (split_idb, True), "split+parts": (split_idb, False)}


def use(name):
    M._idb, old_parts = cands[name]
    if old_parts:
        os.environ["ASID_PROBE_OLD_PARTS"] = "1"
    else:
        os.environ.pop("ASID_PROBE_OLD_PARTS", None)


times = {n: [] for n in cands}
names = list(cands)
for r in range(rounds):
    for name in names[r % 3:] + names[:r % 3]:
        use(name)
        step()
        t0 = time.perf_counter()
        step()
        times[name].append((time.perf_counter() - t0) * 1e3)
base = times["old"]
for n, ts in times.items():
    print(f"{n}: best {min(ts):.1f} median {statistics.median(ts):.1f} ms; old / this "
          f"{min(base) / min(ts):.3f} / {statistics.median(base) / statistics.median(ts):.3f}")
