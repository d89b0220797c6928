"""C++/CUDA extension backend (``asid_fast._C``) — filled in by the extension issue."""


def available(device) -> bool:
    return False


def why_unavailable() -> str:
    return "the compiled extension asid_fast._C is not built"
