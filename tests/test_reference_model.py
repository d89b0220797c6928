"""The reference ASID against the published architecture (ASID_SPEC.md)."""
import pytest
import torch
import torch.nn.functional as F

from asid_fast.reference import ASID
from asid_fast.reference.functional import relative_position_index, window_partition

PARAMS = {("asid", 2): 297_516, ("asid", 3): 304_011, ("asid", 4): 313_104,
          ("asid_d8", 2): 732_146, ("asid_d8", 3): 738_641, ("asid_d8", 4): 747_734}


@pytest.mark.parametrize("variant,scale", sorted(PARAMS))
def test_parameter_count(variant, scale):
    model = ASID(scale, variant)
    assert sum(p.numel() for p in model.parameters()) == PARAMS[variant, scale]


def test_state_dict_matches_published_keys(shared_dir):
    published = []
    for line in (shared_dir / "asid_x2_state_dict_keys.txt").read_text().splitlines():
        name, shape = line.split()
        published.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s)))
    assert len(published) == 366
    ours = {k: tuple(v.shape) for k, v in ASID(2).state_dict().items()}
    assert ours == dict(published)  # the published list is sorted by name


def test_pad_and_crop_odd_sizes():
    model = ASID(2).eval().double()
    x = torch.rand(2, 3, 13, 21, dtype=torch.float64)
    with torch.no_grad():
        y = model(x)
        # Zero padding at the bottom/right to 16x24 is what forward does internally: running the
        # explicitly padded image (a multiple of 8, so no further padding) and cropping must match.
        y_pad = model(F.pad(x, (0, 3, 0, 3)))[:, :, :26, :42]
        y0 = model(x[:1])
    assert y.shape == (2, 3, 26, 42)
    torch.testing.assert_close(y, y_pad, rtol=0, atol=1e-12)
    torch.testing.assert_close(y[:1], y0, rtol=0, atol=1e-12)


def test_smallest_input_and_scales():
    for scale in (2, 3, 4):
        y = ASID(scale).eval()(torch.rand(1, 3, 9, 9))
        assert y.shape == (1, 3, 9 * scale, 9 * scale)


@pytest.mark.parametrize("bad,match", [
    (torch.rand(3, 16, 16), "4-D"),
    (torch.rand(1, 1, 16, 16), "3 \\(RGB\\) channels"),
    (torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8), "floating-point"),
    (torch.rand(1, 3, 8, 16), "too small"),
])
def test_bad_inputs(bad, match):
    with pytest.raises(ValueError, match=match):
        ASID(2)(bad)


def test_bad_config():
    with pytest.raises(ValueError, match="scale"):
        ASID(5)
    with pytest.raises(ValueError, match="variant"):
        ASID(2, "asid_d4")


def test_relative_position_index_formula():
    idx = relative_position_index(8)
    for q in range(64):
        i1, j1 = divmod(q, 8)
        for k in range(64):
            i2, j2 = divmod(k, 8)
            assert idx[q, k] == (i1 - i2 + 7) * 15 + (j1 - j2 + 7)


def _hand_attention(module, x, pixels):
    """Attention matrix of one window from its 64 pixels gathered by hand."""
    d = x.shape[-1]
    w_qkv = module.to_qkv.weight
    tokens = torch.stack([x[0, r, c] for r, c in pixels])  # (64, d)
    q = tokens @ w_qkv[:d].T * d ** -0.5
    k = tokens @ w_qkv[d:2 * d].T
    table = module.rel_pos_bias.weight[:, 0]
    bias = torch.empty(64, 64, dtype=x.dtype)
    for a in range(64):
        for b in range(64):
            (i1, j1), (i2, j2) = divmod(a, 8), divmod(b, 8)
            bias[a, b] = table[(i1 - i2 + 7) * 15 + (j1 - j2 + 7)]
    return torch.softmax(q @ k.T + bias, dim=-1)


@pytest.mark.parametrize("mode", ["meso", "global"])
def test_one_window_by_hand(mode):
    model = ASID(2).double()
    half = model.block0.residual_layer[0].SLA1 if mode == "meso" else model.block0.residual_layer[0].SGA1
    torch.nn.init.normal_(half.attn.rel_pos_bias.weight)
    h, w = 24, 32  # 3 x 4 windows
    x = torch.randn(1, h, w, 36, dtype=torch.float64)
    _, attn = half.attn(x)
    X, Y = 1, 2
    if mode == "meso":
        pixels = [(8 * X + i, 8 * Y + j) for i in range(8) for j in range(8)]
    else:
        pixels = [(i * h // 8 + X, j * w // 8 + Y) for i in range(8) for j in range(8)]
    expected = _hand_attention(half.attn, x, pixels)
    torch.testing.assert_close(attn[X * (w // 8) + Y], expected, rtol=0, atol=1e-12)


def test_window_partition_order():
    h, w = 16, 24
    x = torch.arange(h * w, dtype=torch.float64).reshape(1, h, w, 1)
    meso = window_partition(x, "meso", 8)[:, :, 0]
    glob = window_partition(x, "global", 8)[:, :, 0]
    for n in range(6):
        X, Y = divmod(n, 3)
        for t in range(64):
            i, j = divmod(t, 8)
            assert meso[n, t] == (8 * X + i) * w + 8 * Y + j
            assert glob[n, t] == (i * 2 + X) * w + j * 3 + Y


def test_sharing_groups_use_block0_matrices():
    model = ASID(2).double().eval()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    f0 = model.input(x)
    _, attns = model.block0(f0)
    assert len(attns) == 6 and all(a.shape == (4, 64, 64) for a in attns)
    base, _ = model.block1(f0, attns)
    swapped, _ = model.block1(f0, attns[1:2] + attns[0:1] + attns[2:])  # meso <-> global of SAM1
    assert not torch.allclose(base, swapped)


def test_float32_matches_float64():
    model = ASID(3, "asid_d8").eval()
    x = torch.rand(2, 3, 19, 26)
    with torch.no_grad():
        y32 = model(x)
        y64 = model.double()(x.double())
    err = (y32.double() - y64).abs().max() / y64.abs().max()
    assert err < 1e-5, float(err)


def test_gradients_reach_block0_attention_from_sharing_groups():
    model = ASID(2).double()
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    f0 = model.input(x)
    _, attns = model.block0(f0)
    out, _ = model.block1(f0.detach(), attns)
    out.abs().sum().backward()
    rel = model.block0.residual_layer[0].SLA1.attn.rel_pos_bias.weight.grad
    assert rel is not None and rel.abs().sum() > 0
