"""Triton window, shared-window and channel attention against the reference ops.

Without CUDA the kernels run on CPU tensors through the Triton interpreter, which needs
TRITON_INTERPRET=1 before triton is first imported (torch.utils.flop_counter imports it, so in a
full test run tests/conftest.py must set it; set here too for runs of this file alone).

Tolerances, as max |actual - expected| / max |expected| per tensor, against the reference run
in float64 on the same (rounded) inputs:
* float64: 1e-10 (measured ~5e-16);
* float32: 1e-5 (measured <= 8e-7: float32 rounding of 64-term products and softmax);
* float16 (interpreter) 5e-3 and bfloat16 (GPU only) 3e-2: a few units of the format's
  epsilon (2^-11, 2^-8), since q*scale, attn and the product operands are rounded to it as in
  the reference. bfloat16 is not tested in the interpreter: its tl.dot multiplies the raw uint16
  bit patterns of bfloat16 operands (triton/runtime/interpreter.py, create_dot).
"""
import os
import sys

import pytest
import torch

if not torch.cuda.is_available():
    _TRITON_IMPORTED_EARLY = "triton" in sys.modules and os.environ.get("TRITON_INTERPRET") != "1"
    os.environ.setdefault("TRITON_INTERPRET", "1")
else:
    _TRITON_IMPORTED_EARLY = False

pytest.importorskip("triton")

from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from asid_fast import ops  # noqa: E402
from asid_fast.ops.backends import triton as triton_backend  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
TOL = {torch.float64: 1e-10, torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}
MODES = ("meso", "global")
ON_GPU = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True, scope="module")
def _triton_usable():
    if _TRITON_IMPORTED_EARLY:
        pytest.fail("triton was imported before TRITON_INTERPRET=1 was set: set it in "
                    "tests/conftest.py (before anything imports torch.utils.flop_counter)")
    assert triton_backend.available(torch.device(DEVICE)), triton_backend.why_unavailable()


def assert_rel(actual, expected, tol, name=""):
    err = (actual.double() - expected.double()).abs().max().item()
    scale = expected.double().abs().max().item()
    assert err <= tol * scale, f"{name}: max abs error {err:.3e} > {tol:g} * {scale:.3e}"


def run(fn, inputs, round_to=torch.float64):
    """Outputs of fn(*inputs) and the gradients of sum(output * fixed random cotangent) with
    respect to every input (cotangents rounded to ``round_to``, then cast to each output)."""
    leaves = [x.detach().requires_grad_(True) for x in inputs]
    outs = fn(*leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    gen = torch.Generator().manual_seed(1)
    cots = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(round_to).to(o)
            for o in outs]
    torch.autograd.backward(outs, cots)
    return [o.detach() for o in outs] + [x.grad for x in leaves]


def check_against_float64(fn_of_backend, inputs, dtype, names):
    """fn_of_backend(backend) -> fn; Triton in ``dtype`` vs the reference in float64."""
    got = run(fn_of_backend("triton"), [x.to(DEVICE, dtype) for x in inputs], dtype)
    want = run(fn_of_backend("reference"), [x.to(DEVICE, dtype).double() for x in inputs], dtype)
    assert len(got) == len(want) == len(names)
    for g, w, name in zip(got, want, names):
        assert g.dtype == dtype and g.shape == w.shape, name
        assert_rel(g, w, TOL[dtype], name)


# ---- window attention ------------------------------------------------------------------------

def window_fn(d, mode, with_bias=True):
    """backend -> f(qkv, bias): q, k, v as strided views of one (B, H, W, 3d) buffer."""
    def of_backend(backend):
        def f(qkv, bias):
            q, k, v = qkv.split(d, dim=-1)
            return ops.window_attention(q, k, v, bias if with_bias else None, mode=mode,
                                        backend=backend)
        return f
    return of_backend


WINDOW_NAMES = ("out", "attn", "dqkv", "dbias")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("h,w", [(16, 24), (24, 16)])
@pytest.mark.parametrize("d", [12, 24, 36])
def test_window_attention_float32(mode, h, w, d):
    """out, attn and every gradient (cotangents on out and attn) on strided qkv views."""
    qkv, bias = torch.randn(2, h, w, 3 * d), torch.randn(64, 64)
    check_against_float64(window_fn(d, mode), [qkv, bias], torch.float32, WINDOW_NAMES)


