"""Where the fused x4 fp32 inference spends its first calls on the GPU: cProfile of the first
forward (Triton compiles show up as triton.compiler.compile), wall time of calls 1-3, then the
same for bf16; a traceback every 20 s if a call hangs."""
import cProfile
import faulthandler
import io
import pstats
import sys
import time

import torch

from asid_fast import ASID, GraphedModel
from asid_fast.ops import _registry

faulthandler.dump_traceback_later(20, repeat=True, file=sys.stdout)
dev = torch.device("cuda")
for dtype in (torch.float32, torch.bfloat16):
    print(f"==== {dtype}: {_registry.summary('auto', 'cuda', dtype)}", flush=True)
    model = ASID(4, backend="auto").to(dev, dtype).eval()
    x = torch.rand((1, 3, 180, 320), device=dev).to(dtype)
    prof = cProfile.Profile()
    with torch.no_grad():
        for i in range(3):
            t = time.perf_counter()
            if i == 0:
                prof.enable()
            model(x)
            torch.cuda.synchronize()
            if i == 0:
                prof.disable()
            print(f"call {i + 1}: {time.perf_counter() - t:.2f} s", flush=True)
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
        print(s.getvalue()[:6000], flush=True)
        t = time.perf_counter()
        g = GraphedModel(model)
        g(x)
        torch.cuda.synchronize()
        print(f"graph capture + first replay: {time.perf_counter() - t:.2f} s", flush=True)
        for name, fn in (("fused", lambda: model(x)), ("graphs", lambda: g(x))):
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
            ts = []
            for _ in range(20):
                ev[0].record(); fn(); ev[1].record(); torch.cuda.synchronize()
                ts.append(ev[0].elapsed_time(ev[1]))
            print(f"{name}: median {sorted(ts)[10]:.3f} ms", flush=True)
faulthandler.cancel_dump_traceback_later()
