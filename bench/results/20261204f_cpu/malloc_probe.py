"""Probe: does keeping freed large blocks in glibc's heap (no mmap per tensor, so no page faults
on first touch) speed up the fused x2 training step or the x4 720p forward? One process per
measurement; TUNE=1 calls mallopt before the model is built, TUNE=env labels a run with
MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ set in its environment.

    TUNE=1 OMP_WAIT_POLICY=PASSIVE python bench/results/20261204f_cpu/malloc_probe.py train|infer
"""
import ctypes, os, resource, sys, time, torch
if os.environ.get("TUNE") == "1":
    libc = ctypes.CDLL("libc.so.6")
    assert libc.mallopt(-3, 32 << 20) == 1  # M_MMAP_THRESHOLD
    assert libc.mallopt(-1, (1 << 31) - 1) == 1  # M_TRIM_THRESHOLD (an int)
from asid_fast.model import ASID
torch.set_num_threads(2)
torch.manual_seed(0)
mode = sys.argv[1]
if mode == "train":
    model = ASID(2).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-6)
    x, y = torch.rand(16, 3, 64, 64), torch.rand(16, 3, 128, 128)
    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.l1_loss(model(x), y).backward()
        opt.step()
else:
    model = ASID(4).eval()
    x = torch.rand(1, 3, 180, 320)
    def step():
        with torch.no_grad():
            model(x)
ts = []
for i in range(6):
    t0 = time.perf_counter(); step(); ts.append((time.perf_counter() - t0) * 1e3)
ts = ts[1:]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{mode} TUNE={os.environ.get('TUNE','0')} best {min(ts):.0f} median {sorted(ts)[len(ts)//2]:.0f} ms, peak RSS {rss:.0f} MiB")
