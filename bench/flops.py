"""Model FLOPs per pair and the device's measured matrix-product ceiling, for MFU.

FLOPs of one pair of ``n`` real tokens through an ``L``-layer, ``d``-wide transformer with ``N``
non-embedding parameters (Kaplan et al. 2020; PaLM appendix B):

    training (forward + backward):  6 * N * n  +  12 * L * d * n^2
    scoring  (forward only):        2 * N * n  +   4 * L * d * n^2

``2 * N`` per token is one multiply-add per weight in the forward pass; the backward pass costs twice
the forward. Attention adds, per layer and token, ``2 * n * d`` for Q K^T and ``2 * n * d`` for the
weighted sum of V: ``4 * L * d * n`` forward, ``12 * L * d * n`` forward + backward. Only real tokens are
counted (``n`` is the pair's unpadded length), so padding shows up as lost utilisation, not as work.
``N`` counts the transformer layers (attention and feed-forward weights, biases, LayerNorms); the
embeddings are lookups, and the pooler / ranking head (under 2% of ``N`` for MiniLM) are left out so that
the project and the baseline are measured against the same work.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn


def layer_parameters(encoder: nn.Module) -> int:
    """Non-embedding parameters: the transformer layer stack of a Hugging Face BERT-family model."""
    return sum(p.numel() for p in encoder.encoder.layer.parameters())


def pair_flops(lengths: np.ndarray, *, n_params: int, n_layers: int, hidden: int, training: bool) -> float:
    """Total model FLOPs for pairs of the given real lengths (see the module docstring)."""
    n = np.asarray(lengths, dtype=np.float64)
    if training:
        return float(6.0 * n_params * n.sum() + 12.0 * n_layers * hidden * (n**2).sum())
    return float(2.0 * n_params * n.sum() + 4.0 * n_layers * hidden * (n**2).sum())


def matmul_ceiling(device: torch.device, *, seconds: float = 3.0) -> tuple[float, str]:
    """Measured dense matrix-product rate in FLOP/s (best window): bf16 on CUDA (8192^2), fp32 on the CPU
    (2048^2)."""
    if device.type == "cuda":
        dtype, n = torch.bfloat16, 8192
    else:
        dtype, n = torch.float32, 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(3):
        a @ b
    sync()
    # The best of short windows: on a shared machine that is the device's rate, not other jobs' leftovers.
    best, spent = 0.0, 0.0
    inner = 20 if device.type == "cuda" else 1
    while spent < seconds:
        t0 = time.perf_counter()
        for _ in range(inner):
            a @ b
        sync()
        dt = time.perf_counter() - t0
        spent += dt
        best = max(best, 2.0 * n**3 * inner / dt)
    label = f"{'bf16' if dtype == torch.bfloat16 else 'fp32'} {n}x{n} matmul"
    return best, label
