"""onnxruntime running the exported reference model: the deployment runtime many users would pick
instead of this package, a candidate of ``asid-fast bench --compare`` on the CPU.

Optional: needs ``onnxruntime``, and ``onnx`` for torch's exporter (``pip install
--no-build-isolation "torch==<the installed version>" -e ".[bench]"``). The model is exported
with ``torch.onnx.export`` (TorchScript exporter, ``dynamo=False``, opset :data:`OPSET`, fixed
input shape); the session uses ``ORT_ENABLE_ALL`` and as many intra-op threads as torch, and its
threads wait passively (no spinning), as ``OMP_WAIT_POLICY=PASSIVE`` makes torch's: spinning
threads take cores from the candidate timed next and from other processes on a shared machine.
"""
from __future__ import annotations

import importlib.util
import io
import warnings

import torch

OPSET = 17
RULE = (f"onnxruntime: the reference exported with torch.onnx.export (dynamo=False, opset "
        f"{OPSET}), ORT_ENABLE_ALL, intra-op threads = torch threads, no spinning")


def why_unavailable(device, dtype) -> str | None:
    """Why the onnxruntime candidate cannot run on ``device`` in ``dtype``, or None."""
    missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    if missing:
        return f"{' and '.join(missing)} not installed (pip install onnx onnxruntime)"
    if torch.device(device).type != "cpu":
        return "the onnxruntime candidate runs on the CPU only"
    if dtype != torch.float32:
        return "the onnxruntime candidate runs float32 only"
    return None


def export(model: torch.nn.Module, x: torch.Tensor) -> bytes:
    """``model`` (eval mode) as an ONNX graph for inputs shaped like ``x``."""
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model.eval(), (x,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=["x"], output_names=["y"])
    return buffer.getvalue()


def session(onnx_model: bytes):
    """An onnxruntime CPU session of ``onnx_model`` with the settings of :data:`RULE`."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx_model, options, providers=["CPUExecutionProvider"])


def runner(model: torch.nn.Module, x: torch.Tensor):
    """A zero-argument callable running ``model(x)`` on onnxruntime and returning a tensor. Its
    first call exports the model and builds the session (the first-call time, as compilation
    is for torch.compile)."""
    state = {}

    def run():
        if not state:
            state["session"] = session(export(model, x))
            state["feed"] = {"x": x.numpy()}
        return torch.from_numpy(state["session"].run(None, state["feed"])[0])
    return run
