"""``torch.compile`` of the fused model on the CPU: the fused ops cause no graph break (fullgraph),
the compiled forward and training step match eager."""
import pytest
import torch

from asid_fast.model import ASID
from asid_fast.ops import _registry


def _cpu_backend():
    """The compiled CPU backend (skipped when the extension is not built)."""
    reason = _registry.why_unavailable("cpu", "cpu")
    return [pytest.param("cpu", marks=pytest.mark.skipif(reason is not None, reason=str(reason)))]


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
