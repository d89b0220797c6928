"""The GPU candidates of ``asid-fast bench`` (``--gpu-candidates``) and kernel-launch counts.

Model candidates, beside the eager reference and fused models of :mod:`bench_cases`:

* ``graphs``: the fused model replaying a CUDA graph (:class:`asid_fast.GraphedModel`; captured
  at the first call), inference;
* ``ref-compile``: ``torch.compile(reference)`` with default options, inference and training;
* ``ref-compile-ro``: ``torch.compile(reference, mode="reduce-overhead")`` (inductor's code in
  CUDA graphs), inference;
* ``ref-compile-max``: ``torch.compile(reference, mode="max-autotune-no-cudagraphs")`` with the
  search capped (:data:`MAX_AUTOTUNE_CAP`), inference; its compile time is bounded by running it
  in its own ``asid-fast bench`` call under a time limit (bench/device_check.sh);
* ``fused-compile-ro``: ``torch.compile(fused, mode="reduce-overhead", fullgraph=True)``,
  inference and training (forward and backward replayed from CUDA graphs; the optimizer runs
  eagerly).

:func:`launch_counts` counts, for one call, the CUDA kernels that ran, the host calls that
launched work (kernel launches, CUDA-graph launches) and the top-level operators, from
``torch.profiler``.
"""
from __future__ import annotations

import copy

import torch

from ..cuda_graphs import GraphedModel

INFERENCE = ("graphs", "ref-compile", "ref-compile-ro", "ref-compile-max", "fused-compile-ro")
TRAIN_STEP = ("ref-compile", "fused-compile-ro")
CANDIDATES = INFERENCE
# inductor settings of "ref-compile-max": GEMM templates only among the autotuned choices (no
# convolution templates, whose search dominates the compile), the default search space
MAX_AUTOTUNE_CAP = {"max_autotune_conv_backends": "ATEN", "max_autotune_gemm_search_space":
                    "DEFAULT", "coordinate_descent_tuning": False}


def check(names) -> tuple:
    """``names`` if all are known candidates, else ValueError."""
    unknown = set(names) - set(CANDIDATES)
    if unknown:
        raise ValueError(f"unknown GPU candidates {sorted(unknown)}; choose from {CANDIDATES}")
    return tuple(names)


def compiled(model, name):
    """``model`` under the torch.compile of candidate ``name`` (a "*compile*" one)."""
    if name == "ref-compile":
        return torch.compile(model)
    if name == "ref-compile-ro":
        return torch.compile(model, mode="reduce-overhead")
    if name == "fused-compile-ro":
        return torch.compile(model, mode="reduce-overhead", fullgraph=True)
    return torch.compile(model, mode="max-autotune-no-cudagraphs", options=MAX_AUTOTUNE_CAP)


def _available(models: dict, x, names, skipped: list, title: str, mode: str):
    """(name, model) of the candidates ``names`` that can run on ``x``'s device; the others go
    to ``skipped``."""
    for name in names:
        model = models.get("reference" if name.startswith("ref-") else "fused")
        if model is None or x.device.type != "cuda":
            skipped.append({"name": title, "mode": mode, "backend": name,
                            "reason": "needs the fused model on a CUDA device" if model is None
                            else "a CUDA candidate"})
            continue
        yield name, model


def inference_candidates(models: dict, x, names, skipped: list, title: str) -> dict:
    """{label: zero-arg callable} of the inference candidates ``names`` on input ``x``
    (``models``: {"reference": ..., "fused": ...}); the unavailable ones go to ``skipped``."""
    calls = {}
    for name, model in _available(models, x, names, skipped, title, "inference"):
        run = GraphedModel(model) if name == "graphs" else compiled(model, name)
        calls[name] = _no_grad(run, x)
    return calls


def train_step_models(models: dict, x, names, skipped: list, title: str) -> dict:
    """{label: compiled copy of its model in training mode} of the training-step candidates
    among ``names``; the unavailable ones go to ``skipped``."""
    return {name: compiled(copy.deepcopy(model).train(), name)
            for name, model in _available(models, x, set(names) & set(TRAIN_STEP), skipped,
                                          title, "train_step")}


def _no_grad(run, x):
    def call():
        with torch.no_grad():
            out = run(x)
        return out.clone() if isinstance(out, torch.Tensor) else out  # cudagraph trees reuse it
    return call


def launch_counts(fn, device) -> dict | None:
    """For one call of ``fn`` on CUDA: {"kernels": CUDA kernels executed, "launch_calls": host
    calls launching kernels or CUDA graphs, "top_level_ops": operators called from Python};
    None elsewhere."""
    if device.type != "cuda":
        return None
    from torch.profiler import ProfilerActivity, profile

    torch.cuda.synchronize(device)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        fn()
        torch.cuda.synchronize(device)
    events = prof.events()
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA
                  and "memcpy" not in e.name.lower() and "memset" not in e.name.lower())
    launches = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CPU
                   and ("LaunchKernel" in e.name or e.name in ("cudaGraphLaunch",
                                                              "cuGraphLaunch")))
    top = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CPU
              and e.cpu_parent is None and "::" in e.name)
    return {"kernels": kernels, "launch_calls": launches, "top_level_ops": top}
