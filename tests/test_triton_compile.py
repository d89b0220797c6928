"""Every Triton kernel compiles for an H100/H200 (sm_90), without a GPU.

The interpreter runs the kernels' Python, not what the GPU compiler accepts (tl.dot shapes and
dtypes, layouts, register allocation). Here a child process (triton not in interpreter mode)
runs each op's Triton launcher on ``meta`` tensors for the small cases of tests/op_cases.py, with
the kernel launch recorded instead of run, and builds every distinct recorded kernel with
``triton.compile`` for ``GPUTarget("cuda", 90, 32)``: Triton's LLVM pipeline and the ptxas it
ships, down to a cubin. Dtypes: float32 (IEEE and TF32 dots) and bfloat16 (float16 takes the same
16-bit tensor-core path). About 40 s per dtype on two cores: slow.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

HERE = Path(__file__).resolve().parent
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}
POINTER = {torch.float32: "fp32", torch.float64: "fp64", torch.float16: "fp16",
           torch.bfloat16: "bf16", torch.int64: "i64", torch.int32: "i32"}


def _signature(kernel, args, kwargs):
    """Triton's signature and constexprs for a launch of ``kernel`` with these arguments."""
    values = dict(zip(kernel.arg_names, args)) | kwargs
    signature, constexprs = {}, {}
    for i, name in enumerate(kernel.arg_names):
        value = values[name]
        if i in kernel.constexprs or value is None:
            signature[name], constexprs[name] = "constexpr", value
        elif isinstance(value, torch.Tensor):
            signature[name] = "*" + POINTER[value.dtype]
        elif isinstance(value, bool):
            signature[name] = "i1"
        elif isinstance(value, int):
            signature[name] = "i32" if -2 ** 31 <= value < 2 ** 31 else "i64"
        else:
            signature[name] = "fp32"
    return signature, constexprs


def compile_all(dtype_name: str) -> list:
    """Run in a process where triton compiles (TRITON_INTERPRET unset): record the launches of
    every Triton op on its small cases, compile each distinct one; returns its descriptions."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource
    from triton.runtime.jit import JITFunction

    sys.path.insert(0, str(HERE))
    from asid_fast.ops._registry import OPS, _triton_module
    from op_cases import CASES

    launches = {}

    def record(self, *args, grid, warmup, **kwargs):
        options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
        signature, constexprs = _signature(self, args, kwargs)
        key = (self.fn.__qualname__, json.dumps(signature), repr(sorted(constexprs.items())),
               repr(sorted(options.items())))
        launches.setdefault(key, (self, signature, constexprs, options))

    JITFunction.run = record
    dtype = DTYPES[dtype_name.split("+")[0]]
    torch.backends.cuda.matmul.fp32_precision = "tf32" if "tf32" in dtype_name else "ieee"
    for case in CASES:
        if case.small and "triton" in OPS[case.op].backends:
            launcher = getattr(_triton_module(OPS[case.op].family), case.op)
            launcher(*case.make(dtype, "meta"))
    target = GPUTarget("cuda", 90, 32)
    built = []
    for kernel, signature, constexprs, options in launches.values():
        compiled = triton.compile(ASTSource(kernel, signature, constexprs=constexprs),
                                  target=target, options=options)
        assert compiled.asm["cubin"], kernel.fn.__qualname__
        built.append(f"{kernel.fn.__qualname__} {constexprs}")
    return built


@pytest.mark.slow
@pytest.mark.parametrize("dtype_name", ["float32", "float32+tf32", "bfloat16"])
def test_every_triton_kernel_compiles_for_sm90(dtype_name):
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, __file__, dtype_name], capture_output=True,
                            text=True, env=env, timeout=900, cwd=HERE.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    built = json.loads(result.stdout.splitlines()[-1])
    families = {name.split(" ")[0] for name in built}
    assert {"window_attention_fwd_kernel", "channel_attention_fwd_kernel",
            "attention_block_fwd_kernel", "conv_chain_fwd_kernel"} <= families, families


if __name__ == "__main__":
    print(json.dumps(compile_all(sys.argv[1])))
