"""The operator table: every fused op declared once, registered at import, one dispatch.

An op is an :class:`OpDef`: its schema, fake kernel, FLOP formula, autograd formula and plain
PyTorch reference. :func:`define` registers it in the ``asid_fast`` torch.library namespace once
per library that implements it:

* ``asid_fast::<name>``: the compiled extension ``asid_fast._C`` (backends "cpu" and "cuda"; the
  C++ code registers CPU/CUDA kernels, and for some ops an Autograd kernel, for these names);
* ``asid_fast::triton_<name>``: the Triton kernels of ``asid_fast.kernels.<family>`` (backend
  "triton"), attached on first call (importing triton costs about a second).

Backends are "reference", "cpu", "cuda" and "triton". :func:`resolve` picks one for
``backend="auto"`` (the first of the device type's preference order that can run the op) or
checks an explicit one; :func:`implementation` returns the callable. Both are constant per
(op, backend, device type, dtype, size), so torch.compile traces straight through them.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils.flop_counter import register_flop_formula

NAMESPACE = "asid_fast"
BACKENDS = ("auto", "reference", "cpu", "cuda", "triton")
# the library prefix of each compiled backend (the reference runs plain PyTorch)
PREFIX = {"cpu": "", "cuda": "", "triton": "triton_"}
# backend -> device type -> dtypes it takes
DTYPES = {
    "cpu": {"cpu": (torch.float32, torch.float64)},
    "cuda": {"cuda": (torch.float32, torch.float16, torch.bfloat16)},
    "triton": {"cuda": (torch.float32, torch.float16, torch.bfloat16, torch.float64),
               "cpu": (torch.float32, torch.float16, torch.bfloat16, torch.float64)},
}
# "auto": preference order per device type. On CUDA the compiled kernels beat Triton's on an H200
# (bench/results/20261126T062955Z_h200/NOTES.md); an op may declare its own order (OpDef.auto).
AUTO = {"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")}

_LIB = torch.library.Library(NAMESPACE, "FRAGMENT")


@dataclass(frozen=True)
class OpDef:
    """One operator.

    ``schema`` is the argument list and returns, e.g. ``"(Tensor x, float eps) -> Tensor"``.
    ``fake(*args)`` gives outputs of the right shape, dtype and device; ``reference(*args)`` the
    same outputs in plain PyTorch (the ground truth of every backend, and what
    ``backend="reference"`` runs). ``flops(*arg shapes)`` follows
    ``torch.utils.flop_counter.register_flop_formula``. ``backward(ops, ctx, *grads)`` with
    ``setup_context(ctx, inputs, output)`` is the autograd formula; ``ops`` holds the same
    library's ops by name. ``cpp_autograd``: the extension registers the autograd of
    ``asid_fast::<name>`` in C++ (the formula then serves the Triton library only).
    ``backends``: the compiled backends that implement it. ``size(*args)`` gives the numbers a
    backend's limits depend on (e.g. tokens per window and channels), and ``limits(backend,
    *size)`` why a backend cannot run an op of that size (a window too large for one tile), or
    None.
    ``auto``: a device type's preference order when it differs from :data:`AUTO`.
    ``order``: where a device type's fastest backend depends on the request's size, a function
    ``fn(*size)`` giving the preference order for that size (or None for the usual one): a
    reordering of the same backends.
    ``tensor_core_backends``: backends that "auto" takes for this op on CUDA only where its
    products run on tensor cores (:func:`tensor_core_products`): kernels built around large
    ``tl.dot`` tiles, which in IEEE float32 run slower than the op's composition
    (bench/results/20261204T101733Z_h200/NOTES.md)."""
    name: str
    schema: str
    fake: Callable
    reference: Callable
    family: str
    backends: tuple[str, ...] = ("cpu", "cuda", "triton")
    flops: Callable | None = None
    backward: Callable | None = None
    setup_context: Callable | None = None
    cpp_autograd: bool = False
    size: Callable | None = None
    limits: Callable | None = None
    auto: dict = field(default_factory=dict)
    order: dict = field(default_factory=dict)
    tensor_core_backends: tuple[str, ...] = ()


OPS: dict[str, OpDef] = {}
_IMPLS: dict[tuple[str, str], Callable] = {}


class _LibraryOps:
    """``ops.<name>``: the op ``asid_fast::<prefix><name>`` (resolved on use)."""

    def __init__(self, prefix: str):
        self._prefix = prefix

    def __getattr__(self, name):
        return getattr(getattr(torch.ops, NAMESPACE), self._prefix + name).default

    def has(self, name) -> bool:
        """Whether this library defines the op ``name``."""
        return hasattr(getattr(torch.ops, NAMESPACE), self._prefix + name)


def check_first_order(name: str) -> None:
    """Refuse a backward under create_graph=True: the backward ops have no derivatives of their
    own, so a second-order gradient through them would silently come out wrong (zero)."""
    if torch.is_grad_enabled():
        raise RuntimeError(f"{name}: higher-order gradients (create_graph=True) are not supported "
                           "by the fused operators; use backend='reference' for them")


def define(op: OpDef) -> OpDef:
    """Register ``op`` in every library that implements it (schema, fake kernel, autograd,
    FLOP formula; the Triton kernel attached lazily) and add it to :data:`OPS`."""
    if op.name in OPS:
        raise ValueError(f"operator {op.name!r} is already defined")
    OPS[op.name] = op
    _IMPLS[op.name, "reference"] = op.reference
    for prefix in sorted({PREFIX[b] for b in op.backends}):
        qualname = f"{NAMESPACE}::{prefix}{op.name}"
        _LIB.define(prefix + op.name + op.schema)
        torch.library.register_fake(qualname, op.fake, lib=_LIB)
        if op.backward is not None and not (op.cpp_autograd and prefix == ""):
            ops = _LibraryOps(prefix)

            def backward(ctx, *grads, _ops=ops, _name=qualname):
                check_first_order(_name)
                return op.backward(_ops, ctx, *grads)
            torch.library.register_autograd(qualname, backward, setup_context=op.setup_context,
                                            lib=_LIB)
        packet = getattr(getattr(torch.ops, NAMESPACE), prefix + op.name)
        if op.flops is not None:
            register_flop_formula(packet)(op.flops)
        if prefix == PREFIX["triton"]:
            torch.library.register_kernel(qualname, ("cuda", "cpu"), _triton_kernel(op), lib=_LIB)
        for backend in op.backends:
            if PREFIX[backend] == prefix:
                _IMPLS[op.name, backend] = packet.default
    return op


def reference_gradients(fn, inputs, output_grads) -> list:
    """Gradients of ``fn(*inputs)`` (a tuple of outputs) for ``output_grads`` (None: that output
    gets none) with respect to the inputs that are not None (None for the others): what a
    backward op's reference computes."""
    leaves = [t.detach().requires_grad_() if t is not None else None for t in inputs]
    with torch.enable_grad():
        outputs = fn(*leaves)
        pairs = [(o, g) for o, g in zip(outputs, output_grads) if g is not None]
        present = [t for t in leaves if t is not None]
        grads = iter(torch.autograd.grad([o for o, _ in pairs], present, [g for _, g in pairs],
                                         allow_unused=True))
    return [next(grads) if t is not None else None for t in leaves]


