"""A/B of two builds: the conv_chain ops with a LayerNorm (gated FFN d=48/36, qkv projection
d=36, a channel attention chain d=48) at 1x184x320, best of 60 calls (ms). argv: label,
threads. Run once per build in fresh processes, alternated, with PYTHONPATH at the build."""
import sys, time, torch
from asid_fast import ops
torch.set_num_threads(int(sys.argv[2]))
g = torch.Generator().manual_seed(0)
res = []
with torch.no_grad():
    for d, kind in [(48, "ffn"), (36, "ffn"), (36, "qkv"), (48, "ca")]:
        x = torch.randn(1, 184, 320, d, generator=g)
        norm = (torch.randn(d, generator=g), torch.randn(d, generator=g), 1e-6)
        wi2, wd2, wo, wi3, wi1, wd1 = (torch.randn(2 * d, d), torch.randn(2 * d, 1, 3, 3), torch.randn(d, d), torch.randn(3 * d, d), torch.randn(d, d), torch.randn(d, 1, 3, 3))
        if kind == "ffn":
            f = lambda: ops.conv_chain(x, wi2, wd2, norm=norm, epilogue="gate", w_out=wo, backend="cpu")
        elif kind == "qkv":
            f = lambda: ops.conv_chain(x, wi3, None, norm=norm, backend="cpu")
        else:
            f = lambda: ops.conv_chain(x, wi1, wd1, norm=norm, backend="cpu")
        for _ in range(3): f()
        ts = []
        for _ in range(60):
            t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
        res.append("%s%d %.2f" % (kind, d, min(ts) * 1e3))
print(sys.argv[1], " ".join(res), flush=True)
