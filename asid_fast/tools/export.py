"""``asid-fast export``: ASID as an ONNX file for onnxruntime, TensorRT and other ONNX runtimes,
checked in onnxruntime against the fused model before it is written.

The graph is the model with ``backend="reference"``: the fused operators' plain-PyTorch
reference decompositions, which lower to standard ONNX ops (the C++/CUDA/Triton kernels have no
ONNX form). Batch, height and width are dynamic; the pad to a multiple of the window and the
final crop are in the graph. Input ``lr`` (B, 3, H, W), H, W >= 9, RGB on the [-1, 1] scale;
output ``sr`` (B, 3, s*H, s*W) on the same scale, not clipped.

Exporter: the TorchScript-based one (``dynamo=False``). With dynamic height and width, torch
2.13's ``dynamo=True`` exporter spent over 15 minutes in symbolic shape reasoning on the window
partitions without finishing; with fixed shapes it took about 54 s (this one: 4-8 s, all
dynamic). It also needs onnxscript, an extra dependency. The TorchScript exporter is deprecated
upstream (it warns it will be removed); its warnings are silenced here because the onnxruntime
check below is what vouches for the file.

Opset: the default :data:`MIN_OPSET` (11) is the lowest that exports; opsets 9 and 10 have no
Pad with pads computed at run time, which the dynamic pad to the window needs.
"""
from __future__ import annotations

import importlib.util
import warnings
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import torch

from .. import shipped_weights
from . import runtime
from .atomic import atomic_path
from .errors import UserError

MIN_OPSET = 11
# the TorchScript exporter's newest opset (torch.onnx._constants.ONNX_TORCHSCRIPT_EXPORTER_MAX_OPSET)
MAX_OPSET = 20
TRACE_SHAPE = (1, 3, 16, 16)
# (B, 3, H, W) LR sizes of the onnxruntime check: other than the traced size in batch, height,
# width and pad, so the dynamic axes are exercised
CHECK_SHAPES = ((1, 3, 21, 30), (2, 3, 12, 9))
TOLERANCE = {False: 1e-4, True: 1e-2}  # max |onnxruntime - fused| on the [-1, 1] scale, by fp16
NEEDS = ("onnx", "onnxruntime")
NAMES = {"asid": "ASID", "asid_d8": "ASID-D8"}
# the pin keeps pip from replacing the installed torch
INSTALL = f"pip install --no-build-isolation -e '.[onnx]' torch=={torch.__version__.split('+')[0]}"


def check_options(out, opset: int, scale: int, variant: str, weights) -> None:
    """UserError for a bad option, before any work."""
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"export needs {' and '.join(missing)}; install the onnx extra: {INSTALL}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise UserError(f"--opset must be between {MIN_OPSET} and {MAX_OPSET}, got {opset} "
                        f"(ASID's dynamic padding needs opset {MIN_OPSET}; {MAX_OPSET} is the "
                        "exporter's newest)")
    out = Path(out)
    if out.is_dir():
        raise UserError(f"cannot write {out}: it is a folder")
    existing = next(p for p in out.parents if p.exists())
    if not existing.is_dir():
        raise UserError(f"cannot write {out}: {existing} is a file, not a folder")
    if out.suffix.lower() != ".onnx":
        raise UserError(f"--onnx must name a .onnx file, got {out}")
    try:
        from ..reference.model import check_config

        check_config(scale, variant)
    except ValueError as e:
        raise UserError(str(e)) from None
    if weights is not None:
        runtime.checkpoint_file(weights)
        return
    try:
        shipped_weights.weights_path(scale, variant)
    except FileNotFoundError:
        raise UserError(f"{NAMES[variant]} x{scale} has no shipped weights: pass --weights FILE "
                        "(a checkpoint or a training run folder)") from None


def load_models(scale, variant, weights):
    """(fused model on the CPU, the same weights with backend="reference"), both eval float32."""
    fused, _, _ = runtime.prepare_model(scale, variant, weights, "auto", "cpu", "fp32")
    reference = runtime.build_model(scale, variant, "reference")
    reference.load_state_dict(fused.state_dict())
    return fused, reference.eval()


def write_onnx(model, path, opset: int, fp16: bool) -> None:
    """Export ``model`` (float32 reference) to ``path`` with dynamic batch, height and width."""
    model = model.half() if fp16 else model
    x = torch.rand(TRACE_SHAPE, dtype=torch.float16 if fp16 else torch.float32) * 2 - 1
    axes = {"lr": {0: "batch", 2: "height", 3: "width"},
            "sr": {0: "batch", 2: "out_height", 3: "out_width"}}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the exporter's deprecation notices
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # the model's input checks
        torch.onnx.export(model, (x,), str(path), dynamo=False, opset_version=opset,
                          input_names=["lr"], output_names=["sr"], dynamic_axes=axes)


