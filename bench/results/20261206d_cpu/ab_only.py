import sys, torch, time
from asid_fast import ops
torch.set_num_threads(int(sys.argv[1]))
d = 36
g = torch.Generator().manual_seed(0)
x = torch.randn(1, 184, 320, d, generator=g)
norm = (torch.ones(d), torch.zeros(d), 1e-5)
wq = torch.randn(3 * d, d, generator=g) * d ** -0.5; wo = torch.randn(d, d, generator=g) * d ** -0.5
bias = torch.randn(64, 64, generator=g)
with torch.inference_mode():
    for _ in range(3): ops.attention_block(x, norm, wq, bias, wo, mode="meso", backend="cpu")
    t0 = time.perf_counter()
    for _ in range(40): ops.attention_block(x, norm, wq, bias, wo, mode="meso", backend="cpu")
    print("ms/call", (time.perf_counter() - t0) / 40 * 1e3)
