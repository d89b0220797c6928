"""torch.profiler table of one fused x2 training step (batch 16 of 64x64, L1 + Adam), after
two warm-up steps; self CPU time per op, grouped by input shape with --shapes."""
import sys

import torch
import torch.nn.functional as F
from torch.profiler import profile

from asid_fast.model import ASID

torch.set_num_threads(2)
shapes = "--shapes" in sys.argv
backend = "reference" if "--reference" in sys.argv else "auto"
torch.manual_seed(0)
m = ASID(2, "asid", backend=backend).train()
opt = torch.optim.Adam(m.parameters(), lr=1e-4)
g = torch.Generator().manual_seed(2)
x = torch.rand(16, 3, 64, 64, generator=g)
t = torch.rand(16, 3, 128, 128, generator=g)


def step():
    opt.zero_grad(set_to_none=True)
    F.l1_loss(m(x), t).backward()
    opt.step()


for _ in range(2):
    step()
with profile(record_shapes=shapes) as prof:
    step()
print(prof.key_averages(group_by_input_shape=shapes).table(
    sort_by="self_cpu_time_total", row_limit=int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 45, max_name_column_width=50,
    max_shapes_column_width=60))
