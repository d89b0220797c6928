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
import importlib
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .. import flops as FL
from ..reference import ASID
from . import bench_gpu

WINDOW = 8
CHANNELS = 48
BASELINE = "reference"


@dataclass
class Case:
    """One benchmark: the same work done by several candidates ({label: zero-arg callable})."""

    name: str
    kind: str  # "op" or "model"
    mode: str  # "fwd", "fwd+bwd", "inference", "train_step"
    shape: str
    candidates: dict
    flops: int | None = None
    bytes: int | None = None
    outputs: dict = field(default_factory=dict)  # label -> callable returning a comparable tensor
    # What the outputs are compared with: None = the baseline's output; for float16/bfloat16 op
    # cases, the baseline run in float32 on the same rounded inputs (the baseline's own rounding
    # would otherwise count as the candidates' error).
    truth: object = None


# ---- ops --------------------------------------------------------------------------------------

def _randn(shape, device, dtype, scale=1.0):
    return (torch.randn(shape, device="cpu", dtype=torch.float32) * scale).to(device, dtype)


def _window_attention(b, h, w, variant, device, dtype):
    mode, d = variant
    qkv = _randn((b, h, w, 3 * d), device, dtype)
    bias = _randn((WINDOW * WINDOW,) * 2, device, dtype, 0.1)
    return (qkv, bias), lambda qkv, bias: (*qkv.chunk(3, dim=-1), bias), {"mode": mode}


