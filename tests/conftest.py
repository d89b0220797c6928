import os
from pathlib import Path

import pytest
import torch

# The Triton kernels run on CPU tensors through the interpreter; it must be enabled before triton
# is first imported (torch.utils.flop_counter imports it). A CUDA machine runs them for real.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found next to the repository ({SHARED})")
    return SHARED


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
