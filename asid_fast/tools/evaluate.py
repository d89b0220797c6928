"""``asid-fast eval``: PSNR/SSIM on an HR folder, measured the way SR papers do (see
"Evaluation conventions" in ASID_SPEC.md): HR cropped to a multiple of the scale, LR made with
MATLAB-compatible bicubic ``imresize`` (or read from ``--lr``), metrics on Y with ``scale``
border pixels removed."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import runtime
from .atomic import check_writable, write_text
from .errors import UserError
from .imageio import Picture, list_images, read_header, read_rgb8
from .imresize import imresize
from .metrics import WINDOW, psnr, ssim
from .tiling import check_tiling
from .upscale import check_size, model_fn, replays_captures, upscale_picture


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[:h - h % scale, :w - w % scale]


def _find_lr(lr_dir: Path, stem: str, scale: int) -> Path:
    for name in (stem, f"{stem}x{scale}"):
        for p in lr_dir.glob(f"{name}.*"):
            if p.is_file():
                return p
    raise UserError(f"no LR image for {stem!r} in {lr_dir} (looked for {stem}.* and {stem}x{scale}.*)")


def find_pairs(hr_dir, scale: int, lr_dir=None, model: bool = True) -> list[tuple[Path, Path | None]]:
    """(HR file, LR file or None) for every image in ``hr_dir``, checked from the headers
    before any pixel is decoded: HR large enough to measure, LR found and of the right size,
    and, when a ``model`` will upscale it, LR large enough for ASID. UserError naming the
    file otherwise."""
    hr_dir = Path(hr_dir)
    if not hr_dir.is_dir():
        raise UserError(f"HR folder not found: {hr_dir}")
    files = list_images(hr_dir)
    if not files:
        raise UserError(f"no images in HR folder {hr_dir}")
    if lr_dir is not None and not Path(lr_dir).is_dir():
        raise UserError(f"LR folder not found: {lr_dir}")
    found = []
    for f in files:
        h, w = read_header(f).hw
        h, w = h - h % scale, w - w % scale
        need = WINDOW + 2 * scale  # the SSIM window must fit inside the measured area
        if min(h, w) < need:
            raise UserError(f"{f} is {w}x{h} (cropped to x{scale}): too small to measure, "
                            f"needs at least {need} pixels per side")
        want = (h // scale, w // scale)
        lr_path = None
        if lr_dir is not None:
            lr_path = _find_lr(Path(lr_dir), f.stem, scale)
            got = read_header(lr_path).hw
            if got != want:
                raise UserError(f"scale mismatch: {lr_path} is {got[1]}x{got[0]} but x{scale} of "
                                f"{f.name} (cropped to {w}x{h}) needs {want[1]}x{want[0]}")
        if model:
            check_size(want, str(lr_path) if lr_path else f"the x{scale} LR of {f}")
        found.append((f, lr_path))
    return found


def read_pairs(found, scale: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, HR cropped to a multiple of scale, LR) for each (HR file, LR file or None) of
    :func:`find_pairs`; LR made with bicubic ``imresize`` where no file is given."""
    pairs = []
    for hr_path, lr_path in found:
        hr = crop_to_multiple(read_rgb8(hr_path, "evaluation"), scale)
        lr = imresize(hr, 1 / scale) if lr_path is None else read_rgb8(lr_path, "evaluation")
        pairs.append((hr_path.stem, hr, lr))
    return pairs


def load_pairs(hr_dir, scale: int, lr_dir=None, model: bool = True):
    """:func:`read_pairs` of :func:`find_pairs`."""
    return read_pairs(find_pairs(hr_dir, scale, lr_dir, model), scale)


def score(pairs, sr_fn, scale: int, with_ssim: bool = True, progress: bool = True) -> dict:
    """Run ``sr_fn`` (LR uint8 -> SR uint8) on every pair and measure it.
    Returns {"psnr": mean, "ssim": mean, "images": {name: {"psnr", "ssim"}}}."""
    images = {}
    for name, hr, lr in tqdm(pairs, desc="eval", unit="img", disable=not progress, leave=False):
        sr = sr_fn(lr)
        if sr.shape != hr.shape:
            raise UserError(f"{name}: output is {sr.shape[1]}x{sr.shape[0]}, "
                            f"HR is {hr.shape[1]}x{hr.shape[0]}")
        images[name] = {"psnr": psnr(sr, hr, scale)}
        if with_ssim:
            images[name]["ssim"] = ssim(sr, hr, scale)
    result = {"psnr": float(np.mean([v["psnr"] for v in images.values()]))}
    if with_ssim:
        result["ssim"] = float(np.mean([v["ssim"] for v in images.values()]))
    result["images"] = images
    return result


