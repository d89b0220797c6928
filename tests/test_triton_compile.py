"""Every Triton kernel compiles for an H100/H200 (sm_90), without a GPU.

The interpreter runs the kernels' Python, not what the GPU compiler accepts (tl.dot shapes and
dtypes, layouts, register allocation). Here a child process (triton not in interpreter mode)
runs each op's Triton launcher on ``meta`` tensors for the small cases of tests/op_cases.py, with
the kernel launch recorded instead of run, and builds every distinct recorded kernel for
``GPUTarget("cuda", 90, 32)`` (bench/triton_sm90.py): Triton's LLVM pipeline and the ptxas it
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


def compile_all(dtype_name: str) -> list:
    """Run in a process where triton compiles (TRITON_INTERPRET unset): record the launches of
    every Triton op on its small cases, compile each distinct one (bench/triton_sm90.py);
    returns their descriptions."""
    sys.path[:0] = [str(HERE), str(HERE.parent / "bench")]
    from asid_fast.ops._registry import OPS, _triton_module
    from op_cases import CASES
    from triton_sm90 import compile_sm90, recorded_launches

    torch.backends.cuda.matmul.fp32_precision = "tf32" if "tf32" in dtype_name else "ieee"
    dtype = DTYPES[dtype_name.split("+")[0]]
    with recorded_launches() as launches:
        for case in CASES:
            if case.small and "triton" in OPS[case.op].backends:
                launcher = getattr(_triton_module(OPS[case.op].family), case.op)
                launcher(*case.make(dtype, "meta"))
    built = []
    for kernel, signature, constexprs, options in launches.values():
        compile_sm90(kernel, signature, constexprs, options)
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


@pytest.mark.slow
def test_model_kernels_keep_their_registers_in_bf16():
    """At ASID's shapes no Triton kernel of the fused forward spills registers on sm_90 in bf16
    (a spill stack is local-memory traffic inside the kernels' loops; 4 warps spilled in the
    attention block at d = 36 and in window-mode channel attention). About 60 s on two cores."""
    pytest.importorskip("triton")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run([sys.executable, str(HERE.parent / "bench" / "triton_sm90.py"),
                             "--dtype", "bf16", "--json"], capture_output=True, text=True,
                            env=env, timeout=900, cwd=HERE.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(result.stdout.splitlines()[-1])
    assert {"conv_chain_fwd_kernel", "conv_chain_project_kernel", "attention_block_fwd_kernel",
            "channel_attention_fwd_kernel"} <= {r["kernel"] for r in rows}
    spilling = [r for r in rows if r["STACK"] > 0]
    assert not spilling, spilling


if __name__ == "__main__":
    print(json.dumps(compile_all(sys.argv[1])))
