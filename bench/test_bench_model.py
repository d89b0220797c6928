"""pytest-benchmark suite of whole models: ASID and ASID-D8 at x2 and x4, inference at 720p
output and one training step (batch 16 of 64x64 LR patches, L1 loss, Adam), for the candidates
of ``asid-fast bench --compare``: reference and fused models, eager and ``torch.compile``, and
onnxruntime on the exported reference (CPU inference, when installed)."""
import pytest

from asid_fast import flops as FL
from asid_fast.tools import bench_cases as BC

pytest.importorskip("pytest_benchmark")

CONFIGS = [("asid", 4), ("asid", 2), ("asid_d8", 4), ("asid_d8", 2)]
CANDIDATES = ("reference", "reference+compile", "fused", "fused+compile", BC.ORT)
TRAIN_BHW = (16, 64, 64)


def _compare(candidate):
    if candidate == BC.ORT:
        return (BC.ORT,)
    return ("compile",) if candidate.endswith("+compile") else ()


@pytest.mark.parametrize("candidate", CANDIDATES)
@pytest.mark.parametrize("mode", ("inference", "train_step"))
@pytest.mark.parametrize("variant,scale", CONFIGS, ids=[f"{v}_x{s}" for v, s in CONFIGS])
def test_model(run_case, device, dtype, variant, scale, mode, candidate):
    skipped = []
    case = BC.model_case(variant, scale, mode, device, dtype, FL.lr_size_for_output(scale),
                         TRAIN_BHW, _compare(candidate), skipped)
    if candidate not in case.candidates:
        pytest.skip("; ".join(s["reason"] for s in skipped) or f"{candidate} unavailable")
    run_case(case, candidate)
