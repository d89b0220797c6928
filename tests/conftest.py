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


def pytest_collection_modifyitems(items):
    """Slow cases first (a stable sort): with pytest-xdist's work stealing (pyproject.toml's
    addopts) the workers start on the long cases (the Triton-interpreter model runs take minutes
    each) and share the rest, instead of one worker ending on a chain of them."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(scope="session")
def shared_dir():
    if not SHARED.is_dir():
        pytest.fail(f"../shared not found next to the repository ({SHARED})")
    return SHARED


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