def recomputing_autograd(compose: Callable) -> tuple[Callable, Callable]:
    """(setup_context, backward) of an op whose gradients come from recomputing
    ``compose(*op arguments)`` (a tensor or a tuple of them, the op's outputs) under autograd:
    the op saves its inputs only, and its backward runs the composition's forward and backward
    (for ops that fuse a chain of other ops' forwards)."""
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(*(t for t in inputs if isinstance(t, torch.Tensor)))
        ctx.is_tensor = [isinstance(t, torch.Tensor) for t in inputs]
        ctx.others = [None if is_tensor else t for t, is_tensor in zip(inputs, ctx.is_tensor)]

    def backward(_ops, ctx, *grads):
        tensors = [a if is_tensor else None
                   for a, is_tensor in zip(saved_arguments(ctx), ctx.is_tensor)]

        def outputs(*ts):
            out = compose(*[t if is_tensor else other
                            for t, is_tensor, other in zip(ts, ctx.is_tensor, ctx.others)])
            return out if isinstance(out, tuple) else (out,)
        return tuple(reference_gradients(outputs, tensors, grads))
    return setup_context, backward


def saved_arguments(ctx) -> list:
    """The op's arguments as the setup_context of :func:`recomputing_autograd` saved them."""
    saved = iter(ctx.saved_tensors)
    return [next(saved) if is_tensor else other
            for is_tensor, other in zip(ctx.is_tensor, ctx.others)]


# ---- the compiled extension and Triton ---------------------------------------------------------

_extension = None
_extension_problem = "not loaded yet"


def load_extension() -> None:
    """Import ``asid_fast._C`` (registering its kernels); explain a failure once."""
    global _extension, _extension_problem
    try:
        _C = importlib.import_module(f"{__package__.rsplit('.', 1)[0]}._C")
    except ImportError as exc:
        _extension, _extension_problem = None, _explain_extension_failure(exc)
        if "undefined symbol" in str(exc):
            warnings.warn(f"asid_fast: {_extension_problem}", RuntimeWarning, stacklevel=2)
        return
    _extension, _extension_problem = _C, ""


