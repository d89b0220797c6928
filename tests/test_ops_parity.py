"""The op x backend x dtype grid: every registered op (forward and backward ops alike) on every
compiled backend that can run it, in every dtype that backend takes, against the op's float64
reference on the same rounded inputs; the forward ops' gradients through their registered
autograd against autograd through the reference; gradcheck in float64 on small shapes.

Backends: the device's compiled kernels ("cpu", or "cuda" on a GPU machine) and Triton (through
the interpreter on the CPU, where it runs the cases marked small, in float64/32 and float16:
the interpreter's tl.dot mishandles bfloat16). Tolerances: tests/helpers.py.
"""
from __future__ import annotations

import pytest
import torch

from asid_fast.ops._registry import DTYPES as BACKEND_DTYPES
from asid_fast.ops._registry import OPS, library_op, why_not
from helpers import DEVICE, TOL, as_tuple, assert_rel, compiled_backends
from op_cases import CASES, reference_outputs

pytestmark = [pytest.mark.cuda] if DEVICE.type == "cuda" else []  # in the device script's run
DTYPES = (torch.float64, torch.float32, torch.float16, torch.bfloat16)
INTERPRETED = DEVICE.type == "cpu"


def _why_skip(case, backend, dtype):
    op = OPS[case.op]
    if backend not in op.backends:
        return "not implemented"
    if backend == "triton" and INTERPRETED and (not case.small or dtype == torch.bfloat16):
        return "Triton interpreter: small cases in float64/32/16 only"
    size = op.size(*case.make(torch.float64, "meta")) if op.size is not None else ()
    return why_not(case.op, backend, DEVICE.type, dtype, size)


def _grid(forward_only=False):
    params = []
    for case in CASES:
        if forward_only and (OPS[case.op].backward is None and not OPS[case.op].cpp_autograd):
            continue
        for backend in compiled_backends():
            for dtype in DTYPES:
                reason = _why_skip(case, backend, dtype)
                if reason == "not implemented" or dtype not in BACKEND_DTYPES[backend].get(
                        DEVICE.type, ()):
                    continue
                marks = [pytest.mark.skipif(True, reason=reason)] if reason else []
                params.append(pytest.param(case, backend, dtype, marks=marks,
                                           id=f"{case.id}-{backend}-{str(dtype)[6:]}"))
    return params


@pytest.mark.parametrize("case,backend,dtype", _grid())
def test_op_matches_reference(case, backend, dtype):
    args = case.make(dtype, DEVICE)
    got = as_tuple(library_op(case.op, backend)(*args))
    want = as_tuple(reference_outputs(case.op, args))
    fake = as_tuple(OPS[case.op].fake(*args))
    assert len(got) == len(want) == len(fake)
    for i, (g, w, f) in enumerate(zip(got, want, fake)):
        assert (g.dtype, g.shape, g.device) == (f.dtype, f.shape, f.device), f"output {i}"
        assert_rel(g, w, TOL[dtype], f"{case.id} output {i}")


def _leaves(args):
    """The op's arguments with every floating-point tensor (in lists too) a fresh leaf."""
    def leaf(a):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a.detach().clone().requires_grad_()
        if isinstance(a, list):
            return [leaf(t) for t in a]
        return a
    return [leaf(a) for a in args]


def _flat_tensors(args):
    out = []
    for a in args:
        out += [t for t in a] if isinstance(a, list) else [a]
    return [t for t in out if isinstance(t, torch.Tensor) and t.requires_grad]


def _outputs_and_grads(fn, args, differentiable, seed=7):
    """The outputs, and the gradients of sum(output * cotangent) over the outputs at the indices
    ``differentiable``."""
    outs = as_tuple(fn(*args))
    g = torch.Generator().manual_seed(seed)
    chosen = [outs[i] for i in differentiable]
    cots = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o) for o in chosen]
    grads = torch.autograd.grad(chosen, _flat_tensors(args), cots, allow_unused=True)
    return [o.detach() for o in outs], list(grads)


@pytest.mark.parametrize("case,backend,dtype",
                         [p for p in _grid(forward_only=True) if p.values[0].op.endswith("_fwd")])
def test_op_gradients_match_reference(case, backend, dtype):
    """Through the op's registered autograd (the C++ kernel or the Python formula) against
    autograd through the reference, with the same cotangents on the op's differentiable outputs
    (not on saved statistics such as attn, mean, rstd, which the op marks non-differentiable)."""
    args = _leaves(case.make(dtype, DEVICE))
    reference_args = _leaves([[t.double() for t in a] if isinstance(a, list) else
                              (a.double() if isinstance(a, torch.Tensor) else a) for a in args])
    fn = library_op(case.op, backend)
    differentiable = [i for i, o in enumerate(as_tuple(fn(*args))) if o.requires_grad]
    assert differentiable, "no output requires a gradient"
    _, got = _outputs_and_grads(fn, args, differentiable)
    _, want = _outputs_and_grads(OPS[case.op].reference, reference_args, differentiable)
    for i, (g, w) in enumerate(zip(got, want)):
        assert (g is None) == (w is None), f"gradient {i}"
        if g is not None:
            assert_rel(g, w, TOL[dtype], f"{case.id} gradient {i}")


