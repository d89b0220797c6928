"""torch.profiler self time of the fused x4 1x3x180x320 forward under the float32 matmul
precision given (ieee | bf16): python profile_precision.py bf16"""
import torch, sys
from torch.profiler import profile, ProfilerActivity
from asid_fast.model import ASID
torch.set_num_threads(2)
torch.backends.mkldnn.matmul.fp32_precision = sys.argv[1]
m = ASID(4).eval(); x = torch.rand(1,3,180,320)
with torch.no_grad():
    m(x); m(x)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        m(x)
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=8, max_name_column_width=45))
