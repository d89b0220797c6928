"""Builds the compiled extension ``asid_fast._C`` (package metadata lives in pyproject.toml).

Sources are found by glob, so new operators only add files:
* CPU: every ``csrc/**/*.cpp`` outside ``csrc/cuda/`` (always built);
* CUDA: ``csrc/cuda/*.cu`` (torch-free kernels) and ``csrc/cuda/*.cpp`` (bindings), built when
  torch has CUDA and nvcc is found.

Environment:
* ``ASID_FAST_NO_EXT=1``: skip the extension (the package then falls back to the other backends);
* ``ASID_FAST_NATIVE=1``: compile for this machine's CPU (``-march=native``). Off by default so the
  binary runs on any x86-64: the CPU kernels are compiled twice instead (baseline and AVX2+FMA,
  csrc/cpu/kernels_*.cpp) and the AVX2 copy is used only when the CPU reports AVX2 and FMA.
* ``TORCH_CUDA_ARCH_LIST``, ``MAX_JOBS``: as for any torch extension.

In-place build for development: ``python setup.py build_ext --inplace``.
"""
import glob
import os
import shutil
import sys

from setuptools import setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("csrc")


def _sources(pattern):
    return sorted(glob.glob(os.path.join(CSRC, pattern), recursive=True))


def _cuda_build_possible(torch_cuda_version):
    from torch.utils.cpp_extension import CUDA_HOME

    nvcc = os.path.join(CUDA_HOME, "bin", "nvcc") if CUDA_HOME else shutil.which("nvcc")
    return bool(torch_cuda_version) and nvcc is not None and os.path.exists(nvcc)


def extensions():
    if os.environ.get("ASID_FAST_NO_EXT", "") not in ("", "0"):
        return [], {}
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    cpu_sources = [s for s in _sources("**/*.cpp")
                   if not s.startswith(os.path.join(CSRC, "cuda") + os.sep)]
    # -fno-wrapv undoes the -fwrapv in Python's own CFLAGS, which the build inherits: the kernels'
    # index arithmetic does not rely on signed overflow wrapping, and with -fwrapv the window
    # attention forward ran 2-3% slower (single-threaded kernel timing, d = 36).
    cxx = ["-O3", "-ffp-contract=fast", "-fno-wrapv", "-Wno-psabi"]
    link = []
    if torch.backends.openmp.is_available() and sys.platform.startswith("linux"):
        # at::parallel_for is inline OpenMP code: without -fopenmp it runs serially. The
        # extension then uses the libgomp that torch has already loaded.
        cxx.append("-fopenmp")
        link.append("-fopenmp")
    if sys.platform.startswith("linux"):
        # Link the shared libstdc++ that torch uses (the runtime's libstdc++.so.6, named as a file:
        # a plain -lstdc++ finds the static archive where a toolchain ships no libstdc++.so) even
        # where the compiler adds -static-libstdc++ (a wrapped g++ on a GPU machine does): a
        # second, static copy inside the extension has its own locale ids, so formatting a number
        # into an error message crashed there (also with -lstdc++).
        link.append("-l:libstdc++.so.6")
    if os.environ.get("ASID_FAST_NATIVE", "") not in ("", "0"):
        cxx.append("-march=native")
    kwargs = dict(include_dirs=[os.path.join(ROOT, CSRC)], extra_compile_args={"cxx": cxx},
                  extra_link_args=link)
    if _cuda_build_possible(torch.version.cuda):
        ext = CUDAExtension(
            "asid_fast._C",
            cpu_sources + _sources("cuda/*.cu") + _sources("cuda/*.cpp"),
            define_macros=[("ASID_FAST_WITH_CUDA", None)],
            **{**kwargs, "extra_compile_args": {"cxx": cxx, "nvcc": ["-O3", "-lineinfo"]}},
        )
    else:
        ext = CppExtension("asid_fast._C", cpu_sources, **kwargs)
    return [ext], {"build_ext": BuildExtension.with_options(use_ninja=True)}


ext_modules, cmdclass = extensions()
setup(ext_modules=ext_modules, cmdclass=cmdclass)
