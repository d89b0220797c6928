"""In-process ABBA A/B of fused x4 1x3x180x320 inference, as abba.py does for the training step.

    OMP_WAIT_POLICY=PASSIVE python abba_inference.py ENV ROUNDS
"""
import os
import sys

import torch

from asid_fast.model import ASID

sys.path.insert(0, os.path.dirname(__file__))
from abba import abba  # noqa: E402

torch.set_num_threads(2)
model = ASID(4, "asid").eval()
x = torch.rand(1, 3, 180, 320, generator=torch.Generator().manual_seed(0))


def forward():
    with torch.inference_mode():
        model(x)


abba(sys.argv[1], int(sys.argv[2]), forward)
