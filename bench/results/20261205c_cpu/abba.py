"""In-process ABBA A/B of the fused x2 training step (batch 16 of 64x64, L1 + Adam): a probe
build's old code path (environment variable ENV set) against the new one (unset). Per round: old,
new, new, old, one timed step each; the round's ratio = (old sum) / (new sum). Prints best and
median per candidate (two or more rounds) and the median and quartiles of the per-round ratios.

    OMP_WAIT_POLICY=PASSIVE python abba.py ENV ROUNDS
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "20261205b_cpu"))
from split_ab import training_step  # noqa: E402


def abba(env, rounds, fn):
    """Times fn with the environment variable env set (old) and unset (new) in ABBA rounds after
    one warm-up call each; prints the figures described above."""
    times = {"old": [], "new": []}

    def run(name):
        if name == "old":
            os.environ[env] = "1"
        else:
            os.environ.pop(env, None)
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1e3

    run("old")
    run("new")
    ratios = []
    for _ in range(rounds):
        t = [run(name) for name in ("old", "new", "new", "old")]
        times["old"] += [t[0], t[3]]
        times["new"] += [t[1], t[2]]
        ratios.append((t[0] + t[3]) / (t[1] + t[2]))
    for name, ts in times.items():
        print(f"{name}: best {min(ts):.1f} median {statistics.median(ts):.1f} ms")
    q = statistics.quantiles(ratios, n=4)
    print(f"old/new: best {min(times['old']) / min(times['new']):.3f}; per-round ratio median "
          f"{statistics.median(ratios):.3f} (quartiles {q[0]:.3f}-{q[2]:.3f}, {rounds} rounds)")


if __name__ == "__main__":
    abba(sys.argv[1], int(sys.argv[2]), training_step()[1])