@pytest.mark.parametrize("mode", MODES)
def test_window_attention_float64_without_bias(mode):
    d = 24
    qkv, bias = torch.randn(2, 24, 16, 3 * d), torch.randn(64, 64)
    got = run(window_fn(d, mode, with_bias=False)("triton"), [qkv.double(), bias.double()])
    want = run(window_fn(d, mode, with_bias=False)("reference"), [qkv.double(), bias.double()])
    for g, w, name in zip(got[:3], want[:3], WINDOW_NAMES):
        assert_rel(g, w, TOL[torch.float64], name)
    assert got[3] is None and want[3] is None  # bias unused: no gradient


def test_window_attention_float16():
    d = 36
    qkv, bias = torch.randn(2, 16, 24, 3 * d), torch.randn(64, 64)
    check_against_float64(window_fn(d, "global"), [qkv, bias], torch.float16, WINDOW_NAMES)


def test_window_attention_separate_layouts():
    """q, k, v with three different stride patterns (a projection slice, a column crop of a
    wider map, a contiguous map), window 4 (16 tokens: one 16x16 tile)."""
    d = 12
    wide = torch.randn(2, 16, 40, 2 * d)

    def of_backend(backend):
        def f(qkv, wide, v):
            return ops.window_attention(qkv[..., d:2 * d], wide[:, :, 8:32, d:], v, None,
                                        mode="global", window=4, backend=backend)
        return f
    inputs = [torch.randn(2, 16, 24, 3 * d), wide, torch.randn(2, 16, 24, d)]
    check_against_float64(of_backend, inputs, torch.float32, ("out", "attn", "dqkv", "dwide", "dv"))


def test_window_attention_several_windows_per_backward_program(monkeypatch):
    """The backward's programs stride over the windows when there are more windows than dbias
    partials (256 on real maps): 12 windows on 5 programs."""
    monkeypatch.setattr(sys.modules["asid_fast.kernels.window_attention"], "BIAS_PARTIALS", 5)
    d = 12
    check_against_float64(window_fn(d, "meso"), [torch.randn(2, 16, 24, 3 * d),
                                                 torch.randn(64, 64)], torch.float32, WINDOW_NAMES)


@pytest.mark.parametrize("mode", MODES)
def test_window_attention_gradcheck(mode):
    """float64 gradcheck (fast mode) through out and attn; d=4 pads to 16, 2 windows."""
    q, k, v = (torch.randn(1, 8, 16, 4, dtype=torch.float64, device=DEVICE,
                           requires_grad=True) for _ in range(3))
    bias = torch.randn(64, 64, dtype=torch.float64, device=DEVICE, requires_grad=True)

    def f(q, k, v, bias):
        return ops.window_attention(q, k, v, bias, mode=mode, backend="triton")
    assert torch.autograd.gradcheck(f, (q, k, v, bias), fast_mode=True)


# ---- shared attention --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", MODES)
def test_shared_window_attention_float32(mode):
    """A stored attention matrix (not row-normalised) applied to v: out, dattn, dv."""
    def of_backend(backend):
        return lambda attn, v: ops.shared_window_attention(attn, v, mode=mode, backend=backend)
    inputs = [torch.randn(6, 64, 64), torch.randn(1, 16, 24, 24)]
    check_against_float64(of_backend, inputs, torch.float32, ("out", "dattn", "dv"))


@pytest.mark.parametrize("mode", MODES)
def test_attention_sharing_backpropagates_into_block0(mode):
    """block0 computes attn, a sharing block applies it to its own v: the sharing block's
    gradient reaches q and k through the incoming gradient of attn."""
    d = 12

    def of_backend(backend):
        def f(qkv, bias, v2):
            q, k, v = qkv.split(d, dim=-1)
            out, attn = ops.window_attention(q, k, v, bias, mode=mode, backend=backend)
            return out, ops.shared_window_attention(attn, v2, mode=mode, backend=backend)
        return f
    inputs = [torch.randn(2, 16, 24, 3 * d), torch.randn(64, 64), torch.randn(2, 16, 24, d)]
    check_against_float64(of_backend, inputs, torch.float32,
                          ("out", "shared_out", "dqkv", "dbias", "dv2"))


def test_shared_window_attention_gradcheck():
    attn = torch.randn(2, 16, 16, dtype=torch.float64, device=DEVICE, requires_grad=True)
    v = torch.randn(1, 8, 4, 3, dtype=torch.float64, device=DEVICE, requires_grad=True)

    def f(attn, v):
        return ops.shared_window_attention(attn, v, mode="global", window=4, backend="triton")
    assert torch.autograd.gradcheck(f, (attn, v), fast_mode=True)


# ---- channel attention -------------------------------------------------------------------------

def channel_fn(c, mode, window):
    def of_backend(backend):
        def f(qkv, temperature):
            q, k, v = qkv.split(c, dim=-1)
            return ops.channel_attention(q, k, v, temperature, mode=mode, window=window,
                                         backend=backend)
        return f
    return of_backend


