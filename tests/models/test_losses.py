"""Every loss against an independent float64 NumPy version with loops, plus padding, dtype, gradient
and stability checks."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from study.models.losses import LOSSES, get_loss

# ---------------------------------------------------------------- NumPy references (float64, loops)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def _lists(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray):
    for s, g, m in zip(scores, labels, mask):
        yield s[m].astype(np.float64), g[m].astype(np.float64)


def _target(labels: np.ndarray, mask: np.ndarray, max_label: float | None) -> float:
    return max(labels[mask].max(initial=0.0), 1.0) if max_label is None else max_label


def ref_bce(scores, labels, mask, max_label=None):
    top = _target(labels, mask, max_label)
    losses = []
    for s, g in _lists(scores, labels, mask):
        for si, gi in zip(s, g):
            t, p = min(gi / top, 1.0), _sigmoid(si)
            losses.append(-(t * math.log(p) + (1 - t) * math.log(1 - p)))
    return np.mean(losses) if losses else 0.0


def ref_mse(scores, labels, mask, max_label=None):
    losses = [(si - gi) ** 2 for s, g in _lists(scores, labels, mask) for si, gi in zip(s, g)]
    return np.mean(losses) if losses else 0.0


def ref_focal(scores, labels, mask, gamma=2.0, alpha=None, max_label=None):
    top = _target(labels, mask, max_label)
    losses = []
    for s, g in _lists(scores, labels, mask):
        for si, gi in zip(s, g):
            t, p = min(gi / top, 1.0), _sigmoid(si)
            ce = -(t * math.log(p) + (1 - t) * math.log(1 - p))
            p_t = p * t + (1 - p) * (1 - t)
            a_t = 1.0 if alpha is None else alpha * t + (1 - alpha) * (1 - t)
            losses.append(a_t * (1 - p_t) ** gamma * ce)
    return np.mean(losses) if losses else 0.0


def ref_ranknet(scores, labels, mask, sigma=1.0, weighting="none", max_label=None):
    per_list = []
    for s, g in _lists(scores, labels, mask):
        num = den = 0.0
        for i in range(len(s)):
            for j in range(len(s)):
                if g[i] > g[j]:
                    w = abs(2 ** g[i] - 2 ** g[j]) if weighting == "gain" else 1.0
                    num += w * math.log1p(math.exp(-sigma * (s[i] - s[j])))
                    den += w
        if den > 0:
            per_list.append(num / den)
    return np.mean(per_list) if per_list else 0.0


def ref_listnet(scores, labels, mask, target="gain", max_label=None):
    per_list = []
    for s, g in _lists(scores, labels, mask):
        gains = 2**g - 1
        if len(s) < 2 or gains.sum() <= 0:
            continue
        p = gains / gains.sum() if target == "gain" else np.exp(g) / np.exp(g).sum()
        log_q = s - math.log(np.exp(s).sum())
        per_list.append(-(p * log_q).sum())
    return np.mean(per_list) if per_list else 0.0


def _inv_d(r: float) -> float:
    return 1.0 / math.log2(1 + r)


def ref_lambdaloss(scores, labels, mask, sigma=1.0, mu=10.0, variant="ndcgloss2pp", k=None, max_label=None):
    per_list = []
    for s, g in _lists(scores, labels, mask):
        n = len(s)
        kk = n if k is None else min(k, n)
        ideal = sorted(2**g - 1, reverse=True)
        idcg = sum(ideal[r] * _inv_d(r + 1) for r in range(kk))
        rank = np.empty(n, dtype=int)
        rank[np.argsort(-s, kind="stable")] = np.arange(1, n + 1)
        total, any_pair = 0.0, False
        for i in range(n):
            for j in range(n):
                if not (g[i] > g[j] and rank[i] <= kk and rank[j] <= kk):
                    continue
                any_pair = True
                gap = abs(2 ** g[i] - 2 ** g[j]) / idcg
                d = abs(rank[i] - rank[j])
                loss2 = (_inv_d(d) - _inv_d(d + 1)) * gap
                lambdarank = abs(_inv_d(rank[i]) - _inv_d(rank[j])) * gap
                w = {"ndcgloss2": loss2, "lambdarank": lambdarank, "ndcgloss2pp": mu * loss2 + lambdarank}[
                    variant
                ]
                total += -w * math.log2(_sigmoid(sigma * (s[i] - s[j])))
        if any_pair:
            per_list.append(total)
    return np.mean(per_list) if per_list else 0.0


def ref_approxndcg(scores, labels, mask, alpha=1.0, max_label=None):
    per_list = []
    for s, g in _lists(scores, labels, mask):
        n = len(s)
        ideal = sorted(2**g - 1, reverse=True)
        idcg = sum(ideal[r] * _inv_d(r + 1) for r in range(n))
        if n < 2 or idcg <= 0:
            continue
        dcg = 0.0
        for i in range(n):
            approx_rank = 1 + sum(_sigmoid(alpha * (s[j] - s[i])) for j in range(n) if j != i)
            dcg += (2 ** g[i] - 1) * _inv_d(approx_rank)
        per_list.append(1 - dcg / idcg)
    return np.mean(per_list) if per_list else 0.0


REFERENCES: dict[str, Callable[..., float]] = {
    "bce": ref_bce,
    "mse": ref_mse,
    "focal": ref_focal,
    "ranknet": ref_ranknet,
    "listnet": ref_listnet,
    "lambdaloss": ref_lambdaloss,
    "approxndcg": ref_approxndcg,
}

CASES: list[tuple[str, dict[str, Any]]] = [
    ("bce", {}),
    ("bce", {"max_label": 4.0}),
    ("mse", {}),
    ("focal", {}),
    ("focal", {"gamma": 0.5, "alpha": 0.25, "max_label": 3.0}),
    ("ranknet", {}),
    ("ranknet", {"sigma": 2.0, "weighting": "gain"}),
    ("listnet", {}),
    ("listnet", {"target": "softmax"}),
    ("lambdaloss", {}),
    ("lambdaloss", {"variant": "ndcgloss2", "sigma": 0.5}),
    ("lambdaloss", {"variant": "lambdarank", "k": 3}),
    ("lambdaloss", {"mu": 2.0, "k": 4}),
    ("approxndcg", {}),
    ("approxndcg", {"alpha": 5.0}),
]
CASE_IDS = [f"{name}-{kwargs}" for name, kwargs in CASES]

# ---------------------------------------------------------------- batches


def make_batch(seed: int = 0, n_lists: int = 7, width: int = 9):
    """(scores, labels, mask) as NumPy; includes an empty list, a one-item list and an all-zero list."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, width + 1, size=n_lists)
    lengths[:3] = [0, 1, 5]
    mask = np.arange(width)[None, :] < lengths[:, None]
    labels = rng.integers(0, 4, size=(n_lists, width)).astype(np.float32)
    labels[2] = 0.0  # a list with no positive
    scores = rng.normal(size=(n_lists, width)).astype(np.float32)
    return scores, labels, mask


