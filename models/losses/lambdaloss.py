"""LambdaLoss (Wang et al. 2018, "The LambdaLoss Framework for Ranking Metric Optimization").

Pairwise logistic losses weighted by how much swapping the pair moves NDCG, given the current ranking:

- ``"ndcgloss2pp"`` (default): NDCG-Loss2++ = ``mu * NDCG-Loss2 weights + LambdaRank weights``;
- ``"ndcgloss2"``: NDCG-Loss2, ``delta_|i-j| * |G_i - G_j|`` with
  ``delta_d = 1 / log2(1 + d) - 1 / log2(2 + d)``, a bound on 1 - NDCG;
- ``"lambdarank"``: ``|1 / D_i - 1 / D_j| * |G_i - G_j|``.

Here ``i`` and ``j`` are 1-based positions in the ranking by the current scores (stable: ties keep
list order), ``D_r = log2(1 + r)`` and ``G = (2^g - 1) / idealDCG``. Same conventions as allRank's
``lambdaLoss`` (log base 2, sum over pairs), written with ``logsigmoid`` for stability.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from study.models.losses.pointwise import mean_where, prepare_inputs

VARIANTS = ("ndcgloss2pp", "ndcgloss2", "lambdarank")


def lambdaloss(
    scores: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor,
    *,
    sigma: float = 1.0,
    mu: float = 10.0,
    variant: str = "ndcgloss2pp",
    k: int | None = None,
    max_label: float | None = None,
) -> torch.Tensor:
    """``-sum_{g_i > g_j} w_ij log2 sigmoid(sigma (s_i - s_j))`` per list, mean over lists.

    scores, labels, mask: (Q, N). ``k`` keeps only pairs whose both items rank in the top k (and the
    ideal DCG is then taken at k); None keeps all. Lists without a pair of different valid labels
    contribute nothing. ``max_label`` is accepted and ignored. Returns a float32 scalar.
    """
    del max_label
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    if not sigma > 0:
        raise ValueError(f"sigma must be > 0, got {sigma=}")
    if k is not None and k < 1:
        raise ValueError(f"k must be >= 1 or None, got {k=}")
    scores, labels = prepare_inputs(scores, labels, mask)
    n = scores.shape[1]
    # Rank by the current scores; padding sorts last, so valid items hold positions 1..n_valid.
    sort_key = torch.where(mask, scores.detach(), -math.inf)
    order = torch.argsort(sort_key, dim=1, descending=True, stable=True)  # (Q, N)
    s = scores.gather(1, order)  # (Q, N) in predicted order
    g = labels.gather(1, order)
    m = mask.gather(1, order)

    positions = torch.arange(1, n + 1, device=scores.device, dtype=torch.float32)  # (N,)
    inv_discount = 1.0 / torch.log2(1.0 + positions)  # (N,): 1 / D_r
    top_k = positions <= (k if k is not None else n)  # (N,)
    gains = torch.where(m, torch.exp2(g) - 1.0, 0.0)  # (Q, N)
    ideal = torch.sort(gains, dim=1, descending=True).values  # (Q, N)
    ideal_dcg = (ideal * inv_discount * top_k).sum(dim=1, keepdim=True)  # (Q, 1)
    G = gains / torch.where(ideal_dcg > 0, ideal_dcg, 1.0)  # (Q, N)
    gain_gaps = (G[:, :, None] - G[:, None, :]).abs()  # (Q, N, N)

    weights = torch.zeros_like(gain_gaps)
    if variant in ("ndcgloss2", "ndcgloss2pp"):
        distance = (positions[:, None] - positions[None, :]).abs()  # (N, N)
        delta = 1.0 / torch.log2(1.0 + distance) - 1.0 / torch.log2(2.0 + distance)  # inf on the diagonal
        delta = torch.where(distance > 0, delta, 0.0)
        weights = weights + (mu if variant == "ndcgloss2pp" else 1.0) * delta * gain_gaps
    if variant in ("lambdarank", "ndcgloss2pp"):
        weights = weights + (inv_discount[:, None] - inv_discount[None, :]).abs() * gain_gaps

    pairs = m[:, :, None] & m[:, None, :] & (g[:, :, None] > g[:, None, :])  # (Q, N, N)
    pairs = pairs & top_k[:, None] & top_k[None, :]
    diffs = s[:, :, None] - s[:, None, :]  # (Q, N, N)
    pair_loss = -weights * F.logsigmoid(sigma * diffs) / math.log(2.0)
    per_list = torch.where(pairs, pair_loss, 0.0).sum(dim=(1, 2))  # (Q,)
    return mean_where(per_list, pairs.any(dim=(1, 2)))