CHANNEL_NAMES = ("out", "dqkv", "dtemperature")
CHANNEL_CASES = [  # mode, window, B, H, W, C
    ("window", 8, 2, 16, 24, 48),  # C pads 48 -> 64
    ("window", 8, 2, 24, 16, 12),
    ("cell", 4, 2, 16, 24, 48),  # 16 groups of 24 pixels per image
    ("cell", 4, 1, 40, 32, 24),  # 80 pixels per group: two pixel blocks, the second masked
]


@pytest.mark.parametrize("mode,window,b,h,w,c", CHANNEL_CASES)
def test_channel_attention_float32(mode, window, b, h, w, c):
    inputs = [torch.randn(b, h, w, 3 * c), torch.full((1, 1, 1), 1.7)]
    check_against_float64(channel_fn(c, mode, window), inputs, torch.float32, CHANNEL_NAMES)


@pytest.mark.parametrize("mode,window", [("window", 8), ("cell", 4)])
def test_channel_attention_float64(mode, window):
    c = 20
    inputs = [torch.randn(2, 16, 24, 3 * c), torch.full((1, 1, 1), 0.6)]
    check_against_float64(channel_fn(c, mode, window), inputs, torch.float64, CHANNEL_NAMES)


def test_channel_attention_float16():
    c = 48
    inputs = [torch.randn(2, 16, 24, 3 * c), torch.full((1, 1, 1), 1.3)]
    check_against_float64(channel_fn(c, "window", 8), inputs, torch.float16, CHANNEL_NAMES)


def test_channel_attention_zero_channel():
    """A channel that is zero over a whole group: its norm is clamped to eps (1e-12) and its
    gradient skips the normalisation's projection term, as in F.normalize."""
    c = 8
    qkv = torch.randn(1, 8, 8, 3 * c, dtype=torch.float64)
    qkv[:, :4, :4, 2] = 0  # q channel 2 of window (0, 0)
    qkv[:, 4:, 4:, c + 5] = 0  # k channel 5 of window (1, 1)
    check_against_float64(channel_fn(c, "window", 4), [qkv, torch.full((1, 1, 1), 2.0)],
                          torch.float64, CHANNEL_NAMES)


@pytest.mark.parametrize("mode,window", [("window", 4), ("cell", 2)])
def test_channel_attention_gradcheck(mode, window):
    """4 groups of 16 pixels, C=5 padded to 16."""
    q, k, v = (torch.randn(1, 8, 8, 5, dtype=torch.float64, device=DEVICE,
                           requires_grad=True) for _ in range(3))
    temperature = torch.full((1, 1, 1), 1.5, dtype=torch.float64, device=DEVICE,
                             requires_grad=True)

    def f(q, k, v, temperature):
        return ops.channel_attention(q, k, v, temperature, mode=mode, window=window,
                                     backend="triton")
    assert torch.autograd.gradcheck(f, (q, k, v, temperature), fast_mode=True)


# ---- operator registration -----------------------------------------------------------------

