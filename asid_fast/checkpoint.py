"""Loading ASID checkpoints: the authors' plain state dicts, common training wrappers and
safetensors, with one clear error on any mismatch or unusable value.

Training checkpoints written by ``asid-fast train`` carry ``payload_sha256``, a checksum of all
their other entries (:func:`payload_sha256`), checked whenever they are read: ``torch.load``
does not check the zip CRCs, so a damaged file would otherwise load with wrong numbers.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys

import torch

# Wrapper keys, most specific first: EMA weights are what SR papers evaluate.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")
PREFIXES = ("module.", "_orig_mod.")
CHECKSUM_KEY = "payload_sha256"
# top-level entries of an ``asid-fast train`` checkpoint (besides the checksum)
TRAINING_KEYS = ("model", "optimizer", "scheduler", "scaler", "step", "rng", "config")


class CheckpointError(ValueError):
    """The file is not a usable ASID checkpoint for this model."""


class DamagedCheckpoint(CheckpointError):
    """The file cannot be read, or its contents do not match its checksum."""


def read_state_dict(path, key: str | None = None) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (torch.save file or .safetensors), unwrapped and with
    ``module.`` / ``_orig_mod.`` prefixes stripped. ``key`` forces a wrapper key."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.endswith(".safetensors"):
        from safetensors.torch import load_file

        try:
            obj = load_file(path, device="cpu")
        except Exception as e:  # safetensors raises its own error types
            raise CheckpointError(f"cannot read safetensors file {path}: {e}") from e
    else:
        obj = load_verified(path)
    return _unwrap(obj, key, path)


def load_verified(path):
    """``torch.load(path, weights_only=True)`` on the CPU, checked with :func:`verify`;
    CheckpointError with the reason if the file cannot be read."""
    path = os.fspath(path)
    if os.path.getsize(path) == 0:
        raise DamagedCheckpoint(f"cannot read checkpoint {path}: the file is empty (0 bytes)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        reason = " ".join(str(e).split()) or type(e).__name__  # torch's messages span lines
        raise DamagedCheckpoint(f"cannot read checkpoint {path} (weights_only=True): {reason}") from e
    if isinstance(obj, dict):
        verify(obj, path)
    return obj


def _feed(h, obj) -> None:
    """Add ``obj`` (nested dicts, lists, tuples, tensors, scalars) to the hash ``h``, with its
    types, tensor dtypes and shapes, so that different contents never feed the same bytes."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}:".encode())
        for k, v in obj.items():
            _feed(h, k)
            _feed(h, v)
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}{len(obj)}:".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"{type(obj).__name__}:{obj!r};".encode())


def payload_sha256(state: dict) -> str:
    """sha256 (hex) of every entry of ``state`` except ``payload_sha256`` itself."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in state.items() if k != CHECKSUM_KEY})
    return h.hexdigest()


def with_checksum(state: dict) -> dict:
    """``state`` plus its ``payload_sha256`` entry, ready for torch.save."""
    return {**state, CHECKSUM_KEY: payload_sha256(state)}


def verify(state: dict, path) -> None:
    """CheckpointError if ``state`` carries a checksum that does not match its contents. An
    ``asid-fast train`` checkpoint without one (written before checksums were stored) gets a
    one-line notice on stderr and is used as it is."""
    if CHECKSUM_KEY in state:
        if state[CHECKSUM_KEY] != payload_sha256(state):
            raise DamagedCheckpoint(f"{path} is damaged: its contents do not match the checksum "
                                  f"stored in it ({CHECKSUM_KEY})")
    elif all(k in state for k in TRAINING_KEYS):
        print(f"note: {path} has no checksum (saved by an older asid-fast); using it unverified",
              file=sys.stderr)


def _unwrap(obj, key, path):
    if not isinstance(obj, dict):
        raise CheckpointError(f"{path}: expected a state dict, got {type(obj).__name__}")
    if key is not None:
        if key not in obj:
            raise CheckpointError(f"{path}: no key {key!r}; top-level keys: {sorted(obj)[:10]}")
        obj = obj[key]
    else:
        while (found := next((k for k in WRAPPER_KEYS if isinstance(obj.get(k), dict)), None)):
            obj = obj[found]
    sd = {}
    for name, value in obj.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"{path}: entry {name!r} is a {type(value).__name__}, not a tensor")
        for prefix in PREFIXES:
            if name.startswith(prefix):
                name = name[len(prefix):]
        sd[name] = value
    return sd


def guess_config(sd: dict[str, torch.Tensor]) -> tuple[int | None, str | None]:
    """(scale, variant) implied by a state dict: scale from ``up.0.weight`` (3*s*s outputs),
    variant from the number of ``blockN`` groups. None where it cannot tell."""
    from .reference.model import VARIANTS

    scale = None
    up = sd.get("up.0.weight")
    if up is not None and up.dim() == 4:
        s = round((up.shape[0] / 3) ** 0.5)
        scale = s if 3 * s * s == up.shape[0] else None
    blocks = {int(m.group(1)) for k in sd if (m := re.match(r"block(\d+)\.", k))}
    groups = max(blocks) + 1 if blocks else None
    variant = next((v for v, n in VARIANTS.items() if n == groups), None)
    return scale, variant


def _describe(scale, variant):
    name = {"asid": "ASID", "asid_d8": "ASID-D8"}.get(variant, "an unknown variant")
    return f"{name} x{scale}" if scale else name


def check_state_dict(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str = "checkpoint"):
    """Raise CheckpointError naming missing keys, unexpected keys and shape mismatches, or
    else unusable values (see :func:`check_values`)."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    if not (missing or unexpected or shapes):
        check_values(model, sd, source)
        return
    parts = []
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")
            parts.append(f"{len(items)} {title}: {shown}")
    have = guess_config(sd)
    want = (getattr(model, "scale", None), getattr(model, "variant", None))
    if have != want and any(have):
        parts.append(f"the checkpoint looks like {_describe(*have)} but the model is "
                     f"{_describe(*want)}: build the model with matching scale/variant")
    raise CheckpointError(f"{source} does not match the model: " + "; ".join(parts))


def _names(items) -> str:
    """The first few of ``items``, comma-separated, with how many more there are."""
    return ", ".join(items[:4]) + (f" and {len(items) - 4} more" if len(items) > 4 else "")


def check_values(model: torch.nn.Module, sd: dict[str, torch.Tensor], source: str = "checkpoint"):
    """Raise CheckpointError if a tensor that is floating-point in ``model`` is an integer
    tensor in ``sd`` or holds NaN/Inf: such weights run but give a flat or black image."""
    floats = [k for k, v in model.state_dict().items() if v.is_floating_point() and k in sd]
    integer = [f"{k} ({sd[k].dtype})" for k in floats if not sd[k].is_floating_point()]
    if integer:
        raise CheckpointError(f"{source}: {len(integer)} tensors are not floating-point: "
                              f"{_names(integer)}; these are not trained weights")
    bad = [k for k in floats if not torch.isfinite(sd[k]).all()]
    if bad:
        raise CheckpointError(f"{source}: {len(bad)} tensors hold NaN or Inf: {_names(bad)}; "
                              "these weights cannot make an image")


def load_checkpoint(model: torch.nn.Module, path, key: str | None = None) -> torch.nn.Module:
    """Load ``path`` into ``model`` strictly (see :func:`read_state_dict`); returns the model."""
    sd = read_state_dict(path, key)
    check_state_dict(model, sd, source=os.fspath(path))
    model.load_state_dict(sd, strict=True)
    return model