# ---- gradcheck (float64, small shapes) --------------------------------------------------------

def _gradcheck_inputs():
    g = torch.Generator().manual_seed(0)

    def r(*s):
        return torch.randn(*s, dtype=torch.float64, generator=g).to(DEVICE)
    x3 = r(2, 4, 6, 9)  # q, k, v: views of one projection
    return {
        "window_attention_fwd": [(lambda q, k, v, b, mode=mode: (q, k, v, b, mode, 2, 0.5),
                                  [*x3.split(3, -1), r(4, 4)]) for mode in ("meso", "global")],
        "shared_window_attention_fwd": [(lambda a, v: (a, v, "global", 2, ),
                                         [r(12, 4, 4).softmax(-1), r(2, 4, 6, 3)])],
        "channel_attention_fwd": [(lambda q, k, v, t, mode=mode: (q, k, v, t, mode, 2),
                                   [*x3.split(3, -1), r(1, 1, 1)]) for mode in ("window", "cell")],
        "layer_norm_fwd": [(lambda x, w, b: (x, w, b, 1e-6), [r(1, 3, 4, 6), r(6), r(6)])],
        "depthwise_conv3x3_fwd": [(lambda x, w, b, e=e: (x, w, b, e),
                                   [r(1, 3, 4, 6), r(6, 1, 3, 3), r(6)])
                                  for e in ("none", "gelu", "gate")],
        "conv_chain_fwd": [(lambda x, nw, nb, wi, wd, wo: (x, nw, nb, 1e-6, wi, None, False, wd,
                                                           None, "gate", wo),
                            [r(1, 3, 4, 4), r(4), r(4), r(6, 4), r(6, 1, 3, 3), r(4, 3)]),
                           (lambda x, wi, bi, wd, bd: (x, None, None, 1e-6, wi, bi, True, wd, bd,
                                                       "gelu", None),
                            [r(2, 3, 4, 4), r(5, 4), r(5), r(5, 1, 3, 3), r(5)]),
                           (lambda x, nw, nb, wi, wo: (x, nw, nb, 1e-6, wi, None, True, None,
                                                       None, "none", wo),
                            [r(1, 5, 3, 4), r(4), r(4), r(6, 4), r(4, 6)])],
        "attention_block_fwd": [(lambda x, nw, nb, wq, b, wo: (x, nw, nb, 1e-5, wq, b, wo, "meso",
                                                               2, 0.5),
                                 [r(2, 4, 6, 3), r(3), r(3), r(9, 3), r(4, 4), r(3, 3)])],
        "shared_attention_block_fwd": [(lambda x, nw, nb, wv, a, wo: (x, nw, nb, 1e-5, wv, a, wo,
                                                                      "global", 2),
                                        [r(2, 4, 6, 3), r(3), r(3), r(3, 3),
                                         r(12, 4, 4).softmax(-1), r(3, 3)])],
        "linear_fwd": [(lambda a, b, w, bias, res: ([a, b], w, bias, res, None),
                        [r(2, 3, 4, 5), r(2, 3, 4, 3), r(2, 6, 8), r(6), r(2, 3, 4, 6)]),
                       (lambda a, w, bias, res, gate: ([a], w, bias, res, gate),
                        [r(2, 3, 4, 5), r(6, 5), r(6), r(2, 3, 4, 6), r(2, 3, 4, 6)])],
    }


def _gradcheck_grid():
    params = []
    for op, calls in _gradcheck_inputs().items():
        for backend in compiled_backends():
            if backend not in OPS[op].backends:
                continue
            reason = why_not(op, backend, DEVICE.type, torch.float64)
            marks = [pytest.mark.skipif(True, reason=reason)] if reason else []
            for i, call in enumerate(calls):
                params.append(pytest.param(op, backend, call, marks=marks, id=f"{op}-{backend}-{i}"))
    return params


@pytest.mark.parametrize("op,backend,call", _gradcheck_grid())
def test_gradcheck(op, backend, call):
    arguments, tensors = call
    tensors = [t.requires_grad_() for t in tensors]
    fn = library_op(op, backend)

    def differentiable_outputs(*t):
        return tuple(o for o in as_tuple(fn(*arguments(*t))) if o.requires_grad)
    assert torch.autograd.gradcheck(differentiable_outputs, tensors,
                                    fast_mode=backend == "triton")
