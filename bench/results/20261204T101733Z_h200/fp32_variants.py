"""x4 inference on the GPU: fp32 (default): the fused model with backend "cuda" (no Triton block
kernels) in IEEE fp32, then backend "auto" with TF32 allowed, then the reference; with argument
"bf16": backends "cuda", "auto" and "reference" in bf16. CUDA-event medians of 20 calls."""
import sys
import time

import torch

from asid_fast import ASID, GraphedModel
from asid_fast.ops import _registry

dev = torch.device("cuda")
BF16 = sys.argv[1:] == ["bf16"]
dtype = torch.bfloat16 if BF16 else torch.float32
x = torch.rand((1, 3, 180, 320), device=dev).to(dtype)


def median_ms(fn):
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(2)]
    ts = []
    for _ in range(20):
        ev[0].record(); fn(); ev[1].record(); torch.cuda.synchronize()
        ts.append(ev[0].elapsed_time(ev[1]))
    return sorted(ts)[10]


CASES = (("cuda", False), ("auto", False), ("reference", False)) if BF16 else (
    ("cuda", False), ("auto", True), ("reference", True))
for backend, tf32 in CASES:
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    print(f"== backend {backend}, tf32 {tf32}: {_registry.summary(backend, 'cuda', x.dtype)}")
    model = ASID(4, backend=backend).to(dev, dtype).eval()
    with torch.no_grad():
        t = time.perf_counter(); model(x); torch.cuda.synchronize()
        print(f"first call {time.perf_counter() - t:.1f} s", flush=True)
        g = GraphedModel(model)
        print(f"eager {median_ms(lambda: model(x)):.3f} ms, graphs {median_ms(lambda: g(x)):.3f} ms",
              flush=True)