def bicubic_sr(scale: int):
    return lambda lr: imresize(lr, scale)


def model_sr(fn, scale: int, device, tile=64, overlap=24, batch=1):
    """LR uint8 -> SR uint8 with a [0, 1] -> [0, 1] model function (see upscale.model_fn)."""
    return lambda lr: upscale_picture(Picture(lr, None, "PNG"), fn, scale, device,
                                      tile, overlap, batch).pixels


def evaluate(hr, scale: int, weights=None, bicubic=False, lr=None, variant="asid", tile=64,
             overlap=24, batch=1, device="auto", dtype="fp32", backend="auto", json_path=None,
             progress=True) -> dict:
    """Measure ASID (``weights``, default: shipped) or bicubic upscaling on the HR folder ``hr``."""
    if bicubic and weights is not None:
        raise UserError("give either --weights or --bicubic, not both")
    if scale not in (2, 3, 4):
        raise UserError(f"--scale must be 2, 3 or 4, got {scale}")
    check_tiling(tile, overlap, batch)
    if json_path is not None:
        check_writable([json_path])
    found = find_pairs(hr, scale, lr, model=not bicubic)
    if bicubic:
        sr = bicubic_sr(scale)
    else:
        model, dev, dt = runtime.prepare_model(scale, variant, weights, backend, device, dtype)
        sr = model_sr(model_fn(model, dt, replays_captures(dev, tile)), scale, dev, tile, overlap,
                      batch)
    result = score(read_pairs(found, scale), sr, scale, progress=progress)
    if json_path is not None:
        write_text(json_path, json.dumps(result, indent=2) + "\n")
    return result


def format_table(result: dict) -> str:
    names = list(result["images"]) + ["mean"]
    width = max(len(n) for n in names)
    lines = [f"{'image':<{width}}  {'PSNR':>8}  {'SSIM':>6}"]
    rows = list(result["images"].items()) + [("mean", result)]
    lines += [f"{n:<{width}}  {v['psnr']:8.4f}  {v['ssim']:6.4f}" for n, v in rows]
    return "\n".join(lines)


def add_parser(subparsers):
    p = subparsers.add_parser("eval", help="PSNR/SSIM on a folder of HR images",
                              description="Measure PSNR/SSIM (Y channel, border = scale) on HR "
                                          "images, SR-paper style.")
    p.add_argument("--hr", required=True, help="folder of HR images")
    p.add_argument("--scale", type=int, required=True, choices=(2, 3, 4))
    what = p.add_mutually_exclusive_group()
    what.add_argument("--weights", help="checkpoint file or training run folder (default: shipped weights)")
    what.add_argument("--bicubic", action="store_true", help="measure bicubic upscaling instead")
    p.add_argument("--lr", help="folder of LR images (default: made from HR with bicubic imresize)")
    p.add_argument("--json", dest="json_path", help="write the results as JSON to this file")
    p.add_argument("--variant", default="asid", choices=("asid", "asid_d8"))
    p.add_argument("--tile", type=int, default=64, help="LR tile side, 0 = whole image (default 64)")
    p.add_argument("--overlap", type=int, default=24, help="tile overlap (default 24)")
    p.add_argument("--batch", type=int, default=1, help="tiles per forward pass")
    p.add_argument("--device", default="auto")
    p.add_argument("--dtype", default="fp32", choices=sorted(runtime.DTYPES),
                   help="as asid-fast upscale's --dtype")
    p.add_argument("--backend", default="auto")
    p.set_defaults(handler=_run)


def _run(args):
    result = evaluate(args.hr, args.scale, args.weights, args.bicubic, args.lr, args.variant,
                      args.tile, args.overlap, args.batch, args.device, args.dtype, args.backend,
                      args.json_path)
    print(format_table(result))