def _explain_extension_failure(exc: ImportError) -> str:
    if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.endswith("_C"):
        return ("the compiled extension asid_fast._C is not built (ASID_FAST_NO_EXT=1, or the "
                "package is not installed); build it with: pip install --no-build-isolation -e .")
    if "undefined symbol" in str(exc):
        return (f"the compiled extension asid_fast._C was built against another torch than the "
                f"installed torch {torch.__version__} ({exc}); rebuild it with: "
                "pip install --no-build-isolation --force-reinstall --no-deps -e .")
    return f"the compiled extension asid_fast._C could not be imported ({exc})"


def extension():
    """The loaded ``asid_fast._C`` module, or None."""
    return _extension


def _triton_module(family: str):
    return importlib.import_module(f"{__package__.rsplit('.', 1)[0]}.kernels.{family}")


def triton_interpreted() -> bool:
    """Whether triton runs in interpreter mode in this process (then it runs CPU tensors). Set by
    TRITON_INTERPRET=1 before triton is first imported."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(_triton_module("tiles").load_pixels, InterpretedFunction)


def _triton_kernel(op: OpDef):
    """The kernel of ``asid_fast::triton_<name>``: ``asid_fast.kernels.<family>.<name>``."""
    def run(*args):
        device = next(a for a in args if isinstance(a, torch.Tensor)).device
        if device.type == "cpu" and not triton_interpreted():
            raise RuntimeError(f"asid_fast::triton_{op.name} runs CPU tensors only through the "
                               "Triton interpreter: set TRITON_INTERPRET=1 before triton is "
                               "first imported")
        return getattr(_triton_module(op.family), op.name)(*args)
    return run


def why_unavailable(backend: str, device_type: str) -> str | None:
    """Why ``backend`` cannot run on ``device_type`` in this process, or None if it can."""
    if backend == "reference":
        return None
    if device_type not in DTYPES[backend]:
        return f"it does not run {device_type} tensors"
    if backend in ("cpu", "cuda"):
        if _extension is None:
            return _extension_problem
        if backend == "cuda" and not _extension.built_with_cuda:
            return "asid_fast._C was built without CUDA kernels"
    if backend == "triton":
        if importlib.util.find_spec("triton") is None:
            return "triton is not installed"
        if device_type == "cpu" and os.environ.get("TRITON_INTERPRET") != "1":
            return "CPU tensors need the Triton interpreter (TRITON_INTERPRET=1)"
    if device_type == "cuda" and not torch.cuda.is_available():
        return "no CUDA device"
    return None


def why_not(op_name: str, backend: str, device_type: str, dtype: torch.dtype,
            size: tuple = ()) -> str | None:
    """Why ``backend`` cannot run ``op_name`` for this device type, dtype and size, or None."""
    op = OPS[op_name]
    if backend == "reference":
        return None
    if backend not in op.backends:
        return f"{op_name} has no {backend} implementation"
    reason = why_unavailable(backend, device_type)
    if reason is None and dtype not in DTYPES[backend][device_type]:
        names = ", ".join(str(d).replace("torch.", "") for d in DTYPES[backend][device_type])
        reason = f"its {device_type} kernels take {names}, not {str(dtype).replace('torch.', '')}"
    if reason is None and op.limits is not None and size:
        reason = op.limits(backend, *size)
    return reason


def tensor_core_products(device_type: str, dtype: torch.dtype) -> bool:
    """Whether matrix products of ``dtype`` run on tensor cores on ``device_type``: on CUDA for
    float16 and bfloat16, and for float32 when torch allows TF32 in matmuls
    (``torch.backends.cuda.matmul.fp32_precision`` is "tf32"; the kernels then ask for it too)."""
    if device_type != "cuda":
        return False
    if dtype == torch.float32:
        return torch.backends.cuda.matmul.fp32_precision == "tf32"
    return dtype in (torch.float16, torch.bfloat16)


def auto_order(op_name: str, device_type: str, dtype: torch.dtype | None = None,
               size: tuple = ()) -> tuple[str, ...]:
    """The backends "auto" tries for ``op_name`` on ``device_type``, in order (for a request of
    ``size`` where the op's :attr:`OpDef.order` depends on it); given ``dtype``, without the op's
    :attr:`OpDef.tensor_core_backends` where its products would not run on tensor cores."""
    op = OPS[op_name]
    by_size = op.order.get(device_type)
    order = ((by_size is not None and size and by_size(*size))
             or op.auto.get(device_type) or AUTO.get(device_type, ("reference",)))
    if dtype is None or tensor_core_products(device_type, dtype):
        return order
    return tuple(b for b in order if b not in op.tensor_core_backends)


def _concrete(arg):
    """``arg`` with symbolic sizes (traced with dynamic shapes) made concrete ints, so that it
    can key a cache: the backends' size limits are decided on the actual sizes."""
    if isinstance(arg, tuple):
        return tuple(_concrete(a) for a in arg)
    return int(arg) if isinstance(arg, torch.SymInt) else arg


def _constant(fn):
    """Memoised by arguments and the float32 matmul precision (which :func:`auto_order` reads),
    and constant under torch.compile (what is built and importable does not change while the
    process runs). ``cache_clear()`` empties the memo."""
    cache = {}

    def wrapper(*args):
        args = _concrete(args)
        key = args, torch.backends.cuda.matmul.fp32_precision
        if key not in cache:
            cache[key] = fn(*args)
        return cache[key]
    wrapper.__doc__, wrapper.__name__ = fn.__doc__, fn.__name__
    wrapper.cache_clear = cache.clear
    # what torch.compiler.assume_constant_result sets, without importing torch._dynamo (0.9 s)
    wrapper._dynamo_marked_constant = True
    return wrapper


_warned: set = set()


@_constant
def resolve(op_name: str, backend: str, device_type: str, dtype: torch.dtype,
            size: tuple = ()) -> str:
    """The backend that runs ``op_name``: the first of :func:`auto_order` that can for
    ``backend="auto"`` (warning once per skipped unavailable backend), else ``backend`` itself
    (RuntimeError if it cannot)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        reason = why_not(op_name, backend, device_type, dtype, size)
        if reason is not None:
            raise RuntimeError(f"asid_fast: backend {backend!r} cannot run {op_name} on "
                               f"{device_type}: {reason}")
        return backend
    for name in auto_order(op_name, device_type, dtype, size):
        reason = why_not(op_name, name, device_type, dtype, size)
        if reason is None:
            return name
        unavailable = why_unavailable(name, device_type)
        if unavailable is not None and name not in _warned:
            _warned.add(name)
            warnings.warn(f"asid_fast: backend {name!r} unavailable ({unavailable}); falling "
                          "back to the next backend", RuntimeWarning, stacklevel=4)
    return "reference"


@_constant
def compiled_backend(op_name: str, backend: str, device_type: str, dtype: torch.dtype,
                     size: tuple = ()) -> str | None:
    """The compiled backend that runs ``op_name`` for this request, or None: for ops that have
    a composition of other ops as their reference (the caller then runs the composition on the
    same ``backend``). "auto" takes the first of :func:`auto_order` that can run it."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    for name in (auto_order(op_name, device_type, dtype, size) if backend == "auto"
                 else (backend,)):
        if name == "reference":
            return None
        if why_not(op_name, name, device_type, dtype, size) is None:
            return name
    return None


