"""Time ``asid-fast export`` files in onnxruntime against the fused model on the CPU (the README's
"Export and deploy" numbers): x4 on a 1x3x180x320 input, interleaved rounds of the shared
harness (:func:`asid_fast.tools.bench_timing.time_interleaved`), best and median of each.

    asid-fast export --scale 4 --onnx x4.onnx
    OMP_WAIT_POLICY=PASSIVE python bench/onnx_vs_fused_cpu.py x4.onnx [more.onnx ...]

Both sides get the same thread count (``--threads``, default 2). onnxruntime runs with
``ORT_ENABLE_ALL`` and its threads do not spin, as ``OMP_WAIT_POLICY=PASSIVE`` makes torch's
(spinning threads would take the cores from the candidate timed next).
"""
from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort
import torch

from asid_fast.shipped_weights import pretrained
from asid_fast.tools.bench_timing import time_interleaved


def session(path, threads: int):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("onnx", nargs="+", help="files written by asid-fast export --scale 4")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", default="180x320", help="LR HxW (default 180x320)")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    h, w = map(int, args.size.split("x"))
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    model = pretrained(4)
    with torch.inference_mode():
        want = model(x).numpy()

    def fused():
        with torch.inference_mode():
            model(x)
    fns = {"fused (asid_fast, CPU kernels)": fused}
    feed = {"lr": x.numpy()}
    for path in args.onnx:
        sess = session(path, args.threads)
        diff = np.abs(sess.run(["sr"], feed)[0] - want).max()
        print(f"{path}: max |onnxruntime - fused| = {diff:.2g}")
        fns[f"onnxruntime {path}"] = lambda sess=sess: sess.run(["sr"], feed)
    timings = time_interleaved(fns, "cpu", warmup=1, repeats=args.repeats)
    best = timings[next(iter(fns))].min
    print(f"x4, 1x3x{h}x{w}, {args.threads} threads, best / median of {args.repeats} "
          f"interleaved rounds (torch {torch.__version__}, onnxruntime {ort.__version__}):")
    for name, t in timings.items():
        print(f"  {name:50s} {t.min / 1e3:6.3f} s / {t.median / 1e3:6.3f} s  "
              f"({t.min / best:.2f}x the fused best)")


if __name__ == "__main__":
    main()
