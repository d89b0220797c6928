"""Loading ASID checkpoints: the authors' plain state dicts, common training wrappers and
safetensors, with one clear error on any mismatch."""
from __future__ import annotations

import os
import re

import torch

# Wrapper keys, most specific first: EMA weights are what SR papers evaluate.
WRAPPER_KEYS = ("params_ema", "params", "state_dict", "model")
PREFIXES = ("module.", "_orig_mod.")


class CheckpointError(ValueError):
    """The file is not a usable ASID checkpoint for this model."""


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
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            raise CheckpointError(f"cannot read checkpoint {path} (weights_only=True): {e}") from e
    return _unwrap(obj, key, path)


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
    """Raise CheckpointError naming missing keys, unexpected keys and shape mismatches."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(v.shape)}"
              for k, v in expected.items() if k in sd and sd[k].shape != v.shape]
    if not (missing or unexpected or shapes):
        return
    lines = [f"{source} does not match the model:"]
    for title, items in (("missing keys", missing), ("unexpected keys", unexpected),
                         ("shape mismatches", shapes)):
        if items:
            shown = ", ".join(items[:8]) + (f", ... ({len(items) - 8} more)" if len(items) > 8 else "")
            lines.append(f"  {len(items)} {title}: {shown}")
    have = guess_config(sd)
    want = (getattr(model, "scale", None), getattr(model, "variant", None))
    if have != want and any(have):
        lines.append(f"  the checkpoint looks like {_describe(*have)} but the model is "
                     f"{_describe(*want)}: build the model with matching scale/variant")
    raise CheckpointError("\n".join(lines))


def load_checkpoint(model: torch.nn.Module, path, key: str | None = None) -> torch.nn.Module:
    """Load ``path`` into ``model`` strictly (see :func:`read_state_dict`); returns the model."""
    sd = read_state_dict(path, key)
    check_state_dict(model, sd, source=os.fspath(path))
    model.load_state_dict(sd, strict=True)
    return model
