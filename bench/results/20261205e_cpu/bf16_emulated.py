"""Set5 PSNR with the products of the fused forward emulated in bf16 (inputs rounded to bf16,
float32 sums) through the ops' reference backend; delta against float32."""
import sys
import torch
import torch.nn.functional as F
from asid_fast.tools.evaluate import evaluate

r = lambda t: t.to(torch.bfloat16).float() if t.dtype == torch.float32 else t
orig = dict(linear=F.linear, addmm=torch.addmm, matmul=torch.matmul, mm=torch.Tensor.__matmul__)

def on():
    F.linear = lambda x, w, b=None: orig["linear"](r(x), r(w), b)
    torch.addmm = lambda c, a, b, **k: orig["addmm"](c, r(a), r(b), **k)
    torch.matmul = lambda a, b: orig["matmul"](r(a), r(b))
    torch.Tensor.__matmul__ = lambda a, b: orig["mm"](r(a), r(b))

def off():
    F.linear, torch.addmm, torch.matmul = orig["linear"], orig["addmm"], orig["matmul"]
    torch.Tensor.__matmul__ = orig["mm"]

scale, weights = int(sys.argv[1]), sys.argv[2]
a = evaluate("../shared/data/Set5/HR", scale, weights=weights, backend="reference", progress=False)
on()
b = evaluate("../shared/data/Set5/HR", scale, weights=weights, backend="reference", progress=False)
off()
print(f"x{scale} {weights}: fp32 {a['psnr']:.4f} emulated-bf16 {b['psnr']:.4f} "
      f"delta {b['psnr'] - a['psnr']:+.4f} dB")
