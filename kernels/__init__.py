"""Triton kernels of asid_fast, shipped as ``asid_fast.kernels`` (the folder sits at the top of
the repository; pyproject.toml maps it). One module per op family (window attention and the
shared-attention apply, channel attention, layer norm, depthwise 3x3 convolution, the convolution
chain, the attention blocks) with its kernels and one launcher per operator, named after it;
:mod:`asid_fast.ops` registers the operators ``asid_fast::triton_<name>`` and calls the
launchers. ``tiles`` holds the shared index arithmetic and launch helpers, ``fused_steps`` the
in-tile steps the fused kernels share. Nothing here imports ``asid_fast.ops``.
"""
