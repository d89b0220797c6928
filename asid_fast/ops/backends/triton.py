"""Triton backend — filled in by the Triton issue."""


def available(device) -> bool:
    return False


def why_unavailable() -> str:
    return "triton kernels are not implemented yet"
