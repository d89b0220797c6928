"""FLOP counting for ASID under two stated rules.

**Paper rule** (what the ASID paper reports as "FLOPs", counted with thop; the unit is
multiply-accumulates, not FLOPs): forward hooks on the reference model count

* ``nn.Conv2d``: ``output elements * in_channels / groups * kh * kw`` (bias not counted);
* ``nn.Linear``: ``output elements * in_features`` (bias not counted);
* ``nn.LayerNorm`` with affine weights: ``4 * input elements`` (thop: 2 per element, doubled
  for the affine part);
* the softmax *module*: ``rows * (3 * n - 1)`` for rows of length n (n exps, n - 1 adds,
  n divisions). In the authors' code the spatial attention that computes its matrix applies an
  ``nn.Softmax`` module; the channel attention calls ``Tensor.softmax`` (functional, which thop
  does not see). Our reference calls softmax functionally everywhere, so the spatial one is
  counted explicitly at :class:`~asid_fast.reference.model.ComputeAttention` from the shape of
  the attention matrix it returns, and the channel one is not counted.

Nothing else is counted: not the attention matmuls (functional), LayerNorm2d (a custom module),
GELU/SiLU/sigmoid, pooling, interpolation, PixelShuffle or the element-wise arithmetic. This
reproduces the published numbers to < 0.01 % (17.166 G for ASID x4, 63.592 G for ASID x2 and
40.674 G for ASID-D8 x4 at 720p output; see ``tests/test_flops.py``).

**Full rule**: ``torch.utils.flop_counter.FlopCounterMode``, i.e. 2 FLOPs per multiply-add of
every convolution and matmul, attention included; the fused ops are counted through the formulas
registered by the op modules of :mod:`asid_fast.ops`. Element-wise work, softmax and normalisation are
not counted. One correction to torch's table: its ``convolution_backward`` formula ignores
``groups`` for the weight gradient, over-counting a depthwise conv's backward by a factor of the
channel count (ASID x4 training step: 419 instead of 139 GFLOP); here each requested gradient of
a convolution costs exactly its forward FLOPs.

Counting runs the reference model on the ``meta`` device, so it costs no arithmetic.
"""
from __future__ import annotations

import functools

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count

from .reference.model import ASID, WINDOW, ComputeAttention, check_config

PAPER_RULE = ("thop-style multiply-accumulates of Conv2d (no bias), Linear, affine LayerNorm "
              "(4/element) and the spatial softmax module (3n-1 per row); attention matmuls, "
              "LayerNorm2d and element-wise ops not counted")
FULL_RULE = ("torch.utils.flop_counter.FlopCounterMode: 2 x multiply-adds of all convolutions "
             "and matmuls including attention (fused ops via their registered formulas)")
HD_OUTPUT = (720, 1280)


def _conv_macs(m: nn.Conv2d, inputs, out) -> int:
    kh, kw = m.kernel_size
    return out.numel() * (m.in_channels // m.groups) * kh * kw


def _linear_macs(m: nn.Linear, inputs, out) -> int:
    return out.numel() * m.in_features


def _layer_norm_ops(m: nn.LayerNorm, inputs, out) -> int:
    per_element = 4 if m.elementwise_affine else 2
    return per_element * inputs[0].numel()


def _softmax_ops(rows: int, n: int) -> int:
    return rows * (3 * n - 1)


def _spatial_softmax_ops(m: ComputeAttention, inputs, out) -> int:
    attn = out[1]  # (windows, w*w, w*w), softmax over the last axis
    n = attn.shape[-1]
    return _softmax_ops(attn.numel() // n, n)


_PAPER_COUNTERS = {
    nn.Conv2d: _conv_macs,
    nn.Linear: _linear_macs,
    nn.LayerNorm: _layer_norm_ops,
    ComputeAttention: _spatial_softmax_ops,
}


def count_paper_rule(model: nn.Module, x: torch.Tensor, by_type: bool = False):
    """Paper-rule operation count of ``model(x)`` (one forward, no grad).

    Returns the total, or with ``by_type`` a dict {module type name: count}.
    """
    counts: dict[str, int] = {}

    def hook(module, inputs, out):
        name = type(module).__name__
        counts[name] = counts.get(name, 0) + _PAPER_COUNTERS[type(module)](module, inputs, out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if type(m) in _PAPER_COUNTERS]
    training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(x)
    finally:
        model.train(training)
        for h in handles:
            h.remove()
    return counts if by_type else sum(counts.values())


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, _bias, _stride, _padding, _dilation,
                         transposed, _output_padding, _groups, output_mask, out_shape=None,
                         **kwargs) -> int:
    """grad_input and grad_weight each cost the forward convolution's FLOPs (w_shape holds
    in_channels / groups, so this is right for grouped convolutions too)."""
    forward = conv_flop_count(x_shape, w_shape, grad_out_shape, transposed)
    return forward * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


FULL_RULE_OVERRIDES = {torch.ops.aten.convolution_backward: _conv_backward_flops}


def count_full_rule(fn, *args, **kwargs) -> int:
    """FLOPs of ``fn(*args, **kwargs)`` under FlopCounterMode (the call itself, plus any
    backward it runs)."""
    with FlopCounterMode(display=False, custom_mapping=FULL_RULE_OVERRIDES) as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def lr_size_for_output(scale: int, output=HD_OUTPUT) -> tuple[int, int]:
    """LR input size whose x``scale`` output covers ``output`` (720p by default): 180x320 for x4,
    240x427 for x3, 360x640 for x2."""
    return tuple(-(-s // scale) for s in output)


def _meta_model_and_input(variant, scale, lr_size, batch):
    check_config(scale, variant)
    with torch.device("meta"):
        return ASID(scale, variant), torch.empty(batch, 3, *lr_size)


@functools.lru_cache(maxsize=64)
def _model_flops(variant, scale, lr_size, batch, rule, train) -> int:
    model, x = _meta_model_and_input(variant, scale, lr_size, batch)
    if rule == "paper":
        return count_paper_rule(model, x)
    if not train:
        with torch.no_grad():
            return count_full_rule(model, x)
    return count_full_rule(lambda: model(x).sum().backward())


def model_flops(variant: str = "asid", scale: int = 4, lr_size=None, batch: int = 1,
                rule: str = "paper", train: bool = False) -> int:
    """Operation count of ASID (reference architecture) on a ``(batch, 3, *lr_size)`` input.

    rule "paper": thop-style MACs (see module docstring); "full": FlopCounterMode FLOPs.
    ``train`` (full rule only) adds the backward pass of a sum-of-outputs loss.
    lr_size defaults to the LR size of a 720p output.
    """
    if rule not in ("paper", "full"):
        raise ValueError(f"rule must be 'paper' or 'full', got {rule!r}")
    if rule == "paper" and train:
        raise ValueError("the paper rule counts inference only")
    lr_size = tuple(lr_size) if lr_size is not None else lr_size_for_output(scale)
    return _model_flops(variant, scale, lr_size, batch, rule, bool(train))


def padded_size(lr_size) -> tuple[int, int]:
    """The map size the model works at: LR size padded up to multiples of the window."""
    return tuple(-(-s // WINDOW) * WINDOW for s in lr_size)
