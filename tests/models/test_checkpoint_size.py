"""What ``fit`` stores in ``last.ckpt``: only what a resume needs (encoder rows that training changed,
non-zero optimizer rows), and the resume from it is exact; a full disk during the background write stops
``fit``."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
import torch
from study.data.batching import build_split_tensors
from study.data.features import FeatureScaler
from study.data.splits import split_by_query
from study.data.synthetic import generate_catalogue
from study.models.checkpoint import (
    DiskFullError,
    load_checkpoint,
    pretrained_reference,
    save_checkpoint,
    unpack_state,
)
from study.models.ranker import RankerConfig, RankingNet
from study.models.train import TrainConfig, fit

from tests.messages import assert_says

CPU = torch.device("cpu")
WORDS = "encoder.embeddings.word_embeddings.weight"


@pytest.fixture(scope="module")
def data(tiny_bert):
    pairs = generate_catalogue(n_queries=30, items_per_query=6, seed=5)
    splits = split_by_query(pairs, val_fraction=0.25, test_fraction=0.25, seed=0)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)

    def tensors(split):
        return build_split_tensors(split, scaler.transform(split.frame), device=CPU, model_dir=str(tiny_bert),
                                   max_length=32)

    return tensors(splits.train), tensors(splits.val), scaler.n_outputs_


def _model(tiny_bert: Path, n_features: int) -> RankingNet:
    torch.manual_seed(0)
    config = RankerConfig(variant="fusion", architecture="cross", encoder=str(tiny_bert), dropout=0.1)
    return RankingNet(config, n_features=n_features)


CONFIG = TrainConfig(loss="listnet", epochs=3, batch_size=8, encoder_lr=1e-3, head_lr=3e-3, weight_decay=0.1,
                     patience=0, seed=1)


def test_last_checkpoint_keeps_only_the_rows_training_changed(data, tiny_bert, tmp_path: Path) -> None:
    train, val, n_features = data
    model = _model(tiny_bert, n_features)
    pretrained = pretrained_reference(model)[WORDS]
    fit(model, train, val, CONFIG, checkpoint_path=tmp_path / "last.ckpt")
    seen = torch.unique(train.input_ids)  # the tokens of the training pairs
    words = model.state_dict()[WORDS]
    unseen = torch.ones(len(words), dtype=torch.bool)
    unseen[seen] = False
    # rows of tokens training never saw stay exactly pretrained, although weight decay is on
    assert torch.equal(words[unseen], pretrained[unseen]) and not torch.equal(words[seen], pretrained[seen])
    ckpt = load_checkpoint(tmp_path / "last.ckpt")
    n_rows, index, rows = ckpt["model"]["tensors"][WORDS]
    assert n_rows == len(words) and set(index.tolist()) <= set(seen.tolist()) and len(index) < n_rows / 10
    assert torch.equal(rows, words[index])
    moments = [s["exp_avg"] for s in ckpt["optimizer"]["state"].values() if isinstance(s["exp_avg"], tuple)]
    assert moments and all(len(m[1]) < m[0] / 10 for m in moments)  # embedding moments: their non-zero rows
    assert torch.equal(unpack_state(ckpt["model"], pretrained_reference(model))[WORDS], words)
    dense = tmp_path / "dense.ckpt"
    save_checkpoint({"model": model.state_dict(), "best_state": model.state_dict()}, dense)
    assert (tmp_path / "last.ckpt").stat().st_size < dense.stat().st_size / 2


def test_frozen_layers_are_not_stored(data, tiny_bert, tmp_path: Path) -> None:
    train, val, n_features = data
    model = _model(tiny_bert, n_features)
    fit(model, train, val, dataclasses.replace(CONFIG, epochs=1, freeze_layers=1),
        checkpoint_path=tmp_path / "last.ckpt")
    tensors = load_checkpoint(tmp_path / "last.ckpt")["model"]["tensors"]
    frozen = [k for k in tensors if k.startswith(("encoder.embeddings.", "encoder.encoder.layer.0."))]
    assert frozen and all(isinstance(tensors[k], tuple) and len(tensors[k][1]) == 0 for k in frozen)
    trained = tensors["encoder.encoder.layer.1.attention.self.query.weight"]
    assert not isinstance(trained, tuple)  # trained: stored whole


def test_resume_from_a_packed_checkpoint_is_exact(data, tiny_bert, tmp_path: Path) -> None:
    train, val, n_features = data
    straight = fit(_model(tiny_bert, n_features), train, val, CONFIG)

    class Stop(Exception):
        pass

    def stop_after(epoch: int, metrics: dict) -> None:
        if epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        fit(_model(tiny_bert, n_features), train, val, CONFIG, checkpoint_path=tmp_path / "last.ckpt",
            on_epoch_end=stop_after)
    torch.manual_seed(99)  # another head initialisation: everything comes from the checkpoint
    resumed_model = RankingNet(_model(tiny_bert, n_features).config, n_features=n_features)
    resumed = fit(resumed_model, train, val, CONFIG, resume_from=tmp_path / "last.ckpt")
    assert resumed.resumed_from_epoch == 2 and resumed.best_epoch == straight.best_epoch
    assert all(torch.equal(resumed.best_state[k], straight.best_state[k]) for k in straight.best_state)
    assert [h["ndcg@10"] for h in resumed.history] == [h["ndcg@10"] for h in straight.history]


def test_a_full_disk_during_training_stops_fit_with_disk_full(data, tiny_bert, tmp_path: Path) -> None:
    """The background write hits the kernel's ENOSPC (its temporary file is a link to /dev/full)."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    train, val, n_features = data
    path = tmp_path / "last.ckpt"
    (tmp_path / f".last.ckpt.{os.getpid()}.tmp").symlink_to("/dev/full")
    epochs: list[int] = []
    with pytest.raises(DiskFullError) as info:
        fit(_model(tiny_bert, n_features), train, val, CONFIG, checkpoint_path=path,
            on_epoch_end=lambda epoch, metrics: epochs.append(epoch))
    assert_says(info.value, "disk is full")
    assert max(epochs) <= 2  # it stopped at the next epoch's checkpoint at the latest, not at the end
    assert list(tmp_path.iterdir()) == []  # no half-written file keeps the disk full
