"""Fused attention-block ops (LayerNorm, projections, window attention, output projection,
residual in one CPU kernel) against their composition of per-step CPU ops (conv_chain, window
attention, linear), interleaved in one process, best of 15, at 1x184x320 (x4 720p). argv: threads."""
import time, torch, sys
from asid_fast import ops
from asid_fast.ops.attention_block import composed_attention_block, composed_shared_attention_block
torch.set_num_threads(int(sys.argv[1]))
g = torch.Generator().manual_seed(0)
with torch.no_grad():
  for d in (36, 24, 12):
    for mode in ("meso", "global"):
        x = torch.randn(1, 184, 320, d, generator=g)
        norm = (torch.randn(d, generator=g), torch.randn(d, generator=g), 1e-5)
        wq, wo, wv, b = torch.randn(3 * d, d) * d ** -.5, torch.randn(d, d) * d ** -.5, torch.randn(d, d) * d ** -.5, torch.randn(64, 64)
        _, attn = ops.attention_block(x, norm, wq, b, wo, mode=mode)
        cases = {
          "fused": lambda: ops.attention_block(x, norm, wq, b, wo, mode=mode, backend="cpu"),
          "composed": lambda: composed_attention_block(x, norm, wq, b, wo, mode, 8, d ** -.5, "cpu"),
          "shared fused": lambda: ops.shared_attention_block(x, norm, wv, attn, wo, mode=mode, backend="cpu"),
          "shared composed": lambda: composed_shared_attention_block(x, norm, wv, attn, wo, mode, 8, "cpu"),
        }
        best = {k: 1e9 for k in cases}
        for r in range(15):
            for k, f in cases.items():
                t = time.perf_counter(); f(); best[k] = min(best[k], time.perf_counter() - t)
        print(d, mode, "  ".join("%s %.2f ms" % (k, v * 1e3) for k, v in best.items()),
              " ratio %.2f / %.2f" % (best["composed"] / best["fused"], best["shared composed"] / best["shared fused"]), flush=True)
