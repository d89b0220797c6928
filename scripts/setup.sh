#!/usr/bin/env bash
# Create .venv and install asid_fast with its test extras and the compiled extension.
# torch is pinned to the CPU build on this project's machines; on a CUDA machine install your
# CUDA build of torch first and set TORCH_SPEC="" to keep it.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC-torch==2.13.0}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade "pip>=23" "setuptools>=64" wheel
[ -z "$TORCH_SPEC" ] || .venv/bin/python -m pip install -q "$TORCH_SPEC"
# No build isolation: the extension must build against the torch just installed (an isolated
# build would fetch another, possibly CUDA, torch); the pin in the same command keeps the extras
# (onnx: asid-fast export and its tests) from replacing it.
.venv/bin/python -m pip install -q --no-build-isolation -e ".[test,onnx]" ${TORCH_SPEC:+"$TORCH_SPEC"}
.venv/bin/python -c "import asid_fast.ops as o, torch; print('asid_fast installed; CPU backends:', o.available_backends(torch.device('cpu')))"
