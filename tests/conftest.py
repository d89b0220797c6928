import os
from pathlib import Path

import pytest
import torch

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
