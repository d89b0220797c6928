"""The fused model is a drop-in for the reference on an empty batch too: (0, 3, H, W) in,
(0, 3, sH, sW) out."""
import pytest
import torch

import asid_fast
from asid_fast.ops import available_backends
from asid_fast.reference import ASID as ReferenceASID


@pytest.mark.parametrize("backend", ["auto", *available_backends(torch.device("cpu"))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_empty_batch_gives_an_empty_output_like_the_reference(backend, dtype):
    x = torch.zeros(0, 3, 17, 10, dtype=dtype)
    want = ReferenceASID(3).to(dtype)(x)
    got = asid_fast.ASID(3, backend=backend).to(dtype)(x)
    assert want.shape == got.shape == (0, 3, 51, 30)
    assert got.dtype == want.dtype == dtype and got.device == want.device
