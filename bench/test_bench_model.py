"""pytest-benchmark suite of whole models: ASID and ASID-D8 at x2 and x4, inference at 720p
output and one training step (batch 16 of 64x64 LR patches, L1 loss, Adam), for the reference
and fused models, eager and ``torch.compile``."""
import pytest

from asid_fast import flops as FL
from asid_fast.tools import bench_cases as BC

pytest.importorskip("pytest_benchmark")

CONFIGS = [("asid", 4), ("asid", 2), ("asid_d8", 4), ("asid_d8", 2)]
CANDIDATES = ("reference", "reference+compile", "fused", "fused+compile")
TRAIN_BHW = (16, 64, 64)


@pytest.mark.parametrize("candidate", CANDIDATES)
@pytest.mark.parametrize("mode", ("inference", "train_step"))
@pytest.mark.parametrize("variant,scale", CONFIGS, ids=[f"{v}_x{s}" for v, s in CONFIGS])
def test_model(benchmark, device, dtype, timed, variant, scale, mode, candidate):
    skipped = []
    lr = FL.lr_size_for_output(scale)
    case = next(BC.model_cases(variant, scale, device, dtype, lr, TRAIN_BHW,
                               candidate.endswith("+compile"), (mode,), skipped))
    if candidate not in case.candidates:
        pytest.skip("; ".join(s["reason"] for s in skipped) or f"{candidate} unavailable")
    fn = timed(case.candidates[candidate])
    fn()  # compiles the torch.compile candidates
    benchmark.group = f"{variant}_x{scale} {mode} {case.shape}"
    benchmark.extra_info.update(flops=case.flops, shape=case.shape)
    benchmark.pedantic(fn, rounds=3 if device.type == "cpu" else 20, warmup_rounds=1)
