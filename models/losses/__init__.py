"""Training losses for ranking, one file each, all pure functions ``loss(scores, labels, mask, **kwargs)``.

scores, labels, mask: (Q, N) tensors (Q lists padded to N items, mask True on real items); each loss
returns a float32 scalar. All of them accept ``max_label`` (used only by the pointwise ones), so a
trainer can call any loss with the same keyword arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from study.models.losses.approxndcg import approxndcg
from study.models.losses.focal import focal
from study.models.losses.lambdaloss import lambdaloss
from study.models.losses.listnet import listnet
from study.models.losses.pointwise import bce, mse
from study.models.losses.ranknet import ranknet

LossFn = Callable[..., torch.Tensor]

LOSSES: dict[str, LossFn] = {
    "bce": bce,
    "mse": mse,
    "focal": focal,
    "ranknet": ranknet,
    "listnet": listnet,
    "lambdaloss": lambdaloss,
    "approxndcg": approxndcg,
}


def get_loss(name: str) -> LossFn:
    """The loss function registered under ``name``; ValueError naming the valid names otherwise."""
    try:
        return LOSSES[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown loss {name!r}; expected one of {sorted(LOSSES)}") from None


__all__ = [
    "LOSSES",
    "LossFn",
    "approxndcg",
    "bce",
    "focal",
    "get_loss",
    "lambdaloss",
    "listnet",
    "mse",
    "ranknet",
]