def describe(path, scale: int, variant: str, fp16: bool) -> None:
    """Check ``path`` against the ONNX spec and record what it is in its metadata."""
    import onnx

    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    info = {"model": "ASID", "variant": variant, "scale": str(scale),
            "dtype": "float16" if fp16 else "float32", "value_range": "[-1, 1]",
            "layout": "NCHW RGB, H and W >= 9", "producer": "asid-fast export"}
    onnx.helper.set_model_props(model, info)
    onnx.save(model, str(path))


def check_onnxruntime(path, fused, fp16: bool) -> list[tuple[tuple, float]]:
    """Run ``path`` in onnxruntime and ``fused`` on :data:`CHECK_SHAPES` (seeded inputs in
    [-1, 1]); returns (shape, max |difference|) per shape, UserError past the tolerance."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    gen = torch.Generator().manual_seed(0)
    results = []
    for shape in CHECK_SHAPES:
        x = torch.rand(shape, generator=gen) * 2 - 1
        with torch.no_grad():
            want = fused(x).numpy()
        feed = x.half() if fp16 else x
        got = session.run(["sr"], {"lr": feed.numpy()})[0]
        if got.shape != want.shape:
            raise UserError(f"onnxruntime gave shape {got.shape} for input {shape}, the fused "
                            f"model {want.shape}; nothing written")
        diff = float(np.abs(got.astype(np.float32) - want).max())
        if not diff <= TOLERANCE[fp16]:
            raise UserError(f"onnxruntime differs from the fused model by {diff:.3g} for input "
                            f"{shape} (limit {TOLERANCE[fp16]:g}); nothing written")
        results.append((shape, diff))
    return results


def fused_backend() -> str:
    """The backend the fused model runs on the CPU here ("cpu": the C++ kernels)."""
    from ..ops import available_backends

    return "cpu" if "cpu" in available_backends("cpu") else "reference"


def export(out, scale: int, variant="asid", weights=None, opset=MIN_OPSET, fp16=False) -> list:
    """Write ASID (``weights``, default: shipped) to the ONNX file ``out`` once onnxruntime
    matches the fused model; returns the check's (shape, max |difference|) pairs."""
    check_options(out, opset, scale, variant, weights)
    with ExitStack() as stack:
        try:
            tmp = stack.enter_context(atomic_path(out))  # makes its temp file now: fails early
        except OSError as e:
            raise UserError(f"cannot write {out}: {e.strerror or e}") from None
        fused, reference = load_models(scale, variant, weights)
        write_onnx(reference, tmp, opset, fp16)
        describe(tmp, scale, variant, fp16)
        return check_onnxruntime(tmp, fused, fp16)


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="write ASID as an ONNX file (checked in onnxruntime)",
                              description="Export ASID to ONNX with dynamic batch, height and "
                                          "width, and check it in onnxruntime against the fused "
                                          "model at two sizes before writing it.")
    p.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
    p.add_argument("--variant", default="asid", choices=("asid", "asid_d8"))
    p.add_argument("--weights", help="checkpoint file or training run folder (default: shipped "
                                     "weights; ASID-D8 has none shipped)")
    p.add_argument("--onnx", required=True, dest="out", metavar="OUT.onnx",
                   help="the ONNX file to write")
    p.add_argument("--opset", type=int, default=MIN_OPSET,
                   help=f"ONNX opset, {MIN_OPSET}-{MAX_OPSET} (default {MIN_OPSET}, the lowest "
                        "that works)")
    p.add_argument("--fp16", action="store_true",
                   help="float16 weights, input and output (checked within 1e-2)")
    p.set_defaults(handler=_run)


def _run(args):
    results = export(args.out, args.scale, args.variant, args.weights, args.opset, args.fp16)
    dtype = "float16" if args.fp16 else "float32"
    print(f"wrote {args.out}: {NAMES[args.variant]} x{args.scale}, {dtype}, opset {args.opset}"
          f"{' (the lowest that works)' if args.opset == MIN_OPSET else ''}, dynamic batch, "
          "height and width (H, W >= 9), input 'lr' and output 'sr' on the [-1, 1] scale")
    checks = ", ".join(f"{'x'.join(map(str, shape))}: {diff:.2g}" for shape, diff in results)
    print(f"onnxruntime vs the fused model (backend {fused_backend()}), largest |difference| "
          f"per input: {checks} (limit {TOLERANCE[args.fp16]:g})")
