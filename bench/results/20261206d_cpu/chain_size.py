import torch, time
import asid_fast.ops
torch.set_num_threads(2)
op = torch.ops.asid_fast.conv_chain_fwd.default
def bench(h, w, cfg, reps):
    x = torch.randn(1, h, w, 48)
    f = lambda: op(x, *cfg)
    with torch.inference_mode():
        f(); best = 1e9
        for _ in range(7):
            t0 = time.perf_counter()
            for _ in range(reps): f()
            best = min(best, (time.perf_counter() - t0) / reps)
    return best / (h * w) * 1e9
nw, nb = torch.randn(48), torch.randn(48)
cfgs = {"qkv48": (nw, nb, 1e-6, torch.randn(48, 48) * .1, None, False, torch.randn(48, 1, 3, 3) * .1, None, "none", None),
        "gfn48": (nw, nb, 1e-6, torch.randn(96, 48) * .1, None, False, torch.randn(96, 1, 3, 3) * .1, None, "gate", torch.randn(48, 48) * .1)}
for n, c in cfgs.items():
    big = bench(184, 320, c, 3); small = bench(32, 64, c, 60)
    print(n, "ns/px 184x320: %.0f  32x64: %.0f  ratio %.2f" % (big, small, big / small))