def test_flop_counts():
    b, h, w, d = 2, 16, 24, 12
    q = torch.randn(b, h, w, d, device=DEVICE, requires_grad=True)
    windows = b * (h // 8) * (w // 8)
    with FlopCounterMode(display=False) as counter:
        out, attn = ops.window_attention(q, q, q, None, backend="triton")
        ops.shared_window_attention(attn, q, backend="triton")
        ops.channel_attention(q, q, q, torch.ones(1, device=DEVICE), backend="triton")
    product = 2 * windows * 64 * 64 * d  # one (64 x 64) x (64 x d) product per window
    assert counter.get_total_flops() == 2 * product + product + 2 * (2 * b * h * w * d * d)


def test_fake_tensor_shapes():
    """The registered fake kernels give the real outputs' shapes, dtypes and strides."""
    q = torch.randn(1, 8, 16, 36, device=DEVICE)[..., :12]
    temperature = torch.ones(1, device=DEVICE)
    ns = torch.ops.asid_fast
    calls = [(ns.triton_window_attention_fwd, (q, q, q, None, "global", 8, 0.5)),
             (ns.triton_shared_window_attention_fwd, (torch.randn(2, 64, 64, device=DEVICE), q,
                                                      "meso", 8)),
             (ns.triton_channel_attention_fwd, (q, q, q, temperature, "cell", 4))]
    mode = torch._subclasses.fake_tensor.FakeTensorMode()
    for op, args in calls:
        real = op(*args)
        fake = op(*(mode.from_tensor(a) if isinstance(a, torch.Tensor) else a for a in args))
        for r, f in zip(real if isinstance(real, tuple) else (real,),
                        fake if isinstance(fake, tuple) else (fake,)):
            assert (f.shape, f.dtype, f.stride()) == (r.shape, r.dtype, r.stride()), op


# ---- bad inputs (through the public API) -------------------------------------------------------

def test_bad_inputs():
    q = torch.randn(1, 16, 16, 12, device=DEVICE)
    with pytest.raises(ValueError, match="multiples of window"):
        ops.window_attention(q[:, :12], q[:, :12], q[:, :12], backend="triton")
    big = torch.randn(1, 8, 8, 65, device=DEVICE)
    with pytest.raises(ValueError, match="exceeds"):
        ops.window_attention(big, big, big, backend="triton")
    with pytest.raises(ValueError, match="shape"):
        ops.window_attention(q, q[..., :8], q, backend="triton")
    with pytest.raises(TypeError, match="dtype"):
        ops.window_attention(q, q.double(), q, backend="triton")
    with pytest.raises(ValueError, match="is on meta"):
        ops.window_attention(q, q.to("meta"), q, backend="triton")
    with pytest.raises(ValueError, match="bias"):
        ops.window_attention(q, q, q, torch.randn(63, 64, device=DEVICE), backend="triton")
    with pytest.raises(ValueError, match="attn must be"):
        ops.shared_window_attention(torch.randn(3, 64, 64, device=DEVICE), q, backend="triton")
    wide = torch.randn(1, 24, 24, 4, device=DEVICE)
    with pytest.raises(ValueError, match="window\\*window must be <= 128"):
        ops.window_attention(wide, wide, wide, window=12, backend="triton")
    many = torch.randn(1, 8, 8, 129, device=DEVICE)
    with pytest.raises(ValueError, match="C must be <= 128"):
        ops.channel_attention(many, many, many, torch.ones(1, device=DEVICE), backend="triton")
    with pytest.raises(ValueError, match="temperature"):
        ops.channel_attention(q, q, q, torch.ones(2, device=DEVICE), backend="triton")


# ---- larger cases --------------------------------------------------------------------------------

@pytest.mark.slow
def test_larger_maps():
    """Window attention on 40x64 (B=2, 80 windows) and cell channel attention with window 8
    (64 groups per image)."""
    d = 36
    for mode in MODES:
        check_against_float64(window_fn(d, mode), [torch.randn(2, 40, 64, 3 * d),
                                                   torch.randn(64, 64)],
                              torch.float32, WINDOW_NAMES)
    check_against_float64(channel_fn(48, "cell", 8), [torch.randn(2, 16, 24, 144),
                                                      torch.full((1, 1, 1), 1.7)],
                          torch.float32, CHANNEL_NAMES)


# ---- GPU only: bfloat16 and torch.compile ----------------------------------------------------

@pytest.mark.cuda
@ON_GPU
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
def test_cuda_dtypes(dtype):
    """720p-sized cell groups (n = 920 pixels), 90 windows per mode and batch."""
    d = 36
    for mode in MODES:
        check_against_float64(window_fn(d, mode), [torch.randn(2, 72, 80, 3 * d),
                                                   torch.randn(64, 64)], dtype, WINDOW_NAMES)
    for mode in ("window", "cell"):
        check_against_float64(channel_fn(48, mode, 8), [torch.randn(1, 184, 320, 144),
                                                        torch.full((1, 1, 1), 1.7)],
                              dtype, CHANNEL_NAMES)


@pytest.mark.cuda
@ON_GPU
def test_cuda_compile_without_graph_breaks():
    """The operators under torch.compile(fullgraph=True), forward and backward (called through
    the backend module: the public API's dispatch is not part of this check)."""
    d, c = 24, 48

    def f(qkv, bias, v2, x, temperature):
        q, k, v = qkv.split(d, dim=-1)
        out, attn = triton_backend.window_attention(q, k, v, bias, "global", 8, d ** -0.5)
        shared = triton_backend.shared_window_attention(attn, v2, "global", 8)
        xq, xk, xv = x.split(c, dim=-1)
        cam = triton_backend.channel_attention(xq, xk, xv, temperature, "cell", 8)
        return out, shared, cam

    inputs = [torch.randn(2, 32, 48, 3 * d), torch.randn(64, 64), torch.randn(2, 32, 48, d),
              torch.randn(2, 32, 48, 3 * c), torch.full((1, 1, 1), 1.7)]
    inputs = [x.cuda() for x in inputs]
    eager = run(f, inputs)
    compiled = run(torch.compile(f, fullgraph=True), inputs)
    for e, g in zip(eager, compiled):
        assert_rel(g, e, 1e-6)
