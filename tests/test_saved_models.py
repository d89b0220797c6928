"""The fused model (default backend: the C++ CPU operators) saved with ``torch.export`` and with
``torch.jit.trace`` loads and runs in a fresh process after ``import asid_fast``, which registers
every ``asid_fast::`` op at import; before that import the same file does not load."""
import subprocess
import sys

import pytest
import torch

import asid_fast

# Run in a fresh interpreter: try the file before and after `import asid_fast`, run it on each
# input, save the outputs. argv: kind ("export" | "jit"), model file, inputs file, outputs file.
LOAD = """
import sys
import torch

kind, model_file, xs_file, ys_file = sys.argv[1:]


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

model = load()
with torch.no_grad():
    torch.save([model(x) for x in torch.load(xs_file)], ys_file)
"""


@pytest.fixture(scope="module")
def fused():
    """ASID x2 with random weights, the traced/exported input (padded to 16x24 inside), another
    size (batch, height, width and pad all different) and the eager outputs of both."""
    torch.manual_seed(0)
    model = asid_fast.ASID(2).eval()
    xs = [torch.rand(1, 3, 16, 20) * 2 - 1, torch.rand(2, 3, 21, 9) * 2 - 1]
    with torch.no_grad():
        return model, xs, [model(x) for x in xs]


def run_fresh(kind, model_file, xs):
    """The outputs of the saved model on ``xs`` in a fresh process, and what it printed."""
    xs_file, ys_file = model_file.with_suffix(".xs"), model_file.with_suffix(".ys")
    torch.save(xs, xs_file)
    result = subprocess.run([sys.executable, "-c", LOAD, kind, str(model_file), str(xs_file),
                             str(ys_file)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(ys_file), result.stdout


def asid_fast_ops(names):
    return sorted({n.split("::")[-1] for n in names if n.startswith("asid_fast::")})


def test_torch_export_round_trip(fused, tmp_path):
    """An exported program has the traced input's size."""
    model, xs, ys = fused
    with torch.no_grad():  # inference: the row-streamed conv chain (training records its parts)
        program = torch.export.export(model, (xs[0],))
    ops = asid_fast_ops(n.target.name() for n in program.graph.nodes
                        if isinstance(n.target, torch._ops.OpOverload))
    assert {"conv_chain_fwd", "attention_block_fwd", "shared_attention_block_fwd"} <= set(ops)
    torch.export.save(program, tmp_path / "model.pt2")
    got, printed = run_fresh("export", tmp_path / "model.pt2", xs[:1])
    assert "not loaded without asid_fast" in printed
    torch.testing.assert_close(got[0], ys[0], rtol=0, atol=0)


def test_torch_jit_trace_round_trip_at_two_sizes(fused, tmp_path):
    """A traced model computes its pad and crop from the input's size: it runs other sizes."""
    model, xs, ys = fused
    with torch.no_grad():
        traced = torch.jit.trace(model, (xs[0],), check_trace=False)
    ops = asid_fast_ops(n.kind() for n in traced.inlined_graph.nodes())
    assert {"conv_chain_fwd", "attention_block_fwd", "shared_attention_block_fwd"} <= set(ops)
    traced.save(str(tmp_path / "model.ts"))
    got, printed = run_fresh("jit", tmp_path / "model.ts", xs)
    assert "not loaded without asid_fast" in printed
    for g, y in zip(got, ys):
        torch.testing.assert_close(g, y, rtol=0, atol=0)
