"""One case per process: does an error raised inside asid_fast._C crash on this machine?"""
import sys
import torch
import asid_fast._C  # noqa: F401
from asid_fast import ops  # noqa: F401  (registers autograd)

case = sys.argv[1]
dev = "cpu" if case.startswith("cpu") else "cuda"
q, k, v = (torch.randn(1, 32, 32, 8, device=dev) for _ in range(3))
f = torch.ops.asid_fast.window_attention_fwd
calls = {
    "cpu_badmode": lambda: f(q, k, v, None, "bad", 8, 1.0),
    "cuda_badmode": lambda: f(q, k, v, None, "bad", 8, 1.0),
    "cuda_tokens": lambda: f(q, k, v, None, "meso", 16, 1.0),
    "cuda_double": lambda: f(q.double(), k.double(), v.double(), None, "meso", 8, 1.0),
    "cuda_tokens_nograd_redispatch": lambda: torch.ops.asid_fast.window_attention_fwd.default.redispatch(
        torch._C.DispatchKeySet(torch._C.DispatchKey.CUDA), q, k, v, None, "meso", 16, 1.0),
    "cuda_channel65": lambda: torch.ops.asid_fast.channel_attention_fwd(
        *(torch.randn(1, 16, 16, 65, device=dev),) * 3, torch.ones(1, 1, 1, device=dev), "window", 8),
}
try:
    calls[case]()
    print(case, "NO ERROR")
except Exception as e:
    print(case, "raised", type(e).__name__, str(e).splitlines()[0][:150])
