"""``asid-fast export``: ONNX files of every scale, ASID-D8 and fp16 that onnxruntime runs like the
fused model at sizes the command did not check, the lowest opset, and refused inputs."""
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.onnx.errors

from asid_fast.cli import main
from asid_fast.reference import ASID
from asid_fast.tools import export, runtime

# an LR size other than the traced one and the command's two checks (another pad, batch 3)
SIZE = (3, 3, 10, 19)


def run(capsys, *argv):
    code = main(["export", *map(str, argv)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def onnxruntime_vs_fused(path, scale, variant="asid", weights=None, fp16=False):
    """max |onnxruntime - fused| on a seeded SIZE input in [-1, 1], and the ONNX input type."""
    fused = runtime.build_model(scale, variant)
    runtime.load_weights(fused, weights or runtime.default_weights(scale, variant))
    x = torch.rand(SIZE, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        want = fused.eval()(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["sr"], {"lr": (x.half() if fp16 else x).numpy()})[0]
    assert got.shape == (SIZE[0], 3, SIZE[2] * scale, SIZE[3] * scale)
    return float(np.abs(got.astype(np.float32) - want).max()), session.get_inputs()[0].type


def standard_ops_only(path):
    model = onnx.load(str(path))
    return {node.domain for node in model.graph.node} <= {""}, model


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_each_scale_with_the_shipped_weights(tmp_path, capsys, scale):
    path = tmp_path / f"x{scale}.onnx"
    code, out, _ = run(capsys, "--scale", scale, "--onnx", path)
    assert code == 0
    assert f"opset {export.MIN_OPSET} (the lowest that works)" in out
    assert "onnxruntime vs the fused model (backend cpu)" in out
    diff, input_type = onnxruntime_vs_fused(path, scale)
    assert diff <= 1e-4 and input_type == "tensor(float)"
    standard, model = standard_ops_only(path)
    assert standard and model.opset_import[0].version == export.MIN_OPSET
    props = {p.key: p.value for p in model.metadata_props}
    assert props["scale"] == str(scale) and props["value_range"] == "[-1, 1]"


def test_asid_d8_needs_weights_and_exports_with_them(tmp_path, capsys):
    torch.manual_seed(0)
    weights = tmp_path / "d8.pt"
    torch.save(ASID(2, "asid_d8").state_dict(), weights)
    path = tmp_path / "d8.onnx"
    code, _, err = run(capsys, "--scale", 2, "--variant", "asid_d8", "--onnx", path)
    assert code == 1 and "ASID-D8 x2 has no shipped weights: pass --weights" in err
    assert not path.exists()
    code, out, _ = run(capsys, "--scale", 2, "--variant", "asid_d8", "--weights", weights,
                       "--onnx", path)
    assert code == 0 and "ASID-D8 x2" in out
    assert onnxruntime_vs_fused(path, 2, "asid_d8", weights)[0] <= 1e-4


def test_fp16_at_a_chosen_opset(tmp_path, capsys):
    path = tmp_path / "x2_fp16.onnx"
    code, out, _ = run(capsys, "--scale", 2, "--fp16", "--opset", 17, "--onnx", path)
    assert code == 0 and "float16, opset 17," in out and "(limit 0.01)" in out
    diff, input_type = onnxruntime_vs_fused(path, 2, fp16=True)
    assert diff <= 1e-2 and input_type == "tensor(float16)"
    standard, model = standard_ops_only(path)
    assert standard and model.opset_import[0].version == 17


def test_a_failed_check_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "TOLERANCE", {False: 1e-12, True: 1e-12})
    code, _, err = run(capsys, "--scale", 2, "--onnx", tmp_path / "x2.onnx")
    assert code == 1 and "onnxruntime differs from the fused model by" in err
    assert "nothing written" in err and list(tmp_path.iterdir()) == []


def test_the_default_opset_is_the_lowest_that_exports(tmp_path):
    model = ASID(2).eval()
    with pytest.raises(torch.onnx.errors.SymbolicValueError, match="Pad"):
        export.write_onnx(model, tmp_path / "low.onnx", export.MIN_OPSET - 1, False)


@pytest.mark.parametrize("argv, message", [
    (["--opset", 10], "--opset must be between 11 and 20, got 10"),
    (["--opset", 21], "--opset must be between 11 and 20, got 21"),
    (["--weights", "missing.pt"], "checkpoint not found"),
    (["--onnx", "{tmp}"], "it is a folder"),
    (["--onnx", "{tmp}/file.txt/x.onnx"], "file.txt is a file, not a folder"),
    (["--onnx", "{tmp}/x.txt"], "--onnx must name a .onnx file"),
])
def test_bad_inputs_are_refused_before_any_work(tmp_path, capsys, argv, message):
    (tmp_path / "file.txt").write_text("")
    argv = [str(a).format(tmp=tmp_path) for a in argv]
    if "--onnx" not in argv:
        argv += ["--onnx", str(tmp_path / "x.onnx")]
    code, _, err = run(capsys, "--scale", 2, *argv)
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_a_missing_onnxruntime_is_named_with_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(export, "NEEDS", ("onnx", "onnxruntime_not_installed"))
    code, _, err = run(capsys, "--scale", 2, "--onnx", tmp_path / "x.onnx")
    assert code == 1 and "export needs onnxruntime_not_installed" in err and "[onnx]" in err