def _shared_window_attention(b, h, w, variant, device, dtype):
    mode, d = variant
    n = b * (h // WINDOW) * (w // WINDOW)
    attn = _randn((n, WINDOW * WINDOW, WINDOW * WINDOW), device, dtype).softmax(-1)
    v = _randn((b, h, w, d), device, dtype)
    return (attn, v), lambda attn, v: (attn, v), {"mode": mode}


def _channel_attention(b, h, w, variant, device, dtype):
    mode, c = variant
    qkv = _randn((b, h, w, 3 * c), device, dtype)
    temperature = torch.ones((1, 1, 1), device=device, dtype=dtype)
    return (qkv, temperature), lambda qkv, t: (*qkv.chunk(3, dim=-1), t), {"mode": mode}


def _layer_norm(b, h, w, variant, device, dtype):
    _, c = variant
    x = _randn((b, h, w, c), device, dtype)
    weight, bias = 1 + _randn((c,), device, dtype, 0.1), _randn((c,), device, dtype, 0.1)
    return (x, weight, bias), lambda x, wt, bs: (x, wt, bs, 1e-6), {}


def _depthwise_conv3x3(b, h, w, variant, device, dtype):
    epilogue, c = variant
    x = _randn((b, h, w, c), device, dtype)
    weight = _randn((c, 1, 3, 3), device, dtype, 1 / 3)
    if epilogue == "gelu":  # the local module's dw conv has a bias; the others have none
        bias = _randn((c,), device, dtype, 0.1)
        return (x, weight, bias), lambda x, wt, bs: (x, wt, bs), {"epilogue": epilogue}
    return (x, weight), lambda x, wt: (x, wt), {"epilogue": epilogue}


def _spatial_variants(dims):
    return [(mode, d) for mode in ("meso", "global") for d in dims]


@dataclass(frozen=True)
class OpSpec:
    """How to benchmark one public op: where it lives, its ASID variants, and its inputs.

    ``setup(b, h, w, variant, device, dtype)`` returns (leaf tensors, a function mapping the
    leaves to the op's positional arguments, keyword arguments).
    """

    module: str
    function: str
    variants: object  # dims -> [(label, size)]
    setup: object


OP_SPECS = (
    OpSpec("window_attention", "window_attention", _spatial_variants, _window_attention),
    OpSpec("window_attention", "shared_window_attention", _spatial_variants,
           _shared_window_attention),
    OpSpec("channel_attention", "channel_attention",
           lambda dims: [("window", CHANNELS), ("cell", CHANNELS)], _channel_attention),
    OpSpec("layer_norm", "layer_norm",
           lambda dims: [("channels", c) for c in dict.fromkeys((CHANNELS, *dims))], _layer_norm),
    OpSpec("depthwise_conv3x3", "depthwise_conv3x3",
           lambda dims: [("none", 3 * CHANNELS), ("gelu", CHANNELS), ("gate", 2 * CHANNELS)],
           _depthwise_conv3x3),
)


def find_op(spec: OpSpec):
    """The op function of ``spec`` in ``asid_fast.ops``, or None when it does not exist (yet)."""
    try:
        module = importlib.import_module(f"asid_fast.ops.{spec.module}")
    except ModuleNotFoundError:
        return None
    return getattr(module, spec.function, None)


def ops_without_case() -> list[str]:
    """Public ops of ``asid_fast.ops`` that no :data:`OP_SPECS` entry benchmarks."""
    import asid_fast.ops as ops

    covered = {s.function for s in OP_SPECS}
    return [name for name in getattr(ops, "__all__", ())
            if name not in covered and name not in ("BACKENDS", "available_backends")]


def _as_tuple(out):
    return tuple(out) if isinstance(out, (tuple, list)) else (out,)


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def _op_caller(op, leaves, to_args, kwargs, backend, train: bool):
    if not train:
        def call():
            with torch.no_grad():
                return _as_tuple(op(*to_args(*leaves), backend=backend, **kwargs))
        return call
    leaves = [t.detach().requires_grad_(True) for t in leaves]

    def call():
        outs = _as_tuple(op(*to_args(*leaves), backend=backend, **kwargs))
        grads = [torch.ones_like(o) for o in outs]
        return torch.autograd.grad(outs, leaves, grads)
    return call


def _op_cost(op, spec, b, h, w, variant, train):
    """(FLOPs, interface bytes) of one call, from the reference backend on meta tensors."""
    leaves, to_args, kwargs = spec.setup(b, h, w, variant, torch.device("meta"), torch.float32)
    call = _op_caller(op, leaves, to_args, kwargs, BASELINE, train)
    flop = FL.count_full_rule(call)
    with torch.no_grad():
        outs = _as_tuple(op(*to_args(*leaves), backend=BASELINE, **kwargs))
    args = [a for a in to_args(*leaves) if isinstance(a, torch.Tensor)]
    fwd_bytes = _nbytes(args) + _nbytes(outs)
    bwd_bytes = _nbytes(outs) + _nbytes(args) + _nbytes(outs) + _nbytes(leaves)
    return flop, fwd_bytes + (bwd_bytes if train else 0)


def op_case(spec: OpSpec, variant, mode: str, device, dtype, backends, bhw) -> Case:
    """The case of one op variant in one mode ("fwd" or "fwd+bwd") on a (B, H, W) map."""
    op = find_op(spec)
    b, h, w = bhw
    train = mode == "fwd+bwd"
    leaves, to_args, kwargs = spec.setup(b, h, w, variant, device, dtype)
    flop, nbytes = _op_cost(op, spec, b, h, w, variant, train)
    candidates = {be: _op_caller(op, leaves, to_args, kwargs, be, train)
                  for be in dict.fromkeys((BASELINE, *backends))}
    outputs = {be: (lambda c=c: c()[0]) for be, c in candidates.items()}
    truth = None
    if dtype in (torch.float16, torch.bfloat16):
        exact = _op_caller(op, [t.float() for t in leaves], to_args, kwargs, BASELINE, train)
        truth = lambda: exact()[0]  # noqa: E731
    return Case(f"{spec.function}[{variant[0]},{variant[1]}]", "op", mode, f"{b}x{h}x{w}",
                candidates, flop, nbytes, outputs, truth)


def op_cases(device, dtype, backends, infer_bhw, train_bhw, dims, skipped: list):
    """Yield the cases of every op spec whose function exists, every variant, "fwd" on the
    inference map and "fwd+bwd" on the training map (built one at a time, to bound memory).
    Ops that are missing or have no spec are appended to ``skipped``."""
    for spec in OP_SPECS:
        if find_op(spec) is None:
            skipped.append({"name": spec.function, "backend": "*",
                            "reason": f"asid_fast.ops.{spec.module}.{spec.function} not found"})
            continue
        for variant in spec.variants(dims):
            for mode, bhw in (("fwd", infer_bhw), ("fwd+bwd", train_bhw)):
                yield op_case(spec, variant, mode, device, dtype, backends, bhw)
    for name in ops_without_case():
        skipped.append({"name": name, "backend": "*",
                        "reason": "no benchmark case defined (add an OpSpec in "
                                  "asid_fast/tools/bench_cases.py)"})


# ---- models -----------------------------------------------------------------------------------

def fused_model_class():
    """(``asid_fast.model.ASID``, None), or (None, why it is unavailable)."""
    try:
        from ..model import ASID as FusedASID
    except ImportError as e:
        return None, f"asid_fast.model.ASID not importable ({e})"
    return FusedASID, None


def _models(variant, scale, device, dtype, fused_backend, skipped):
    """{label: model} with identical weights (the fused model only when it exists)."""
    torch.manual_seed(0)
    reference = ASID(scale, variant).to(device, dtype)
    models = {BASELINE: reference}
    fused_cls, why = fused_model_class()
    if fused_cls is None:
        skipped.append({"name": f"{variant}_x{scale}", "backend": "fused", "reason": why})
        return models
    try:
        fused = fused_cls(scale, variant, backend=fused_backend)
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


def _allow_recompiles():
    import torch._dynamo.config as dynamo_config

    name = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") else "cache_size_limit"
    setattr(dynamo_config, name, max(getattr(dynamo_config, name), DYNAMO_RECOMPILE_LIMIT))


def model_cases(variant, scale, device, dtype, lr_hw, train_bhw, compile_models: bool,
                modes, skipped: list, fused_backend: str = "auto", gpu_candidates=()):
    """Yield inference at ``lr_hw`` (batch 1) and one training step (L1 loss, Adam) on
    ``train_bhw`` LR patches, for the reference and fused models (the latter with op backend
    ``fused_backend``), eager and ``torch.compile`` (default options, recompile limit raised to
    :data:`DYNAMO_RECOMPILE_LIMIT`), and the ``gpu_candidates`` of :mod:`bench_gpu`. Training
    candidates work on their own copy of the weights."""
    if compile_models or gpu_candidates:
        _allow_recompiles()
    models = _models(variant, scale, device, dtype, fused_backend, skipped)
    title = f"{variant}_x{scale}"
    if "inference" in modes:
        x = torch.rand((1, 3, *lr_hw), generator=torch.Generator().manual_seed(1)).to(device, dtype)
        candidates = {}
        for label, model in models.items():
            model.eval()
            runs = {label: model}
            if compile_models:
                runs[label + "+compile"] = torch.compile(model)
            for name, m in runs.items():
                candidates[name] = (lambda m=m: _no_grad_call(m, x))
        candidates.update(bench_gpu.inference_candidates(models, x, gpu_candidates, skipped, title))
        flop = FL.model_flops(variant, scale, lr_hw, 1, rule="full")
        yield Case(title, "model", "inference", f"1x3x{lr_hw[0]}x{lr_hw[1]}", candidates, flop,
                   None, outputs=dict(candidates))
    if "train_step" in modes:
        b, h, w = train_bhw
        gen = torch.Generator().manual_seed(2)
        x = torch.rand((b, 3, h, w), generator=gen).to(device, dtype)
        target = torch.rand((b, 3, h * scale, w * scale), generator=gen).to(device, dtype)
        candidates = {}
        for label, model in models.items():
            variants = {label: copy.deepcopy(model).train()}
            if compile_models:
                variants[label + "+compile"] = torch.compile(copy.deepcopy(model).train())
            for name, m in variants.items():
                candidates[name] = _train_step(m, x, target)
        for name in set(gpu_candidates) & set(bench_gpu.TRAIN_STEP):
            model = copy.deepcopy(models[BASELINE]).train()
            candidates[name] = _train_step(bench_gpu.compiled(model, name), x, target)
        flop = FL.model_flops(variant, scale, (h, w), b, rule="full", train=True)
        yield Case(title, "model", "train_step", f"{b}x3x{h}x{w}", candidates, flop, None)


def _no_grad_call(model, x):
    with torch.no_grad():
        return model(x)
