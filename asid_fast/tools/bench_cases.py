"""What ``asid-fast bench`` measures: per-op and per-model cases, each a set of candidate
callables (one per backend or model variant) doing the same work on the same inputs.

Op cases run at ASID's real shapes: ``fwd`` on the inference map (batch 1, the padded LR size),
``fwd+bwd`` on the training map (batch 16 of 64x64 by default), for every width the model uses.
Inputs are laid out as the model produces them (q, k, v as channel slices of one projection).

FLOPs follow the full rule of :mod:`asid_fast.flops`, counted once on the reference backend with
``meta`` tensors (no arithmetic). Bytes follow the interface model: the forward reads every input
and writes every output once; the backward reads the output gradients, the inputs and the outputs
and writes the input gradients. Models get no byte count.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .. import flops as FL
from .. import ops
from ..model import ASID as FusedASID
from ..reference import ASID
from . import bench_gpu, bench_onnx

WINDOW = 8
CHANNELS = 48
BASELINE = "reference"


@dataclass
class Case:
    """One benchmark: the same work done by several candidates ({label: zero-arg callable})."""

    name: str
    kind: str  # "op", "model" or "gemm"
    mode: str  # "fwd", "fwd+bwd", "inference", "train_step"
    shape: str
    candidates: dict
    flops: int | None = None
    bytes: int | None = None
    # a candidate's return value -> the tensor compared between candidates (None: no comparison)
    output: object = None
    # What the outputs are compared with: None = the baseline's output; for float16/bfloat16 op
    # cases, a zero-argument callable returning the baseline's output in float32 on the same
    # rounded inputs (the baseline's own rounding would otherwise count as the candidates' error).
    truth: object = None
    baseline: str = BASELINE  # the candidate the others are compared with
    # candidates that allocate outside torch's allocator (their peak memory is not measured)
    foreign: tuple = ()


# ---- ops --------------------------------------------------------------------------------------

def _randn(shape, device, dtype, scale=1.0):
    return (torch.randn(shape, device="cpu", dtype=torch.float32) * scale).to(device, dtype)


def _window_attention(b, h, w, variant, device, dtype):
    mode, d = variant
    qkv = _randn((b, h, w, 3 * d), device, dtype)
    bias = _randn((WINDOW * WINDOW,) * 2, device, dtype, 0.1)
    return (qkv, bias), lambda qkv, bias: ((*qkv.chunk(3, dim=-1), bias), {"mode": mode})


def _shared_window_attention(b, h, w, variant, device, dtype):
    mode, d = variant
    n = b * (h // WINDOW) * (w // WINDOW)
    attn = _randn((n, WINDOW * WINDOW, WINDOW * WINDOW), device, dtype).softmax(-1)
    v = _randn((b, h, w, d), device, dtype)
    return (attn, v), lambda attn, v: ((attn, v), {"mode": mode})


def _attention_block(b, h, w, variant, device, dtype):
    """The attention half of a computing SAM: LayerNorm, qkv, window attention, projection,
    residual."""
    mode, d = variant
    x = _randn((b, h, w, d), device, dtype)
    nw, nb = 1 + _randn((d,), device, dtype, 0.1), _randn((d,), device, dtype, 0.1)
    w_qkv, w_out = _randn((3 * d, d), device, dtype, d ** -0.5), _randn((d, d), device, dtype,
                                                                          d ** -0.5)
    bias = _randn((WINDOW * WINDOW,) * 2, device, dtype, 0.1)
    return (x, nw, nb, w_qkv, bias, w_out), lambda x, nw, nb, wq, bias, wo: (
        (x, (nw, nb, 1e-5), wq, bias, wo), {"mode": mode})


def _shared_attention_block(b, h, w, variant, device, dtype):
    """The attention half of a sharing SAM: LayerNorm, v, the stored attention, projection,
    residual."""
    mode, d = variant
    x = _randn((b, h, w, d), device, dtype)
    nw, nb = 1 + _randn((d,), device, dtype, 0.1), _randn((d,), device, dtype, 0.1)
    w_v, w_out = _randn((d, d), device, dtype, d ** -0.5), _randn((d, d), device, dtype, d ** -0.5)
    n = b * (h // WINDOW) * (w // WINDOW)
    attn = _randn((n, WINDOW * WINDOW, WINDOW * WINDOW), device, dtype).softmax(-1)
    return (x, nw, nb, w_v, attn, w_out), lambda x, nw, nb, wv, attn, wo: (
        (x, (nw, nb, 1e-5), wv, attn, wo), {"mode": mode})


def _channel_attention(b, h, w, variant, device, dtype):
    mode, c = variant
    qkv = _randn((b, h, w, 3 * c), device, dtype)
    temperature = torch.ones((1, 1, 1), device=device, dtype=dtype)
    return (qkv, temperature), lambda qkv, t: ((*qkv.chunk(3, dim=-1), t), {"mode": mode})


def _layer_norm(b, h, w, variant, device, dtype):
    _, c = variant
    x = _randn((b, h, w, c), device, dtype)
    weight, bias = 1 + _randn((c,), device, dtype, 0.1), _randn((c,), device, dtype, 0.1)
    return (x, weight, bias), lambda x, wt, bs: ((x, wt, bs, 1e-6), {})


def _depthwise_conv3x3(b, h, w, variant, device, dtype):
    epilogue, c = variant
    x = _randn((b, h, w, c), device, dtype)
    weight = _randn((c, 1, 3, 3), device, dtype, 1 / 3)
    if epilogue == "gelu":  # the local module's dw conv has a bias; the others have none
        bias = _randn((c,), device, dtype, 0.1)
        return (x, weight, bias), lambda x, wt, bs: ((x, wt, bs), {"epilogue": epilogue})
    return (x, weight), lambda x, wt: ((x, wt), {"epilogue": epilogue})


def _conv_chain(b, h, w, variant, device, dtype):
    """The model's chains at width c: "gate" the gated FFN (norm, 1x1 to 2c, dw 3x3 + GELU gate,
    1x1 + residual), "gelu" the local module's (1x1 + bias + GELU, dw 3x3 + bias + GELU), "qkv"
    the spatial attention's projection (norm, 1x1 to 3c), "dw" one of channel attention's q, k,
    v (norm, 1x1, dw 3x3)."""
    kind, c = variant
    x = _randn((b, h, w, c), device, dtype)
    n_in = {"gate": 2 * c, "gelu": c, "qkv": 3 * c, "dw": c}[kind]
    w_in = _randn((n_in, c), device, dtype, c ** -0.5)
    w_dw = _randn((n_in, 1, 3, 3), device, dtype, 1 / 3)
    norm = (1 + _randn((c,), device, dtype, 0.1), _randn((c,), device, dtype, 0.1))
    if kind == "gate":
        w_out = _randn((c, c), device, dtype, c ** -0.5)
        return ((x, w_in, w_dw, *norm, w_out), lambda x, wi, wd, nw, nb, wo: (
            (x, wi, wd), {"norm": (nw, nb, 1e-6), "epilogue": "gate", "w_out": wo}))
    if kind == "gelu":
        b_in, b_dw = _randn((c,), device, dtype, 0.1), _randn((c,), device, dtype, 0.1)
        return ((x, w_in, w_dw, b_in, b_dw), lambda x, wi, wd, bi, bd: (
            (x, wi, wd), {"b_in": bi, "gelu_in": True, "b_dw": bd, "epilogue": "gelu"}))
    if kind == "qkv":
        return ((x, w_in, *norm), lambda x, wi, nw, nb: (
            (x, wi, None), {"norm": (nw, nb, 1e-6)}))
    return ((x, w_in, w_dw, *norm), lambda x, wi, wd, nw, nb: (
        (x, wi, wd), {"norm": (nw, nb, 1e-6)}))


def _linear(b, h, w, variant, device, dtype):
    """The model's per-pixel maps at width c: "residual" (to_out, project_out, res_end: no bias,
    a residual), "cat4" (pw3: four c/4-channel inputs read in place, a bias), "per_image" (the
    local module's conv_out with the squeeze-excitation scale folded into one matrix per image,
    a bias, a residual)."""
    kind, c = variant
    x = _randn((b, h, w, c), device, dtype)
    bias = _randn((c,), device, dtype, 0.1)
    residual = _randn((b, h, w, c), device, dtype)
    if kind == "residual":
        weight = _randn((c, c), device, dtype, c ** -0.5)
        return (x, weight, residual), lambda x, wt, r: (([x], wt, None, r), {})
    if kind == "cat4":
        weight = _randn((c, c), device, dtype, c ** -0.5)
        return (x, weight, bias), lambda x, wt, bs: ((list(x.chunk(4, dim=-1)), wt, bs), {})
    weight = _randn((b, c, c), device, dtype, c ** -0.5)
    return (x, weight, bias, residual), lambda x, wt, bs, r: (([x], wt, bs, r), {})


def _spatial_variants(dims):
    return [(mode, d) for mode in ("meso", "global") for d in dims]


@dataclass(frozen=True)
class OpSpec:
    """How to benchmark one public op of ``asid_fast.ops``: its ASID variants and its inputs.

    ``variants(dims)`` lists (label, width) pairs; ``setup(b, h, w, variant, device, dtype)``
    returns (leaf tensors, a function mapping the leaves to the op's (positional arguments,
    keyword arguments)).
    """

    function: str
    variants: object
    setup: object


def _widths(*widths):
    return tuple(dict.fromkeys(widths))


OP_SPECS = (
    OpSpec("attention_block", _spatial_variants, _attention_block),
    OpSpec("shared_attention_block", _spatial_variants, _shared_attention_block),
    OpSpec("window_attention", _spatial_variants, _window_attention),
    OpSpec("shared_window_attention", _spatial_variants, _shared_window_attention),
    OpSpec("channel_attention", lambda dims: [("window", CHANNELS), ("cell", CHANNELS)],
           _channel_attention),
    OpSpec("layer_norm", lambda dims: [("channels", c) for c in _widths(CHANNELS, *dims)],
           _layer_norm),
    OpSpec("depthwise_conv3x3",
           lambda dims: [("none", 3 * CHANNELS), ("gelu", CHANNELS), ("gate", 2 * CHANNELS)],
           _depthwise_conv3x3),
    OpSpec("conv_chain", lambda dims: [("gate", c) for c in _widths(CHANNELS, *dims)]
           + [("gelu", CHANNELS), ("dw", CHANNELS)] + [("qkv", d) for d in dims], _conv_chain),
    OpSpec("linear", lambda dims: [("residual", CHANNELS), ("cat4", CHANNELS),
                                   ("per_image", CHANNELS)], _linear),
)
MODES = ("fwd", "fwd+bwd")


def op_function(spec: OpSpec):
    return getattr(ops, spec.function)


def ops_without_case() -> list[str]:
    """Public ops of ``asid_fast.ops`` that no :data:`OP_SPECS` entry benchmarks."""
    covered = {s.function for s in OP_SPECS}
    return [name for name in ops.__all__ if name not in covered and name not in ops.PACKAGE_NAMES]


def op_plan(dims, names=None) -> list:
    """(spec, variant, mode) of every op case, in run order; ``names``: only these ops."""
    unknown = set(names or ()) - {s.function for s in OP_SPECS}
    if unknown:
        raise ValueError(f"no benchmark case for ops {sorted(unknown)}; choose from "
                         f"{[s.function for s in OP_SPECS]}")
    return [(spec, variant, mode) for spec in OP_SPECS if names is None or spec.function in names
            for variant in spec.variants(dims) for mode in MODES]


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _tensors(value) -> list:
    """The tensors in ``value`` (nested tuples, lists and dicts)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, dict):
        return _tensors(list(value.values()))
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    return []


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _op_caller(op, leaves, bind, backend, train: bool):
    def run(leaves):
        args, kwargs = bind(*leaves)
        return _as_tuple(op(*args, backend=backend, **kwargs))

    if not train:
        def call():
            with torch.no_grad():
                return run(leaves)
        return call
    leaves = [t.detach().requires_grad_(True) for t in leaves]

    def call():
        outs = run(leaves)
        grads = [torch.ones_like(o) for o in outs]
        return torch.autograd.grad(outs, leaves, grads)
    return call


