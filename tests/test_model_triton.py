"""The fused model on the Triton backend, on the CPU through the Triton interpreter (a GPU runs
the same kernels compiled: tests/test_model_parity.py's CUDA test). One forward at 9x10 (padded
to 16x16, the smallest input ESA allows) takes 45-50 s in the interpreter on a 2-core VM,
nearly all of it in the conv chain's programs, forward and backward about 2 minutes: every case
is slow (the README's test command spreads them over worker processes).

Tolerances as in tests/test_model_parity.py: float64 1e-9 absolute; under float16 autocast 1e-2
of the output range (measured 2.9e-3; the reference model under the same autocast is 3.3e-3 off
the float64 result).
"""
import pytest
import torch

from asid_fast.ops import _registry
from test_model_parity import assert_float64_gradient_parity, fused_twin, randomized_reference

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(torch.cuda.is_available(), reason="interpreter cases (a GPU runs the "
                       "device script)"),
    pytest.mark.skipif(_registry.why_unavailable("triton", "cpu") is not None,
                       reason=str(_registry.why_unavailable("triton", "cpu"))),
]
X2_INPUT = (1, 3, 9, 10)


def _triton_ops_called(fn):
    """fn()'s result and the names of the Triton ops it ran."""
    with torch.autograd.profiler.profile() as prof:
        out = fn()
    return out, {e.name for e in prof.function_events if e.name.startswith("asid_fast::triton_")}


def test_float64_inference_under_fullgraph_aot_eager_runs_the_fused_blocks():
    """torch.compile(fullgraph=True) captures the model in one graph (through the ops' fake
    kernels); the compiled forward runs the fused blocks and matches the reference. (One
    interpreter forward serves both checks: each takes minutes on a slow 2-core VM.)"""
    torch._dynamo.reset()
    ref = randomized_reference(2, "asid")
    fused = fused_twin(ref, "triton").eval()
    x = torch.rand(X2_INPUT, dtype=torch.float64)
    with torch.no_grad():
        compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
        got, called = _triton_ops_called(lambda: compiled(x))
        want = ref(x)
    assert got.dtype == torch.float64
    assert (got - want).abs().max().item() <= 1e-9
    assert {"asid_fast::triton_attention_block_fwd", "asid_fast::triton_shared_attention_block_fwd",
            "asid_fast::triton_conv_chain_fwd"} <= called


def test_float16_autocast_runs_the_triton_kernels():
    ref = randomized_reference(2, "asid", torch.float32)
    fused = fused_twin(ref, "triton")
    x = torch.rand(X2_INPUT)
    with torch.no_grad():
        with torch.autocast("cpu", dtype=torch.float16):
            got, called = _triton_ops_called(lambda: fused(x))
        want = ref.double()(x.double())
    assert got.dtype == torch.float16
    assert "asid_fast::triton_attention_block_fwd" in called
    assert (got.double() - want).abs().max().item() <= 1e-2 * want.abs().max().item()


def test_float64_gradients_of_every_parameter_and_the_input():
    """Training mode with gradients: the composition of the per-step Triton ops (the blocks
    fuse inference only), after an L1 loss."""
    ref = randomized_reference(2, "asid")
    assert_float64_gradient_parity(ref, fused_twin(ref, "triton"),
                                   torch.rand(X2_INPUT, dtype=torch.float64),
                                   torch.rand(1, 3, 18, 20, dtype=torch.float64))
