"""pytest-benchmark suite of the fused ops at ASID's real shapes (x4, 720p output): every op
variant of :data:`asid_fast.tools.bench_cases.OP_SPECS`, forward on the inference map and
forward+backward on the training map, on every backend that can run it."""
import pytest

from asid_fast import flops as FL
from asid_fast.ops import available_backends
from asid_fast.tools import bench_cases as BC

pytest.importorskip("pytest_benchmark")

INFER_BHW = (1, *FL.padded_size(FL.lr_size_for_output(4)))  # 1 x 184 x 320
TRAIN_BHW = (16, 64, 64)
BACKENDS = ("reference", "cpu", "cuda", "triton")
CASES = BC.op_plan((36, 24, 12))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec,variant,mode", CASES,
                         ids=[f"{s.function}[{v[0]},{v[1]}]-{m}" for s, v, m in CASES])
def test_op(run_case, device, dtype, spec, variant, mode, backend):
    if backend not in available_backends(device) or (device.type == "cpu" and backend == "triton"):
        pytest.skip(f"backend {backend} not available on {device.type}")
    bhw = INFER_BHW if mode == "fwd" else TRAIN_BHW
    case = BC.op_case(spec, variant, mode, device, dtype, [backend], bhw)
    try:
        run_case(case, backend)
    except RuntimeError as e:
        if "cannot run" in str(e):
            pytest.skip(str(e))
        raise
