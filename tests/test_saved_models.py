"""The fused model (default backend: the C++ CPU operators) saved with ``torch.export`` and with
``torch.jit.trace`` loads and runs in a fresh process after ``import asid_fast``, which registers
every ``asid_fast::`` op at import; before that import the same file does not load."""
import subprocess
import sys

import pytest
import torch

import asid_fast

# Run in a fresh interpreter: try the file before and after `import asid_fast`, run it, save the
# output. argv: kind ("export" | "jit"), model file, input file, output file.
LOAD = """
import sys
import torch

kind, model_file, x_file, y_file = sys.argv[1:]


def load():
    if kind == "export":
        return torch.export.load(model_file).module()
    return torch.jit.load(model_file)


try:
    load()
    print("loaded without asid_fast")
except Exception:
    print("not loaded without asid_fast")
import asid_fast  # noqa: E402,F401

with torch.no_grad():
    torch.save(load()(torch.load(x_file)), y_file)
"""


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    """(model, eager output, folder with the input x.pt): ASID x2 with random weights on a
    1x3x16x20 input (padded to 16x24 inside)."""
    torch.manual_seed(0)
    model = asid_fast.ASID(2).eval()
    x = torch.rand(1, 3, 16, 20) * 2 - 1
    with torch.no_grad():
        y = model(x)
    folder = tmp_path_factory.mktemp("saved")
    torch.save(x, folder / "x.pt")
    return model, y, folder


def run_fresh(kind, model_file, folder):
    """The fresh process's output and what it printed."""
    y_file = folder / f"y_{kind}.pt"
    result = subprocess.run([sys.executable, "-c", LOAD, kind, str(model_file),
                             str(folder / "x.pt"), str(y_file)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(y_file), result.stdout


def asid_fast_ops(names):
    return sorted({n.split("::")[-1].split(".")[0] for n in names if "asid_fast" in n})


def test_torch_export_round_trip(fused):
    model, y, folder = fused
    with torch.no_grad():
        program = torch.export.export(model, (torch.load(folder / "x.pt"),))
    ops = asid_fast_ops(n.target.name() for n in program.graph.nodes
                        if isinstance(n.target, torch._ops.OpOverload))
    assert "conv_chain_fwd" in ops and "window_attention_fwd" in ops
    torch.export.save(program, folder / "model.pt2")
    got, printed = run_fresh("export", folder / "model.pt2", folder)
    assert "not loaded without asid_fast" in printed
    torch.testing.assert_close(got, y, rtol=0, atol=0)


def test_torch_jit_trace_round_trip(fused):
    model, y, folder = fused
    with torch.no_grad():
        traced = torch.jit.trace(model, (torch.load(folder / "x.pt"),), check_trace=False)
    ops = asid_fast_ops(n.kind() for n in traced.inlined_graph.nodes())
    assert "conv_chain_fwd" in ops and "window_attention_fwd" in ops
    traced.save(str(folder / "model.ts"))
    got, printed = run_fresh("jit", folder / "model.ts", folder)
    assert "not loaded without asid_fast" in printed
    torch.testing.assert_close(got, y, rtol=0, atol=0)