def _op_cost(op, spec, b, h, w, variant, train):
    """(FLOPs, interface bytes) of one call, from the reference backend on meta tensors."""
    leaves, bind = spec.setup(b, h, w, variant, torch.device("meta"), torch.float32)
    flop = FL.count_full_rule(_op_caller(op, leaves, bind, BASELINE, train))
    with torch.no_grad():
        args, kwargs = bind(*leaves)
        outs = _as_tuple(op(*args, backend=BASELINE, **kwargs))
    args = _tensors((args, kwargs))
    fwd_bytes = _nbytes(args) + _nbytes(outs)
    bwd_bytes = _nbytes(outs) + _nbytes(args) + _nbytes(outs) + _nbytes(leaves)
    return flop, fwd_bytes + (bwd_bytes if train else 0)


def op_case(spec: OpSpec, variant, mode: str, device, dtype, backends, bhw) -> Case:
    """The case of one op variant in one mode ("fwd" or "fwd+bwd") on a (B, H, W) map."""
    op = op_function(spec)
    b, h, w = bhw
    train = mode == "fwd+bwd"
    leaves, bind = spec.setup(b, h, w, variant, device, dtype)
    flop, nbytes = _op_cost(op, spec, b, h, w, variant, train)
    candidates = {be: _op_caller(op, leaves, bind, be, train)
                  for be in dict.fromkeys((BASELINE, *backends))}
    truth = None
    if dtype in (torch.float16, torch.bfloat16):
        exact = _op_caller(op, [t.float() for t in leaves], bind, BASELINE, train)
        truth = lambda: exact()[0]  # noqa: E731
    return Case(f"{spec.function}[{variant[0]},{variant[1]}]", "op", mode, f"{b}x{h}x{w}",
                candidates, flop, nbytes, output=lambda r: r[0], truth=truth)


