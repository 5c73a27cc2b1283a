"""Fine-tuning only the top encoder layers over the cached output of the frozen ones
(``model.trainable_layers``): the cached path scores what the full encoder scores, the frozen layers never
change, the cache is computed once and shared through the disk, and a damaged cache file is recomputed."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from study.models import layer_cache
from study.models.ranker import RankerConfig, RankingNet
from study.models.train import TrainConfig, fit, predict

from study.config import build_config
from study.workspace import cached_layers, prepare_workspace

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def workspace(tiny_bert: Path):
    config = build_config({"data": {"n_queries": 24, "items_per_query": 6},
                           "model": {"encoder": str(tiny_bert), "max_length": 32, "n_layers": 0,
                                     "variant": "text"},
                           "train": {"epochs": 2, "batch_size": 16}})
    return prepare_workspace(config, CPU)


def _config(ws, **changes) -> RankerConfig:
    return dataclasses.replace(ws.config.model, **changes)


@pytest.mark.parametrize("architecture", ["cross", "prior"])
def test_cached_lower_layers_score_what_the_full_encoder_scores(workspace, architecture: str) -> None:
    cfg = _config(workspace, architecture=architecture, trainable_layers=1)
    cached = workspace.tensors("val", cfg)
    assert cached.hidden is not None and cached.hidden.dtype == torch.float16
    assert cached.hidden.shape[0] == int(cached.lengths.sum())  # packed: real tokens only
    torch.manual_seed(0)
    model = RankingNet(cfg, n_features=workspace.scaler.n_outputs_)
    if architecture == "prior":  # a non-zero residual, so that the encoder's output matters
        torch.nn.init.normal_(model.head[-1].weight)
    plain = dataclasses.replace(cached, hidden=None, hidden_offsets=None)
    a = predict(model, cached, batch_size=7, dtype=torch.float32)
    b = predict(model, plain, batch_size=7, dtype=torch.float32)
    assert np.abs(a - b).max() < 1e-3 * max(np.abs(b).max(), 1.0)
    assert not np.allclose(a, a[0])  # the scores depend on the pair


def test_only_the_top_layers_train(workspace) -> None:
    cfg = _config(workspace, architecture="cross", trainable_layers=1)
    torch.manual_seed(0)
    model = RankingNet(cfg, n_features=workspace.scaler.n_outputs_)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    fit(model, workspace.tensors("train", cfg), workspace.tensors("val", cfg),
        TrainConfig(epochs=1, batch_size=16, encoder_lr=1e-3, patience=0))
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert any(n.startswith("encoder.encoder.layer.1.") for n in changed)
    assert not any(n.startswith(("encoder.embeddings.", "encoder.encoder.layer.0.")) for n in changed)


def test_which_layers_are_cached(workspace) -> None:
    assert cached_layers(_config(workspace, architecture="cross", trainable_layers=1)) == 1
    assert cached_layers(_config(workspace, architecture="cross", trainable_layers=0)) == 0  # all train
    assert cached_layers(_config(workspace, architecture="cross", trainable_layers=2)) == 0  # = depth
    assert cached_layers(_config(workspace, architecture="two_tower", trainable_layers=1)) == 0
    assert cached_layers(_config(workspace, architecture="frozen", trainable_layers=1)) == 0
    with pytest.raises(ValueError, match="trainable_layers"):
        RankerConfig(trainable_layers=-1)


def test_the_cache_is_read_back_from_disk_and_a_damaged_file_recomputed(workspace, tiny_bert: Path,
                                                                        tmp_path: Path, monkeypatch) -> None:
    split = workspace.tensors("val", _config(workspace, architecture="cross"))
    args = (split.input_ids.numpy(), split.token_type_ids.numpy(), split.lengths)
    calls = []
    real = layer_cache._compute
    monkeypatch.setattr(layer_cache, "_compute", lambda *a, **k: calls.append(1) or real(*a, **k))
    monkeypatch.setattr(layer_cache, "_MEMORY", {})
    first, offsets = layer_cache.lower_hidden_states(*args, model_dir=tiny_bert, n_frozen=1, device=CPU,
                                                     cache_dir=tmp_path)
    assert calls == [1] and len(list((tmp_path / "hidden").glob("*.npz"))) == 1
    assert int(offsets[-1]) == int(split.lengths.sum())
    monkeypatch.setattr(layer_cache, "_MEMORY", {})  # another process: the disk copy, no recomputation
    again, _ = layer_cache.lower_hidden_states(*args, model_dir=tiny_bert, n_frozen=1, device=CPU,
                                               cache_dir=tmp_path)
    assert calls == [1] and torch.equal(first, again)
    (path,) = (tmp_path / "hidden").glob("*.npz")
    path.write_bytes(b"not a numpy file")
    monkeypatch.setattr(layer_cache, "_MEMORY", {})
    third, _ = layer_cache.lower_hidden_states(*args, model_dir=tiny_bert, n_frozen=1, device=CPU,
                                               cache_dir=tmp_path)
    assert calls == [1, 1] and torch.equal(first, third)
    other, _ = layer_cache.lower_hidden_states(*args, model_dir=tiny_bert, n_frozen=2, device=CPU,
                                               cache_dir=tmp_path)
    assert not torch.equal(first, other)  # the key holds the number of frozen layers


def test_the_disk_cache_stays_under_its_budget(tmp_path: Path, monkeypatch) -> None:
    import os
    import time

    folder = tmp_path / "hidden"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.npz").write_bytes(b"x" * 1000)
        os.utime(folder / f"{i}.npz", (time.time() - 100 + i, time.time() - 100 + i))
    monkeypatch.setenv("STUDY_HIDDEN_CACHE_GB", str(2.5e-6))  # 2,500 bytes
    layer_cache._limit_disk(folder, folder / "3.npz")
    assert sorted(f.name for f in folder.iterdir()) == ["2.npz", "3.npz"]  # the newest kept
