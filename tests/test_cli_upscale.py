"""``asid-fast upscale`` end to end on tiny images with a randomly initialised checkpoint."""
import numpy as np
import pytest
import torch

from asid_fast.cli import main
from asid_fast.ops import _registry
from asid_fast.reference import ASID
from asid_fast import shipped_weights
from asid_fast.tools import runtime
from asid_fast.tools.imageio import Picture, read_image, write_image
from asid_fast.tools.upscale import upscale
from helpers import fp32_precision


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("w") / "asid_x2.pt"
    torch.save(ASID(2, "asid").state_dict(), path)
    return path


def image(tmp_path, name, h, w, channels=3, alpha=False, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    top = np.iinfo(dtype).max + 1
    pic = Picture(rng.integers(0, top, (h, w, channels)).astype(dtype),
                  rng.integers(0, top, (h, w)).astype(dtype) if alpha else None, "PNG")
    path = tmp_path / name
    write_image(path, pic)
    return path


def run(capsys, *argv):
    code = main(["upscale", *map(str, argv)])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_output_matches_the_model_and_tile_covering_image_equals_whole(tmp_path, ckpt, capsys):
    src = image(tmp_path, "in.png", 20, 20)
    for tile in (0, 32):
        code, _ = run(capsys, src, "-o", tmp_path / f"t{tile}.png", "--scale", 2, "--weights", ckpt,
                      "--tile", tile, "--device", "cpu")
        assert code == 0
    whole, tiled = read_image(tmp_path / "t0.png").pixels, read_image(tmp_path / "t32.png").pixels
    assert whole.shape == (40, 40, 3)
    np.testing.assert_array_equal(whole, tiled)
    # the pipeline: [0, 255] -> [-1, 1] (the authors' convention) -> model -> [0, 1] -> uint8
    model = runtime.build_model(2, "asid", "auto")
    runtime.load_weights(model, ckpt)
    x = torch.from_numpy(read_image(src).pixels).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        y = ((model(x * 2 - 1) + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).double().numpy()
    np.testing.assert_array_equal(whole, np.round(y * 255).astype(np.uint8))


def test_tiles_batches_and_size(tmp_path, ckpt):
    src = image(tmp_path, "in.png", 21, 30)
    one = upscale([src], tmp_path / "a.png", 2, ckpt, tile=12, overlap=4, device="cpu", progress=False)
    three = upscale([src], tmp_path / "b.png", 2, ckpt, tile=12, overlap=4, batch=3, device="cpu",
                    progress=False)
    a, b = read_image(one[0]).pixels, read_image(three[0]).pixels
    assert a.shape == (42, 60, 3)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # batching only reorders float sums


@pytest.mark.parametrize("channels,alpha,dtype", [(1, False, np.uint8), (3, True, np.uint8),
                                                  (3, False, np.uint16), (1, True, np.uint16)])
def test_keeps_gray_alpha_and_bit_depth(tmp_path, ckpt, channels, alpha, dtype):
    src = image(tmp_path, "in.png", 10, 12, channels, alpha, dtype)
    out = upscale([src], tmp_path / "out", 2, ckpt, tile=0, device="cpu", progress=False)[0]
    assert out == tmp_path / "out" / "in.png"
    pic = read_image(out)
    assert pic.pixels.dtype == dtype and pic.pixels.shape == (20, 24, channels)
    assert (pic.alpha is not None) == alpha
    if alpha:
        assert pic.alpha.shape == (20, 24)


def test_folder_input_formats_and_suffix(tmp_path, ckpt):
    folder = tmp_path / "in"
    folder.mkdir()
    image(folder, "a.png", 10, 10)
    image(folder, "b.jpg", 11, 9, seed=1)
    (folder / "notes.txt").write_text("skipped: not an image")
    outs = upscale([folder], tmp_path / "out", 2, ckpt, tile=0, device="cpu", suffix="_x2", progress=False)
    assert [p.name for p in outs] == ["a_x2.png", "b_x2.jpg"]
    assert read_image(outs[1]).format == "JPEG" and read_image(outs[1]).pixels.shape == (22, 18, 3)
    outs = upscale([folder], tmp_path / "png", 2, ckpt, tile=0, device="cpu", fmt="png", progress=False)
    assert [p.name for p in outs] == ["a.png", "b.png"]
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temp files left behind


def test_bad_inputs(tmp_path, ckpt, capsys):
    src = image(tmp_path, "in.png", 12, 12)
    tiny = image(tmp_path, "tiny.png", 8, 8)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    x3 = tmp_path / "x3.pt"
    torch.save(ASID(3).state_dict(), x3)
    deep = image(tmp_path, "deep.png", 10, 10, dtype=np.uint16)
    good = torch.load(ckpt, weights_only=True)
    nan, integer = tmp_path / "nan.pt", tmp_path / "int.pt"
    torch.save({k: v.clone().fill_(float("nan")) if k == "up.0.bias" else v for k, v in good.items()}, nan)
    torch.save({k: (v * 0).to(torch.int32) for k, v in good.items()}, integer)
    common = ["--scale", 2, "--device", "cpu"]
    cases = [
        ([tmp_path / "missing.png", "-o", tmp_path / "o", "--weights", ckpt], "no such file"),
        ([bad, "-o", tmp_path / "o", "--weights", ckpt], "cannot read image"),
        ([src, "-o", tmp_path / "o", "--weights", x3], "ASID x3"),
        ([src, "-o", tmp_path / "o", "--weights", tmp_path / "nope.pt"], "checkpoint not found"),
        ([src, "-o", tmp_path / "o", "--weights", nan], f"{nan}: 1 tensors hold NaN or Inf: up.0.bias"),
        ([src, "-o", tmp_path / "o", "--weights", integer], "are not floating-point"),
        ([src, "-o", tmp_path / "o", "--weights", ckpt, "--dtype", "fp16"], "only supported on CUDA"),
        ([src, "-o", tmp_path / "o", "--weights", ckpt, "--tile", 5], "--tile"),
        ([src, "-o", tmp_path / "o", "--weights", ckpt, "--overlap", 64], "--overlap"),
        ([tiny, "-o", tmp_path / "o", "--weights", ckpt], "at least 9x9"),
        ([src, "-o", src, "--weights", ckpt], "overwrite its input"),
        ([deep, "-o", tmp_path / "o", "--weights", ckpt, "--format", "jpg"], "cannot store 16-bit"),
        ([src, "-o", tmp_path / "o", "--weights", ckpt, "--device", "cuda:7"], "CUDA"),
        ([src, "-o", tmp_path / "o", "--weights", ckpt, "--backend", "nope"], "--backend must be"),
    ]
    for argv, message in cases:
        code, err = run(capsys, *common, *argv)
        assert code == 1, (argv, err)
        assert err.startswith("asid-fast upscale: error:") and message in err, (argv, err)


@pytest.fixture
def matmul_precision_restored():
    """torch's CPU matmul precision, set back after the test (--dtype bf16 changes it)."""
    with fp32_precision(torch.backends.mkldnn.matmul) as matmul:
        yield matmul


def test_bf16_on_the_cpu_means_bf16_products_where_the_cpu_has_them(tmp_path, ckpt, capsys,
                                                                    matmul_precision_restored):
    """--dtype bf16 on the CPU: float32 maps with bf16 products (torch's mkldnn matmul precision
    set for the process) where the CPU kernels have them, the output within a grey level or two
    of fp32's; a clear error elsewhere."""
    matmul = matmul_precision_restored
    src = image(tmp_path, "in.png", 20, 23)
    common = ["--scale", 2, "--device", "cpu", src, "--weights", ckpt]
    ext = _registry.extension()
    if ext is None or not ext.bf16_products_supported():
        code, err = run(capsys, *common, "-o", tmp_path / "b", "--dtype", "bf16")
        assert code == 1 and "AVX512-BF16" in err, err
        return
    assert run(capsys, *common, "-o", tmp_path / "f")[0] == 0
    code, err = run(capsys, *common, "-o", tmp_path / "b", "--dtype", "bf16")
    assert code == 0 and "in float32 with bf16 products" in err, err
    assert matmul.fp32_precision == "bf16"
    fp32 = read_image(tmp_path / "f" / "in.png").pixels.astype(int)
    bf16 = read_image(tmp_path / "b" / "in.png").pixels.astype(int)
    assert np.abs(bf16 - fp32).max() <= 2


def test_unwritable_output_is_refused_before_the_model_loads(tmp_path, ckpt, capsys, monkeypatch):
    src = image(tmp_path, "in.png", 12, 12)
    a_file = tmp_path / "file.png"
    a_file.write_bytes(b"")

    def no_model(*args, **kwargs):
        raise AssertionError("the model was prepared before the output was checked")

    monkeypatch.setattr(runtime, "prepare_model", no_model)
    cases = [("/proc/asid_fast_no_such_dir/", "cannot write /proc/asid_fast_no_such_dir/in.png: "
                                              "cannot create the folder /proc/asid_fast_no_such_dir"),
             (f"{a_file}/sub/", f"cannot write {a_file}/sub/in.png: {a_file} is a file, not a folder"),
             (f"{a_file}/out.png", f"{a_file} is a file, not a folder"),
             ("/proc/out.png", "cannot write /proc/out.png: cannot create files in /proc")]
    for out, message in cases:
        code, err = run(capsys, src, "-o", out, "--scale", 2, "--weights", ckpt, "--device", "cpu")
        assert code == 1 and message in err, (out, err)
        assert len(err.splitlines()) == 1, err


def test_no_weights_and_none_shipped(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(shipped_weights, "WEIGHTS_DIR", tmp_path / "no_weights_here")
    code, err = run(capsys, image(tmp_path, "in.png", 12, 12), "-o", tmp_path / "o", "--scale", 4)
    assert code == 1 and "no shipped weights for asid x4" in err and "--weights" in err


def test_exif_orientation_is_applied_before_upscaling(tmp_path, ckpt):
    from PIL import Image

    rng = np.random.default_rng(0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 14 rows x 10 columns, shown 10 rows x 14 columns
    Image.fromarray(rng.integers(0, 256, (14, 10, 3)).astype(np.uint8)).save(
        tmp_path / "in.jpg", quality=95, exif=exif)
    out = upscale([tmp_path / "in.jpg"], tmp_path / "out", 2, ckpt, tile=0, device="cpu",
                  progress=False)[0]
    result = Image.open(out)
    assert result.size == (28, 20) and 0x0112 not in result.getexif()  # upright, no tag


def test_folder_with_failing_images_does_the_others_and_lists_the_failures(tmp_path, ckpt, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "c.png", "e.png"):
        image(folder, name, 10, 10)
    truncated = folder / "b.png"  # the header reads, the pixels do not
    truncated.write_bytes(image(tmp_path, "whole.png", 30, 30).read_bytes()[:200])
    junk = folder / "d.png"
    junk.write_text("not an image")
    code, err = run(capsys, folder, "-o", tmp_path / "out", "--scale", 2, "--weights", ckpt,
                    "--device", "cpu", "--tile", 0)
    assert code == 1
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png", "e.png"]
    lines = [line for line in err.split("\n") if line.startswith("asid-fast")]  # not the bar
    assert lines[0].startswith(f"asid-fast upscale: failed: cannot read image {truncated}: ")
    assert lines[1].startswith(f"asid-fast upscale: failed: cannot read image {junk}: ")
    assert lines[2] == "asid-fast upscale: error: 2 of 5 images failed (listed above); 3 written"
    # --fail-fast stops at the first failure, found from the headers before any work
    code, err = run(capsys, folder, "-o", tmp_path / "ff", "--scale", 2, "--weights", ckpt,
                    "--device", "cpu", "--tile", 0, "--fail-fast")
    assert code == 1 and err.startswith(f"asid-fast upscale: error: cannot read image {junk}")
    assert not (tmp_path / "ff").exists() or not list((tmp_path / "ff").iterdir())


def test_unusable_inputs_are_refused_before_the_model_loads(tmp_path, ckpt, capsys, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the model was prepared before the inputs were checked")

    monkeypatch.setattr(runtime, "prepare_model", no_model)
    folder = tmp_path / "in"
    folder.mkdir()
    tiny = image(folder, "tiny.png", 8, 12)
    rgba = image(folder, "rgba.png", 12, 12, alpha=True)
    deep = image(folder, "deep.png", 12, 12, dtype=np.uint16)
    src = image(tmp_path, "in.png", 12, 12)
    out = tmp_path / "o"
    cases = [
        ([tiny, "-o", out], f"{tiny} is 12x8; ASID needs at least 9x9 pixels"),
        ([rgba, "-o", out, "--format", "jpg"], f"{out / 'rgba.jpg'}: JPEG cannot store an alpha channel"),
        ([deep, "-o", out / "deep.jpg"], f"{out / 'deep.jpg'}: JPEG cannot store 16-bit images"),
        ([src, "-o", out, "--batch", 0], "--batch must be >= 1, got 0"),
        ([folder, "-o", out, "--format", "jpg"], "3 of 3 images failed (listed above); 0 written"),
    ]
    for argv, message in cases:
        code, err = run(capsys, *argv, "--scale", 2, "--weights", ckpt, "--device", "cpu")
        assert code == 1 and message in err, (argv, err)