# ---- the GEMM the model's rate is compared with -------------------------------------------------

# M x K x N: a 1x1 convolution from 48 to 96 channels (the gated FFN's project_in) on the
# 180x320 pixels of a 720p x4 input, as one fp32 torch.mm
GEMM_SHAPE = (57600, 48, 96)
GEMM = "torch.mm"


def gemm_case(device) -> Case:
    """The fp32 GEMM of :data:`GEMM_SHAPE` (one candidate, :data:`GEMM`; output preallocated)."""
    m, k, n = GEMM_SHAPE
    a, b = _randn((m, k), device, torch.float32), _randn((k, n), device, torch.float32)
    out = torch.empty((m, n), device=device)
    return Case("gemm_1x1conv", "gemm", "fwd", "x".join(map(str, GEMM_SHAPE)),
                {GEMM: lambda: torch.mm(a, b, out=out)}, 2 * m * k * n,
                4 * (m * k + k * n + m * n), baseline=GEMM)


# ---- models -----------------------------------------------------------------------------------

def _models(variant, scale, device, dtype, fused_backend, skipped):
    """{label: model} with identical weights (the fused model only when ``fused_backend`` can
    run it)."""
    torch.manual_seed(0)
    reference = ASID(scale, variant).to(device, dtype)
    models = {BASELINE: reference}
    try:
        fused = FusedASID(scale, variant, backend=fused_backend)
        fused.load_state_dict(reference.state_dict())
    except (ValueError, RuntimeError) as e:
        skipped.append({"name": f"{variant}_x{scale}", "backend": "fused",
                        "reason": f"{type(e).__name__}: {e}"})
        return models
    models["fused"] = fused.to(device, dtype)
    return models


