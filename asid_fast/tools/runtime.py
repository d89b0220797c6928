"""What the tools share to run a model: device and dtype choice, building the model (fused when
available), loading weights, and the value range the model works in."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from .errors import UserError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

# The authors train and test with images normalised to [-1, 1] (torchvision Normalize(0.5, 0.5)
# in Omni-SR's data loaders, which ASID reuses) and map outputs back with (y + 1) / 2. Shipped
# weights and our training use the same convention.
MODEL_RANGE = (-1.0, 1.0)


def to_model(x01: torch.Tensor) -> torch.Tensor:
    """Map images in [0, 1] to the model's input range."""
    lo, hi = MODEL_RANGE
    return x01 * (hi - lo) + lo


def from_model(y: torch.Tensor) -> torch.Tensor:
    """Map model outputs back to [0, 1] (not clipped)."""
    lo, hi = MODEL_RANGE
    return (y - lo) / (hi - lo)


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` -> cuda if available, else cpu; otherwise a validated torch device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise UserError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"device {name!r} does not exist ({torch.cuda.device_count()} CUDA devices)")
    elif device.type != "cpu":
        raise UserError(f"unsupported device {name!r}; use auto, cpu, cuda or cuda:N")
    return device


def cpu_bf16_products(name: str, device: torch.device) -> bool:
    """Whether ``--dtype name`` on ``device`` means float32 maps with bf16 products (bf16 on the
    CPU)."""
    return name == "bf16" and device.type == "cpu"


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """The dtype of the maps for ``--dtype name``: fp32 anywhere; bf16/fp16 on CUDA; bf16 on the
    CPU keeps float32 maps with bf16 products (:func:`enable_cpu_bf16_products`)."""
    if cpu_bf16_products(name, device):
        return enable_cpu_bf16_products()
    if name not in DTYPES:
        raise UserError(f"--dtype must be one of {sorted(DTYPES)}, got {name!r}")
    if name != "fp32" and device.type != "cuda":
        raise UserError(f"--dtype {name} is only supported on CUDA devices; "
                        f"use --dtype fp32 on {device.type}")
    return DTYPES[name]


def build_model(scale: int, variant: str = "asid", backend: str = "auto") -> torch.nn.Module:
    """The fused ``asid_fast.model.ASID`` when it is installed, else the reference model."""
    from ..reference.model import check_config

    try:
        check_config(scale, variant)
    except ValueError as e:
        raise UserError(str(e)) from None
    try:
        from ..model import ASID as FusedASID
    except ModuleNotFoundError as e:
        if e.name != f"{__package__.rsplit('.', 1)[0]}.model":
            raise
        if backend not in ("auto", "reference"):
            raise UserError(f"backend {backend!r} needs the fused model (asid_fast.model), "
                            "which is not installed; use --backend reference") from None
        from ..reference import ASID

        return ASID(scale, variant)
    try:
        return FusedASID(scale, variant, backend=backend)
    except (ValueError, RuntimeError) as e:
        raise UserError(str(e)) from None


def check_backend(backend: str, device: torch.device) -> None:
    """UserError unless ``backend`` is "auto" or usable on ``device``."""
    if backend == "auto":
        return
    from ..ops import BACKENDS, available_backends

    if backend not in BACKENDS:
        raise UserError(f"--backend must be one of {BACKENDS}, got {backend!r}")
    usable = available_backends(device)
    if backend not in usable:
        raise UserError(f"backend {backend!r} cannot run on {device} here; usable: {', '.join(usable)}")


def default_weights(scale: int, variant: str = "asid") -> Path:
    """Path of the weights shipped for (scale, variant), checked against their sha256 and
    announced on stderr; UserError if none ship or the file is damaged."""
    from ..checkpoint import CheckpointError
    from ..shipped_weights import verified_path

    try:
        path = verified_path(scale, variant)
    except FileNotFoundError as e:
        raise UserError(f"{e}: pass --weights FILE") from None
    except CheckpointError as e:
        raise UserError(str(e)) from None
    print(f"using the shipped weights {path.name} (trained by asid_fast; see {path.stem}.json)",
          file=sys.stderr)
    return path


def checkpoint_file(path) -> Path:
    """A checkpoint path as given, or ``last.pt`` inside a training run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    return path


def load_weights(model: torch.nn.Module, path) -> torch.nn.Module:
    """Load a checkpoint (file or training run folder) strictly into ``model``."""
    from ..checkpoint import CheckpointError, load_checkpoint

    path = checkpoint_file(path)
    try:
        return load_checkpoint(model, path)
    except CheckpointError as e:
        raise UserError(str(e)) from None


def enable_cpu_bf16_products() -> torch.dtype:
    """``--dtype bf16`` on the CPU: float32 maps whose products in the fused ops' forward (1x1
    convolutions, linear maps, the attention products) take bf16 inputs with float32 sums, by
    setting ``torch.backends.mkldnn.matmul.fp32_precision = "bf16"`` for this process (torch's
    own CPU ops read it too), where the CPU kernels have bf16 products (AVX-512 kernels on a CPU with
    AVX512-BF16). Returns the maps' dtype."""
    from ..ops._registry import extension

    ext = extension()
    if ext is None or not ext.bf16_products_supported():
        raise UserError("--dtype bf16 on the CPU needs the extension's AVX-512 kernels on a CPU "
                        "with AVX512-BF16 (bf16 products); use --dtype fp32")
    torch.backends.mkldnn.matmul.fp32_precision = "bf16"
    return torch.float32


def prepare_model(scale, variant="asid", weights=None, backend="auto", device="auto", dtype="fp32"):
    """Build, load (``weights`` or the shipped ones), move and cast a model for inference.
    Returns (model in eval mode, device, dtype of its maps)."""
    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    check_backend(backend, dev)
    model = build_model(scale, variant, backend)
    load_weights(model, weights if weights is not None else default_weights(scale, variant))
    announce_backend(backend, dev, dt,
                     " with bf16 products" if cpu_bf16_products(dtype, dev) else "")
    return model.to(device=dev, dtype=dt).eval(), dev, dt


def announce_backend(backend: str, device: torch.device, dtype: torch.dtype, note="") -> None:
    """One line on stderr: what runs the model's ops (a fallback is never silent)."""
    from ..ops._registry import summary

    print(f"running on {device} in {str(dtype).replace('torch.', '')}{note}: "
          f"{summary(backend, device.type, dtype)}", file=sys.stderr)
