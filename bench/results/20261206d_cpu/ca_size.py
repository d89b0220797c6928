import torch, time
from asid_fast import ops
torch.set_num_threads(2)
t = torch.ones(1, 1, 1)
def bench(h, w, mode, reps):
    q, k, v = (torch.randn(1, h, w, 48) for _ in range(3))
    f = lambda: ops.channel_attention(q, k, v, t, mode=mode, window=8, backend="cpu")
    with torch.inference_mode():
        f(); best = 1e9
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(reps): f()
            best = min(best, (time.perf_counter() - t0) / reps)
    return best / (h * w) * 1e9
for mode in ("window", "cell"):
    big = bench(184, 320, mode, 3); small = bench(32, 64, mode, 60)
    print(mode, "ns/px 184x320: %.0f  32x64: %.0f  ratio %.2f" % (big, small, big / small))
