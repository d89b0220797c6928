import torch, time, torch.nn.functional as F
torch.set_num_threads(2)
w = torch.randn(48, 48, 3, 3); b = torch.randn(48)
xc = torch.randn(1, 48, 184, 320)
xl = xc.contiguous(memory_format=torch.channels_last)
xv = xc.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)  # NHWC storage view as the model
fl = 184 * 320 * 48 * 48 * 9 * 2
def t(f, n=15):
    f(); best = 1e9
    for _ in range(n):
        t0 = time.perf_counter(); f(); best = min(best, time.perf_counter() - t0)
    return best
with torch.inference_mode():
    for name, x in (("nchw", xc), ("cl", xl), ("view", xv)):
        s = t(lambda: F.conv2d(x, w, b, padding=1))
        print(name, "%.1f ms %.1f GFLOP/s" % (s * 1e3, fl / s / 1e9))
    wl = w.contiguous(memory_format=torch.channels_last)
    s = t(lambda: F.conv2d(xl, wl, b, padding=1)); print("cl+wcl %.1f ms" % (s*1e3))
    # as 9 shifted mm: im2col-free estimate via one big mm of same flops
    A = torch.randn(184 * 320, 432); B = torch.randn(432, 48)
    s = t(lambda: A @ B); print("mm 58880x432x48 %.1f ms %.1f GFLOP/s" % (s * 1e3, fl / s / 1e9))
