"""What a benchmark ran on: the device's name, the CPU's model and vector extensions, the
instruction set of the extension's CPU kernels, and the software versions."""
from __future__ import annotations

import platform
from importlib import metadata

import torch


def _cpuinfo() -> dict:
    """The first processor's fields of /proc/cpuinfo ({} where there is none)."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if not line.strip():
                    break
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        pass
    return fields


def cpu_info() -> dict:
    """The CPU's model name, whether it has AVX-512 (avx512f) and AMX (amx_tile), and the
    instruction set the extension's CPU kernels run with (None without the extension)."""
    from ..ops import _registry

    fields = _cpuinfo()
    flags = set(fields.get("flags", "").split())
    ext = _registry.extension()
    return {"model": fields.get("model name") or platform.processor() or "unknown",
            "avx512": "avx512f" in flags if flags else None,
            "amx": "amx_tile" in flags if flags else None,
            "kernels_isa": ext.cpu_isa() if ext is not None else None}


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_info()["model"]


def _installed(name: str):
    """The installed version of distribution ``name`` (without importing it), or None."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict:
    return {"torch": torch.__version__, "triton": _installed("triton"),
            "onnxruntime": _installed("onnxruntime"), "python": platform.python_version()}


def describe_cpu(cpu: dict) -> str:
    """One line: model, AVX-512 / AMX, kernel instruction set."""
    def yes(flag):
        return "?" if flag is None else ("yes" if flag else "no")
    return (f"CPU {cpu['model']} (AVX-512: {yes(cpu['avx512'])}, AMX: {yes(cpu['amx'])}); "
            f"CPU kernels: {cpu['kernels_isa'] or 'not built'}")
