"""``asid-fast upscale``: super-resolve image files or folders with ASID.

Every input is checked from its header (size, bit depth, alpha against the output format), and
every output place is tried, before the model loads. An image that fails does not stop the
others: the failures are listed at the end and the exit status is non-zero (``--fail-fast``
stops at the first).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from ..cuda_graphs import GraphedModel
from ..traced import TracedModel
from . import runtime
from .atomic import check_writable
from .errors import UserError
from .imageio import (EXTENSIONS, FORMAT_EXT, Picture, check_storable, list_images,
                      output_format, read_header, read_image, write_image)
from .imresize import imresize
from .tiling import check_tiling, tiled_forward

LUMA = np.array([0.299, 0.587, 0.114])  # gray output from the RGB result (ITU-R 601, as Pillow's "L")


def to_tensor(pixels: np.ndarray, device) -> torch.Tensor:
    """(H, W, 3) uint8/uint16 -> (1, 3, H, W) float32 in [0, 1]."""
    peak = float(np.iinfo(pixels.dtype).max)
    return torch.from_numpy(pixels.astype(np.float32) / peak).permute(2, 0, 1)[None].to(device)


def quantize(img01: torch.Tensor, dtype) -> np.ndarray:
    """(1, 3, H, W) float in [0, 1] -> (H, W, 3) ``dtype`` array, rounded and clipped."""
    peak = float(np.iinfo(dtype).max)
    arr = img01[0].permute(1, 2, 0).double().cpu().numpy() * peak
    return np.clip(np.round(arr), 0, peak).astype(dtype)


def replays_captures(device: torch.device, tile: int) -> bool:
    """Whether a run on ``device`` with LR tiles of side ``tile`` replays a captured forward:
    when tiling, as every tile of an image has one shape (a short last batch is padded to it):
    CUDA graphs on CUDA, a trace (:class:`asid_fast.traced.TracedModel`) on the CPU. Whole
    images (``tile`` 0) have a shape each, and a capture would cost more than it saves."""
    return device.type in ("cuda", "cpu") and tile > 0


TRACE_AFTER = 100  # tile forwards of one shape run eagerly before the CPU traces them


def model_fn(model: torch.nn.Module, dtype: torch.dtype, replay: bool = False):
    """Wrap ``model`` as [0, 1] images -> [0, 1] images, running in ``dtype``; when ``replay``,
    through :class:`asid_fast.cuda_graphs.GraphedModel` on CUDA (a capture is cheap) and
    :class:`asid_fast.traced.TracedModel` on the CPU after :data:`TRACE_AFTER` forwards of a
    shape (a trace costs about 100 forwards' savings), by the device of the model's parameters."""
    forward = model
    if replay:
        device = next(model.parameters()).device
        forward = (GraphedModel(model) if device.type == "cuda"
                   else TracedModel(model, after=TRACE_AFTER))

    def run(x01):
        return runtime.from_model(forward(runtime.to_model(x01).to(dtype)).float())
    return run


class ImagesFailed(UserError):
    """Some images of an upscale run failed; the others were written."""

    def __init__(self, failures: list[tuple[Path, str]], written: list[Path]):
        self.failures, self.written = failures, written
        total = len(failures) + len(written)
        super().__init__(f"{len(failures)} of {total} images failed (listed above); "
                         f"{len(written)} written")


def check_size(hw: tuple[int, int], name: str = "image") -> None:
    """UserError unless an image of (height, width) ``hw`` is large enough for ASID."""
    from ..reference.model import MIN_SIZE

    h, w = hw
    if min(h, w) < MIN_SIZE:
        raise UserError(f"{name} is {w}x{h}; ASID needs at least {MIN_SIZE}x{MIN_SIZE} pixels")


def check_input(src: Path, dst: Path, fmt=None) -> None:
    """UserError naming the file if ``src`` cannot be upscaled into ``dst`` (format ``fmt``,
    default from its suffix), judged from ``src``'s header."""
    head = read_header(src)
    check_size(head.hw, str(src))
    check_storable(dst, output_format(fmt, dst), head.bits, head.alpha)


def upscale_picture(pic: Picture, fn, scale: int, device, tile=64, overlap=24, batch=1,
                    progress=False) -> Picture:
    """Super-resolve the colour planes with ``fn`` ([0, 1] -> [0, 1]); alpha is resized with
    bicubic ``imresize``. Keeps bit depth, gray/RGB and alpha."""
    h, w = pic.hw
    check_size(pic.hw)
    with torch.inference_mode():
        y = tiled_forward(fn, to_tensor(pic.rgb(), device), scale, tile, overlap, batch, progress)
        y = y.clamp_(0, 1)
    dtype = pic.pixels.dtype
    if pic.gray:
        gray = (y[0].permute(1, 2, 0).double().cpu().numpy() @ LUMA) * float(np.iinfo(dtype).max)
        pixels = np.clip(np.round(gray), 0, np.iinfo(dtype).max).astype(dtype)[..., None]
    else:
        pixels = quantize(y, dtype)
    alpha = None if pic.alpha is None else imresize(pic.alpha, size=(h * scale, w * scale))
    return Picture(pixels, alpha, pic.format)


def collect_inputs(inputs) -> list[Path]:
    """Expand files and folders (their image files, not recursive) into a list of images."""
    files = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise UserError(f"no images ({', '.join(sorted(EXTENSIONS))}) in folder {p}")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise UserError(f"no such file or folder: {p}")
    return files


def plan_outputs(files, out, fmt=None, suffix="") -> list[Path]:
    """Output path per input: ``out`` itself for one input and an image-suffixed ``out``,
    else ``out``/<stem><suffix>.<ext>."""
    out = Path(out)
    if len(files) == 1 and out.suffix.lower() in EXTENSIONS and not out.is_dir():
        output_format(fmt, out)
        targets = [out]
    else:
        if out.exists() and not out.is_dir():
            raise UserError(f"output {out} exists and is not a folder (several inputs need a folder)")
        targets = []
        for f in files:
            ext = FORMAT_EXT[output_format(fmt, f)] if fmt else f.suffix
            targets.append(out / f"{f.stem}{suffix}{ext}")
    if len(set(targets)) != len(targets):
        raise UserError("several inputs would be written to the same output file; "
                        "give inputs with distinct names or use --suffix")
    for f, t in zip(files, targets):
        if t.resolve() == f.resolve():
            raise UserError(f"output {t} would overwrite its input; choose another -o or --suffix")
    return targets


def upscale(inputs, out, scale: int, weights=None, variant="asid", tile=64, overlap=24, batch=1,
            device="auto", dtype="fp32", backend="auto", fmt=None, suffix="", progress=True,
            fail_fast=False):
    """Upscale image files/folders ``inputs`` into ``out``; returns the written paths.

    A failing image (unreadable, too small, not storable in the output format) is skipped and
    the rest go on; then ImagesFailed lists the failures. With ``fail_fast``, or for a single
    input, the first failure is raised as it is.
    """
    check_tiling(tile, overlap, batch)
    files = collect_inputs(inputs)
    targets = plan_outputs(files, out, fmt, suffix)
    check_writable(targets)
    failures, jobs, written = [], [], []

    def failed(src, error):
        if fail_fast or len(files) == 1:
            raise error
        failures.append((src, str(error)))

    for src, dst in zip(files, targets):
        try:
            check_input(src, dst, fmt)
            jobs.append((src, dst))
        except UserError as e:
            failed(src, e)
    if jobs:
        model, dev, dt = runtime.prepare_model(scale, variant, weights, backend, device, dtype)
        fn = model_fn(model, dt, replays_captures(dev, tile))
        for src, dst in tqdm(jobs, desc="upscale", unit="img", disable=not progress or len(jobs) == 1):
            try:
                result = upscale_picture(read_image(src), fn, scale, dev, tile, overlap, batch,
                                         progress)
                write_image(dst, result, fmt)
                written.append(dst)
            except UserError as e:
                failed(src, e)
    if failures:
        order = {src: k for k, src in enumerate(files)}
        raise ImagesFailed(sorted(failures, key=lambda f: order[f[0]]), written)
    return written


def add_parser(subparsers):
    p = subparsers.add_parser("upscale", help="super-resolve images",
                              description="Super-resolve image files or folders with ASID.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--out", required=True,
                   help="output folder (or file name, for a single input)")
    p.add_argument("--scale", type=int, default=4, choices=(2, 3, 4),
                   help="upscaling factor (default 4)")
    p.add_argument("--weights", help="checkpoint file or training run folder (default: shipped weights)")
    p.add_argument("--variant", default="asid", choices=("asid", "asid_d8"))
    p.add_argument("--tile", type=int, default=64,
                   help="LR tile side; 0 = whole image (default 64, the authors' tester)")
    p.add_argument("--overlap", type=int, default=24, help="tile overlap in LR pixels (default 24)")
    p.add_argument("--batch", type=int, default=1, help="tiles per forward pass (default 1)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--dtype", default="fp32", choices=sorted(runtime.DTYPES),
                   help="compute dtype: fp16 on CUDA only; bf16 on CUDA, or on a CPU with "
                        "AVX512-BF16 as bf16 products on float32 maps")
    p.add_argument("--backend", default="auto", help="op backend of the fused model")
    p.add_argument("--format", dest="fmt", help="output format (png, jpg, ...; default: as input)")
    p.add_argument("--suffix", default="", help="added to output file names (e.g. _x4)")
    p.add_argument("--fail-fast", action="store_true",
                   help="stop at the first image that fails (default: do the others, list the "
                        "failures at the end)")
    p.set_defaults(handler=_run)


def _run(args):
    try:
        upscale(args.inputs, args.out, args.scale, args.weights, args.variant, args.tile,
                args.overlap, args.batch, args.device, args.dtype, args.backend, args.fmt,
                args.suffix, fail_fast=args.fail_fast)
    except ImagesFailed as e:
        for _, reason in e.failures:
            print(f"asid-fast upscale: failed: {reason}", file=sys.stderr)
        raise
