"""The Triton kernels built for an H100/H200 (sm_90) without a GPU, and what each one uses.

:func:`recorded_launches` records the kernel launches of Python code instead of running them;
:func:`compile_sm90` builds one with ``triton.compile`` for ``GPUTarget("cuda", 90, 32)``
(Triton's LLVM pipeline and the ptxas it ships, down to a cubin); :func:`resource_usage` reads
the cubin's registers per thread, spill stack and shared memory with the cuobjdump Triton ships.
Needs triton compiling for real: TRITON_INTERPRET unset before triton is imported.

Run from the repository root, it lists the kernels of one fused ASID x4 forward (``backend=
"triton"``; the launches are recorded from a forward on a small CPU input, whose kernels are the
ones any input size launches):

    env -u TRITON_INTERPRET python bench/triton_sm90.py --dtype bf16
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from contextlib import contextmanager
from unittest import mock

import torch

POINTER = {torch.float32: "fp32", torch.float64: "fp64", torch.float16: "fp16",
           torch.bfloat16: "bf16", torch.int64: "i64", torch.int32: "i32"}
DTYPES = {"fp32": torch.float32, "tf32": torch.float32, "bf16": torch.bfloat16}


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


@contextmanager
def recorded_launches():
    """Within: Triton kernel launches are recorded, not run (their outputs stay unwritten).
    Yields a dict filled with one (kernel, signature, constexprs, options) per distinct launch."""
    from triton.runtime.jit import JITFunction

    launches = {}

    def record(self, *args, grid, warmup, **kwargs):
        options = {k: kwargs.pop(k) for k in ("num_warps", "num_stages") if k in kwargs}
        signature, constexprs = _signature(self, args, kwargs)
        key = (self.fn.__qualname__, repr(sorted(signature.items())),
               repr(sorted(constexprs.items())), repr(sorted(options.items())))
        launches.setdefault(key, (self, signature, constexprs, options))

    with mock.patch.object(JITFunction, "run", record):
        yield launches


def compile_sm90(kernel, signature, constexprs, options):
    """The kernel compiled for sm_90 (asserting a cubin came out)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    compiled = triton.compile(ASTSource(kernel, signature, constexprs=constexprs),
                              target=GPUTarget("cuda", 90, 32), options=options)
    assert compiled.asm["cubin"], kernel.fn.__qualname__
    return compiled


def resource_usage(compiled) -> dict:
    """{"REG": registers per thread, "STACK": bytes of spill stack per thread (read from the
    cubin), "SHARED": bytes of shared memory per program (what the launch asks for)}."""
    import triton.backends.nvidia as nvidia

    tool = os.path.join(os.path.dirname(nvidia.__file__), "bin", "cuobjdump")
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(compiled.asm["cubin"])
        f.flush()
        text = subprocess.run([tool, "-res-usage", f.name], capture_output=True, text=True,
                              check=True).stdout
    fields = dict(item.split(":") for line in text.splitlines() if "REG:" in line
                  for item in line.split())
    return {"REG": int(fields["REG"]), "STACK": int(fields["STACK"]),
            "SHARED": compiled.metadata.shared}


def model_launches(dtype: torch.dtype) -> dict:
    """The distinct Triton launches of one fused ASID x4 forward with backend "triton" (recorded
    on a 1x3x16x16 CPU input: the launchers run and record, nothing computes)."""
    from asid_fast.model import ASID
    from asid_fast.ops import _registry

    model = ASID(4, backend="triton").to(dtype).eval()
    x = torch.rand(1, 3, 16, 16).to(dtype)
    usable = _registry.why_unavailable
    with recorded_launches() as launches, \
            mock.patch.object(_registry, "triton_interpreted", lambda: True), \
            mock.patch.object(_registry, "why_unavailable",
                              lambda b, d: None if b == "triton" else usable(b, d)), \
            torch.no_grad():
        model(x)
    return launches


def model_resources(dtype_name: str) -> list[dict]:
    """For each distinct Triton launch of the fused x4 forward in ``dtype_name`` (a key of
    :data:`DTYPES`): {"kernel", "constexprs", "num_warps"} and its :func:`resource_usage`."""
    torch.backends.cuda.matmul.fp32_precision = "tf32" if dtype_name == "tf32" else "ieee"
    rows = []
    for kernel, signature, constexprs, options in model_launches(DTYPES[dtype_name]).values():
        use = resource_usage(compile_sm90(kernel, signature, constexprs, options))
        rows.append({"kernel": kernel.fn.__qualname__, "num_warps": options.get("num_warps", 4),
                     "constexprs": {k: v for k, v in constexprs.items() if k != "PRECISION"},
                     **use})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=DTYPES, default="bf16",
                   help="tf32: float32 with TF32 dots; fp32: IEEE float32 dots")
    p.add_argument("--json", action="store_true", help="one JSON list instead of a table")
    args = p.parse_args(argv)
    if os.environ.get("TRITON_INTERPRET") == "1":
        raise SystemExit("unset TRITON_INTERPRET: the kernels must compile, not interpret")
    rows = model_resources(args.dtype)
    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'kernel':<30} {'REG':>4} {'STACK':>6} {'SHARED':>7}  warps  constexprs")
    for r in rows:
        print(f"{r['kernel']:<30} {r['REG']:>4} {r['STACK']:>6} {r['SHARED']:>7}  "
              f"{r['num_warps']:>5}  {r['constexprs']}")


if __name__ == "__main__":
    main()