def implementation(op_name: str, backend: str, device_type: str, dtype: torch.dtype,
                   size: tuple = ()) -> Callable:
    """The callable that runs ``op_name`` on the resolved backend."""
    return _IMPLS[op_name, resolve(op_name, backend, device_type, dtype, size)]


def library_op(op_name: str, backend: str):
    """The registered op (OpOverload) of ``op_name`` for a compiled backend."""
    return _IMPLS[op_name, backend]


_KERNELS = {"cpu": "the C++ CPU kernels", "cuda": "the CUDA kernels", "triton": "the Triton kernels",
            "reference": "plain PyTorch (the reference ops)"}


def summary(backend: str, device_type: str, dtype: torch.dtype) -> str:
    """Which implementation runs the ops for ``backend`` on ``device_type`` and ``dtype``, in one
    line: the window attention's backend, the ops that differ, and why "auto" fell back to the
    reference when it did."""
    main = resolve("window_attention_fwd", backend, device_type, dtype)
    text = _KERNELS[main]
    if main == "cpu":
        text += f" ({_extension.cpu_isa()})"
    others = set()
    for name, op in OPS.items():
        if name.endswith("_fwd"):
            runs = compiled_backend(name, backend, device_type, dtype) or "reference"
            if runs != main and (runs != "reference" or main in op.backends):
                others.add(f"{op.family} on {runs}")
            elif backend == "auto" and device_type in op.order and len(
                    [b for b in auto_order(name, device_type, dtype)
                     if b != "reference" and why_not(name, b, device_type, dtype) is None]) > 1:
                others.add(f"{op.family} by size")  # a choice between usable backends
    others = sorted(others)
    if others:
        text += "; " + ", ".join(others)
    if main == "reference" and backend == "auto":
        reasons = [f"{b}: {why_not('window_attention_fwd', b, device_type, dtype)}"
                   for b in auto_order("window_attention_fwd", device_type, dtype)
                   if b != "reference"]
        if reasons:
            text += " (" + "; ".join(reasons) + ")"
    return text


def available_backends(device) -> list[str]:
    """The named backends usable on ``device`` in this process."""
    device_type = torch.device(device).type
    return [b for b in BACKENDS[1:] if why_unavailable(b, device_type) is None]
