"""``torch.compile`` of the fused model on the CPU: the fused ops cause no graph break (fullgraph),
the compiled forward and training step match eager."""
import pytest
import torch

from asid_fast.model import ASID
from asid_fast.ops import _fused_dispatch
from asid_fast.ops.dispatch import available_backends


def _cpu_backend():
    """The compiled CPU backend (skipped when the extension is not built)."""
    try:
        for family in ("fused_layer_norm", "fused_dwconv3x3"):
            _fused_dispatch.resolve("cpu", "cpu", family, torch.float32)
        skip = "cpu" not in available_backends("cpu")
        why = "window ops: the extension is not built"
    except RuntimeError as err:
        skip, why = True, str(err)
    return [pytest.param("cpu", marks=pytest.mark.skipif(skip, reason=why))]


def _model(backend):
    torch.manual_seed(0)
    return ASID(2, "asid", backend=backend).double()


@pytest.mark.parametrize("backend", _cpu_backend())
def test_fullgraph_training_step_aot_eager(backend):
    """Dynamo captures the whole model in one graph and AOTAutograd traces forward and backward
    through the fused ops' fake kernels and autograd formulas."""
    torch._dynamo.reset()
    model = _model(backend)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    x = torch.rand(1, 3, 13, 21, dtype=torch.float64)
    y = compiled(x)
    y.abs().mean().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    want = model(x)
    want.abs().mean().backward()
    assert (y - want).abs().max().item() <= 1e-12
    for n, p in model.named_parameters():
        assert torch.allclose(grads[n], p.grad, rtol=0, atol=1e-12), n


@pytest.mark.parametrize("backend", _cpu_backend())
def test_fullgraph_inference_capture(backend):
    """Without gradients the model runs the streamed operators (conv chain, linear): Dynamo
    captures them in one graph too."""
    torch._dynamo.reset()
    model = _model(backend).eval()
    x = torch.rand(1, 3, 13, 21, dtype=torch.float64)
    with torch.no_grad():
        got = torch.compile(model, fullgraph=True, backend="eager")(x)
        want = model(x)
    assert (got - want).abs().max().item() <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("backend", _cpu_backend())
def test_inductor_inference(backend):
    torch._dynamo.reset()
    model = _model(backend).float().eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        got = torch.compile(model, fullgraph=True)(x)
        want = model(x)
    assert (got - want).abs().max().item() <= 1e-5 * want.abs().max().item()
