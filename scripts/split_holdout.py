"""Split training folders into a training part and a held-out part, as folders of symbolic links.

The shipped weights are trained on the training part and their checkpoints chosen on the
held-out part (Set5 stays the report, never the selection set). From each source folder, the
images at sorted positions 0, k, 2k, ... (k = --every) are held out.

    python scripts/split_holdout.py ../shared/data/train OUT [--every 20]

writes OUT/train/<set>/ and OUT/holdout/ (links to the original files).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from asid_fast.tools.imageio import list_images  # noqa: E402


def split(root: Path, out: Path, every: int) -> tuple[int, int]:
    sets = sorted(d for d in root.iterdir() if d.is_dir())
    if not sets:
        raise SystemExit(f"no image folders in {root}")
    held = out / "holdout"
    held.mkdir(parents=True, exist_ok=True)
    n_train = n_held = 0
    for d in sets:
        dest = out / "train" / d.name
        dest.mkdir(parents=True, exist_ok=True)
        for i, f in enumerate(list_images(d)):
            link = held / f"{d.name}_{f.name}" if i % every == 0 else dest / f.name
            if not link.exists():
                link.symlink_to(f.resolve())
            n_held += i % every == 0
            n_train += i % every != 0
    return n_train, n_held


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("root", type=Path, help="folder of image folders (e.g. ../shared/data/train)")
    p.add_argument("out", type=Path)
    p.add_argument("--every", type=int, default=20, help="hold out every N-th image (default 20)")
    args = p.parse_args()
    n_train, n_held = split(args.root, args.out, args.every)
    print(f"{n_train} training images, {n_held} held out -> {args.out}")


if __name__ == "__main__":
    main()