def to_torch(scores, labels, mask, dtype=torch.float32):
    s = torch.tensor(scores, dtype=dtype, requires_grad=True)
    return s, torch.tensor(labels), torch.tensor(mask)


def with_garbage(scores, labels, mask):
    scores, labels = scores.copy(), labels.copy()
    garbage_scores = np.array([np.inf, -np.inf, np.nan, 1e30, -7.0], dtype=np.float32)
    garbage_labels = np.array([np.nan, 99.0, -3.0, np.inf, 2.0], dtype=np.float32)
    n_pad = int((~mask).sum())
    scores[~mask] = np.resize(garbage_scores, n_pad)
    labels[~mask] = np.resize(garbage_labels, n_pad)
    return scores, labels, mask


# ---------------------------------------------------------------- tests


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_numpy_reference(name: str, kwargs: dict[str, Any], seed: int) -> None:
    scores, labels, mask = make_batch(seed)
    loss = get_loss(name)(*to_torch(scores, labels, mask), **kwargs)
    expected = REFERENCES[name](scores, labels, mask, **kwargs)
    assert loss.dtype == torch.float32 and loss.ndim == 0
    assert loss.item() == pytest.approx(expected, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_padding_garbage_changes_neither_loss_nor_gradients(name: str, kwargs: dict[str, Any]) -> None:
    scores, labels, mask = make_batch(3)
    s_clean, g_clean, m = to_torch(scores, labels, mask)
    loss_clean = get_loss(name)(s_clean, g_clean, m, **kwargs)
    loss_clean.backward()

    s_dirty, g_dirty, _ = to_torch(*with_garbage(scores, labels, mask))
    loss_dirty = get_loss(name)(s_dirty, g_dirty, m, **kwargs)
    loss_dirty.backward()

    assert torch.isfinite(loss_dirty)
    assert loss_dirty.item() == pytest.approx(loss_clean.item(), rel=1e-6, abs=1e-7)
    assert torch.isfinite(s_dirty.grad).all()
    assert torch.equal(s_dirty.grad[~m], torch.zeros_like(s_dirty.grad[~m]))
    torch.testing.assert_close(s_dirty.grad, s_clean.grad)


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_extra_padded_columns_change_nothing(name: str, kwargs: dict[str, Any]) -> None:
    scores, labels, mask = make_batch(4)
    wide = [np.pad(a, ((0, 0), (0, 3))) for a in (scores, labels, mask)]
    narrow_loss = get_loss(name)(*to_torch(scores, labels, mask), **kwargs)
    wide_loss = get_loss(name)(*to_torch(*with_garbage(*wide)), **kwargs)
    assert wide_loss.item() == pytest.approx(narrow_loss.item(), rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", sorted(LOSSES))
def test_half_precision_scores_give_close_values(name: str, dtype: torch.dtype) -> None:
    scores, labels, mask = make_batch(5)
    reference = get_loss(name)(*to_torch(scores, labels, mask))
    s, g, m = to_torch(scores, labels, mask, dtype=dtype)
    loss = get_loss(name)(s, g, m)
    loss.backward()
    assert loss.dtype == torch.float32
    assert s.grad is not None and s.grad.dtype == dtype and torch.isfinite(s.grad.float()).all()
    assert loss.item() == pytest.approx(reference.item(), rel=3e-2, abs=1e-3)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_raising_the_most_relevant_item_lowers_the_loss(name: str) -> None:
    # A reversed ranking: the most relevant item has the lowest score.
    labels = torch.tensor([[3.0, 2.0, 1.0, 0.0, 0.0], [0.0, 1.0, 2.0, 0.0, 0.0]])
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    scores = torch.tensor([[0.0, 0.5, 1.0, 1.5, 2.0], [1.0, 0.0, -1.0, 0.0, 0.0]], requires_grad=True)
    loss_fn = get_loss(name)
    loss = loss_fn(scores, labels, mask)
    loss.backward()
    assert scores.grad[0, 0] < 0 and scores.grad[1, 2] < 0
    raised = scores.detach().clone()
    raised[0, 0] += 0.25
    raised[1, 2] += 0.25
    assert loss_fn(raised, labels, mask) < loss


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_large_scores_are_stable(name: str, kwargs: dict[str, Any], scale: float) -> None:
    scores, labels, mask = make_batch(6)
    s, g, m = to_torch(np.sign(scores) * scale + scores, labels, mask)
    loss = get_loss(name)(s, g, m, **kwargs)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(s.grad).all()


@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=CASE_IDS)
def test_nothing_to_learn_gives_zero_with_a_gradient(name: str, kwargs: dict[str, Any]) -> None:
    pointwise = name in ("bce", "mse", "focal")
    # Pointwise losses learn from any valid item, so only an all-padding batch leaves them nothing.
    mask = (
        torch.zeros(3, 4, dtype=torch.bool)
        if pointwise
        else torch.tensor([[True, False, False, False]] * 2 + [[True] * 4])
    )
    labels = torch.zeros(3, 4)
    labels[0, 0] = 2.0  # a lone positive: one valid item, no pair
    scores = torch.full((3, 4), math.nan)
    scores[mask] = 1.0
    scores.requires_grad_(True)
    loss = get_loss(name)(scores, labels, mask, **kwargs)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(scores.grad, torch.zeros_like(scores))


def test_pointwise_targets_clip_above_max_label() -> None:
    scores = torch.tensor([[0.0, 0.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    high = get_loss("bce")(scores, torch.tensor([[5.0, 0.0]]), mask, max_label=3.0)
    at_max = get_loss("bce")(scores, torch.tensor([[3.0, 0.0]]), mask, max_label=3.0)
    assert high.item() == pytest.approx(at_max.item())


def test_focal_with_gamma_zero_is_bce() -> None:
    scores, labels, mask = to_torch(*make_batch(7))
    focal = get_loss("focal")(scores, labels, mask, gamma=0.0)
    assert focal.item() == pytest.approx(get_loss("bce")(scores, labels, mask).item(), rel=1e-6)


def test_get_loss_names_the_bad_value_and_the_valid_names() -> None:
    assert set(LOSSES) == {"bce", "mse", "focal", "ranknet", "listnet", "lambdaloss", "approxndcg"}
    with pytest.raises(ValueError, match="'lamdaloss'.*approxndcg.*ranknet"):
        get_loss("lamdaloss")


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("ranknet", {"weighting": "ndcg"}, "weighting"),
        ("listnet", {"target": "labels"}, "target"),
        ("lambdaloss", {"variant": "ndcgloss1"}, "variant"),
        ("lambdaloss", {"k": 0}, "k=0"),
        ("approxndcg", {"alpha": 0.0}, "alpha=0.0"),
        ("focal", {"gamma": -1.0}, "gamma=-1.0"),
        ("bce", {"max_label": 0.0}, "max_label=0.0"),
    ],
)
def test_bad_keyword_values_are_named(name: str, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_loss(name)(*to_torch(*make_batch(0)), **kwargs)


def test_shape_and_mask_type_are_checked() -> None:
    scores, labels, mask = to_torch(*make_batch(0))
    with pytest.raises(ValueError, match="shape"):
        get_loss("listnet")(scores[:, :-1], labels, mask)
    with pytest.raises(TypeError, match="mask"):
        get_loss("listnet")(scores, labels, mask.float())
