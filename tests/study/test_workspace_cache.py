"""A workspace's one-off inputs come from the per-user cache the second time: the match featurizer is fitted
and a split's match features computed once for the same texts (and again when the texts change)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from study.data.match import MatchFeaturizer

from study.config import build_config
from study.workspace import prepare_workspace


def test_match_features_are_computed_once_per_texts(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    calls: list[int] = []
    real = MatchFeaturizer.transform
    monkeypatch.setattr(MatchFeaturizer, "transform",
                        lambda self, q, t: calls.append(len(q)) or real(self, q, t))
    config = build_config({"data": {"n_queries": 24, "items_per_query": 6}})
    first = prepare_workspace(config, torch.device("cpu")).match("val")
    assert len(calls) == 2  # fitting scores the training pairs, then the validation pairs
    again = prepare_workspace(config, torch.device("cpu")).match("val")  # another process, same data
    assert len(calls) == 2 and np.array_equal(first, again)  # neither fitted nor scored again
    assert list((tmp_path / "cache" / "match").glob("*.npy"))
    assert list((tmp_path / "cache" / "match").glob("fit-*.json"))
    other = build_config({"data": {"n_queries": 24, "items_per_query": 6, "seed": 1}})
    prepare_workspace(other, torch.device("cpu")).match("val")  # other splits: other texts
    assert len(calls) == 4
