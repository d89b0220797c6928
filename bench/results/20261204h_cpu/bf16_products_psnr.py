"""Emulated bf16 products: how far Set5 PSNR / SSIM move with the shipped weights if every
per-pixel matmul (1x1 convolutions and Linear layers, the GEMMs of conv_chain, linear and the
attention projections) took bf16-rounded inputs and weights with float32 accumulation, the
rest (3x3 and depthwise convolutions, attention products, norms) staying float32. The reference
model runs in float64 so that only the rounding differs; forward pre-hooks round each layer's
input to bf16, and the weights are rounded once.

    python bench/results/20261204h_cpu/bf16_products_psnr.py ../shared/data/Set5/HR
"""
import sys

import torch
from torch import nn

from asid_fast.shipped_weights import pretrained
from asid_fast.tools.evaluate import load_pairs, model_sr, score
from asid_fast.tools.upscale import model_fn


def bf16(t):
    return t.to(torch.bfloat16).to(t.dtype)


def emulate_bf16_products(model):
    def round_input(_module, args):
        return (bf16(args[0]),)
    layers = [m for m in model.modules()
              if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1))]
    with torch.no_grad():
        for m in layers:
            m.weight.copy_(bf16(m.weight))
            m.register_forward_pre_hook(round_input)
    return len(layers)


torch.set_num_threads(2)
hr = sys.argv[1]
for scale in (2, 3, 4):
    pairs = load_pairs(hr, scale)
    results = {}
    for name in ("fp32 weights, float64", "bf16 products (emulated)"):
        model = pretrained(scale, backend="reference").double()
        if name.startswith("bf16"):
            n = emulate_bf16_products(model)
        with torch.no_grad():
            sr = model_sr(model_fn(model, torch.float64), scale, torch.device("cpu"))
            results[name] = score(pairs, sr, scale, progress=False)
    base = results["fp32 weights, float64"]
    emu = results["bf16 products (emulated)"]
    print(f"x{scale} Set5: float PSNR {base['psnr']:.4f} dB SSIM {base['ssim']:.5f}; "
          f"bf16 products ({n} layers) PSNR {emu['psnr']:.4f} dB SSIM {emu['ssim']:.5f}; "
          f"delta PSNR {emu['psnr'] - base['psnr']:+.4f} dB, "
          f"largest per image {max(abs(emu['images'][k]['psnr'] - v['psnr']) for k, v in base['images'].items()):.4f} dB",
          flush=True)