def _train_step(model, x, target):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = F.l1_loss(model(x), target)
        loss.backward()
        optimizer.step()
        return loss
    return step


# torch.compile re-traces ASID's block code per attention width and module; dynamo's default limit
# of 8 recompiles per code object sends the later blocks back to eager, so it is raised.
DYNAMO_RECOMPILE_LIMIT = 64
# the other runtimes ``compare`` may add: torch.compile of each model, onnxruntime running the
# exported reference (inference on the CPU), and the CUDA candidates of bench_gpu
COMPARE = ("compile", "onnxruntime", *bench_gpu.CANDIDATES)
ORT = "onnxruntime"


def _allow_recompiles():
    import torch._dynamo.config as dynamo_config

    name = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"
    setattr(dynamo_config, name, max(getattr(dynamo_config, name), DYNAMO_RECOMPILE_LIMIT))


def model_case(variant, scale, mode, device, dtype, lr_hw, train_bhw, compare=(),
               skipped=None, fused_backend="auto") -> Case:
    """``mode`` "inference": one call at ``lr_hw`` (batch 1); "train_step": one training step (L1
    loss, Adam) on ``train_bhw`` LR patches, each candidate on its own copy of the weights. The
    candidates: the reference and fused models (the latter with op backend ``fused_backend``),
    and with ``compare`` (a subset of :data:`COMPARE`) their ``torch.compile`` (default options,
    recompile limit raised to :data:`DYNAMO_RECOMPILE_LIMIT`), for inference on the CPU
    onnxruntime, and on CUDA the candidates of :mod:`bench_gpu`. Unavailable candidates are
    appended to ``skipped``."""
    skipped = [] if skipped is None else skipped
    gpu = [c for c in compare if c in bench_gpu.CANDIDATES]
    if "compile" in compare or gpu:
        _allow_recompiles()
    models = _models(variant, scale, device, dtype, fused_backend, skipped)
    title = f"{variant}_x{scale}"
    if mode == "inference":
        return _inference_case(title, variant, scale, models, device, dtype, lr_hw, compare,
                               skipped, gpu)
    if mode != "train_step":
        raise ValueError(f"model mode must be inference or train_step, got {mode!r}")
    if ORT in compare:
        skipped.append({"name": title, "mode": mode, "backend": ORT,
                        "reason": "the onnxruntime candidate runs inference only"})
    b, h, w = train_bhw
    gen = torch.Generator().manual_seed(2)
    x = torch.rand((b, 3, h, w), generator=gen).to(device, dtype)
    target = torch.rand((b, 3, h * scale, w * scale), generator=gen).to(device, dtype)
    candidates = {}
    for label, model in models.items():
        runs = {label: copy.deepcopy(model).train()}
        if "compile" in compare:
            runs[label + "+compile"] = torch.compile(copy.deepcopy(model).train())
        for name, m in runs.items():
            candidates[name] = _train_step(m, x, target)
    for name, model in bench_gpu.train_step_models(models, x, gpu, skipped, title).items():
        candidates[name] = _train_step(model, x, target)
    flop = FL.model_flops(variant, scale, (h, w), b, rule="full", train=True)
    return Case(title, "model", "train_step", f"{b}x3x{h}x{w}", candidates, flop, None)


def _inference_case(title, variant, scale, models, device, dtype, lr_hw, compare, skipped, gpu):
    x = torch.rand((1, 3, *lr_hw), generator=torch.Generator().manual_seed(1)).to(device, dtype)
    candidates = {}
    for label, model in models.items():
        model.eval()
        runs = {label: model}
        if "compile" in compare:
            runs[label + "+compile"] = torch.compile(model)
        for name, m in runs.items():
            candidates[name] = (lambda m=m: _no_grad_call(m, x))
    if ORT in compare:
        why = bench_onnx.why_unavailable(device, dtype)
        if why is None:
            candidates[ORT] = bench_onnx.runner(models[BASELINE], x)
        else:
            skipped.append({"name": title, "mode": "inference", "backend": ORT, "reason": why})
    candidates.update(bench_gpu.inference_candidates(models, x, gpu, skipped, title))
    flop = FL.model_flops(variant, scale, lr_hw, 1, rule="full")
    return Case(title, "model", "inference", f"1x3x{lr_hw[0]}x{lr_hw[1]}", candidates, flop,
                None, output=lambda r: r, foreign=(ORT,))


def _no_grad_call(model, x):
    with torch.no_grad():
        return model(x)
