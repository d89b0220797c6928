"""ASID's fused operators as PyTorch ops with autograd, fake kernels and FLOP formulas, on the
reference, C++ CPU, CUDA and Triton backends behind one dispatch (:mod:`._registry`).

Every module of this package whose name does not start with "_" declares one op family (its
ops through :func:`._registry.define`, and its public functions, listed in its ``__all__``).
Importing the package imports them all, which registers every op (schemas, fake kernels,
autograd), exports their public functions here, and loads the compiled extension's kernels: a
graph saved by torch.export or TorchScript loads in a fresh process after ``import asid_fast``.
"""
import importlib
import pkgutil

from ._output_cache import empty_output_cache, output_cache_bytes, set_output_cache_limit
from ._registry import BACKENDS, available_backends, load_extension

# The package's own names: the dispatch and the output cache, not ops.
PACKAGE_NAMES = ("BACKENDS", "available_backends", "empty_output_cache", "output_cache_bytes",
                 "set_output_cache_limit")
__all__ = list(PACKAGE_NAMES)
for _module in sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")):
    _family = importlib.import_module(f"{__name__}.{_module}")
    globals().update({name: getattr(_family, name) for name in _family.__all__})
    __all__ += _family.__all__
load_extension()
