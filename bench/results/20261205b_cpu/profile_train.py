"""torch.profiler table of one fused x2 training step (batch 16 of 64x64, L1 + Adam), after
two warm-up steps; self CPU time per op, grouped by input shape with --shapes; --rows N table
rows (default 45); --reference: the fused model on the reference op backend."""
import os
import sys

from torch.profiler import profile

sys.path.insert(0, os.path.dirname(__file__))
from split_ab import training_step  # noqa: E402

shapes = "--shapes" in sys.argv
rows = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else 45
_, step, _ = training_step("reference" if "--reference" in sys.argv else "auto")
for _ in range(2):
    step()
with profile(record_shapes=shapes) as prof:
    step()
print(prof.key_averages(group_by_input_shape=shapes).table(
    sort_by="self_cpu_time_total", row_limit=rows, max_name_column_width=50,
    max_shapes_column_width=60))
