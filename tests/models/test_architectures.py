"""The text architectures (cross, prior, frozen, two_tower) and lexical match features: forward shapes,
gradients, the zero-residual start at the prior's ranking, validation at epoch 0, and the match features
themselves."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from study.data.match import MATCH_FEATURES, N_MATCH, MatchFeaturizer, tokens
from study.models.ranker import ARCHITECTURES, RankerConfig, RankingNet, resolve_variant
from study.models.train import TrainConfig, evaluate, fit

from study.config import build_config
from study.workspace import prepare_workspace
from tests.messages import assert_says

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def workspace(tiny_bert: Path):
    config = build_config({"data": {"n_queries": 24, "items_per_query": 6},
                           "model": {"encoder": str(tiny_bert), "max_length": 32},
                           "train": {"epochs": 2, "batch_size": 16}})
    return prepare_workspace(config, CPU)


def _model(ws, **changes) -> tuple[RankingNet, RankerConfig]:
    cfg = dataclasses.replace(ws.config.model, **changes)
    torch.manual_seed(0)
    return RankingNet(cfg, n_features=ws.scaler.n_outputs_), cfg


@pytest.mark.parametrize("architecture", ARCHITECTURES)
@pytest.mark.parametrize("match", [False, True])
def test_forward_and_gradient(workspace, architecture: str, match: bool) -> None:
    from study.data.batching import make_batch

    model, cfg = _model(workspace, architecture=architecture, match_features=match)
    split = workspace.tensors("train", cfg)
    batch = make_batch(split, np.arange(4))
    scores = model(**batch.model_inputs())  # (B,)
    assert scores.shape == (batch.labels.shape[0],) and torch.isfinite(scores).all()
    loss = -(torch.softmax(batch.labels, 0) * torch.log_softmax(scores, 0)).sum()
    loss.backward()
    trained = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    if architecture in ("cross", "two_tower"):
        assert any(n.startswith("encoder.") for n in trained), architecture
    if architecture == "prior":  # the residual's last layer is zero: its gradient reaches the head first
        assert any(n.startswith("head.") for n in trained)
    if architecture == "frozen":
        assert model.encoder is None and not any(n.startswith("encoder.") for n in trained)
    if architecture in ("prior", "frozen", "two_tower"):
        assert "cosine_scale" in trained
    width = split.features.shape[1]
    assert width == (workspace.scaler.n_outputs_ + (N_MATCH if match else 0)
                     + int(architecture in ("prior", "frozen")))


@pytest.mark.parametrize("architecture", ["prior", "frozen"])
def test_prior_models_start_at_the_zero_shot_ranking(workspace, architecture: str) -> None:
    """The residual starts at zero: before training the score is exactly scale * cos0."""
    model, cfg = _model(workspace, architecture=architecture)
    split = workspace.tensors("val", cfg)
    _, scores = evaluate(model, split, config=workspace.config.train, dtype=torch.float32)
    prior = split.features[:, -1].numpy()
    np.testing.assert_allclose(scores, cfg.prior_scale * prior, rtol=1e-5, atol=1e-5)


def test_the_prior_residual_is_measured_in_cosine_units(workspace) -> None:
    """``s * (cos0 + r)``: the same residual moves the score s times as far as in ``s * cos0 + r`` (the form
    of models stored before the change, still loadable with ``prior_residual = "score"``)."""
    new, cfg = _model(workspace, architecture="prior")
    old, _ = _model(workspace, architecture="prior", prior_residual="score")
    for model in (new, old):  # the same residual in both: seed 0, then one seeded last layer
        torch.manual_seed(1)
        torch.nn.init.normal_(model.head[-1].weight, std=0.05)
    split = workspace.tensors("val", cfg)
    base = cfg.prior_scale * split.features[:, -1].numpy()
    moved_new = evaluate(new, split, config=workspace.config.train, dtype=torch.float32)[1] - base
    moved_old = evaluate(old, split, config=workspace.config.train, dtype=torch.float32)[1] - base
    assert np.abs(moved_old).max() > 1e-4
    np.testing.assert_allclose(moved_new, cfg.prior_scale * moved_old, rtol=1e-3, atol=1e-5)


def test_validation_at_epoch_zero_keeps_the_start(workspace) -> None:
    """Epoch 0 is scored before any update, and a run whose training only hurts keeps the start."""
    model, cfg = _model(workspace, architecture="frozen")
    start, _ = evaluate(model, workspace.tensors("val", cfg), config=workspace.config.train,
                        dtype=torch.float32)
    seen = []
    # an absurd learning rate on a wrong loss direction: training can only make it worse or leave it
    train_cfg = TrainConfig(epochs=2, head_lr=5.0, encoder_lr=0.0, loss="mse", batch_size=16, patience=0)
    result = fit(model, workspace.tensors("train", cfg), workspace.tensors("val", cfg), train_cfg,
                 on_epoch_end=lambda e, m: seen.append(e))
    assert seen == [0, 1, 2]
    assert result.history[0]["epoch"] == 0 and result.history[0]["ndcg@10"] == pytest.approx(start["ndcg@10"])
    assert result.best_metrics["ndcg@10"] >= start["ndcg@10"]
    off = fit(_model(workspace, architecture="frozen")[0], workspace.tensors("train", cfg),
              workspace.tensors("val", cfg), dataclasses.replace(train_cfg, eval_at_start=False))
    assert off.history[0]["epoch"] == 1


def test_auto_variant() -> None:
    assert resolve_variant("auto", 4) == "fusion"
    assert resolve_variant("auto", 0) == "text"
    with pytest.raises(ValueError) as info:
        resolve_variant("fusion", 0)
    assert_says(info.value, "needs behaviour features")


def test_match_features_read_numbers_units_and_typos() -> None:
    assert tokens("Everbilt 1/2 in. x 10 ft. Pipe") == ["everbilt", "1/2", "in", "x", "10", "ft", "pipe"]
    assert tokens("2x4 stud 8 feet") == ["2", "4", "stud", "8", "ft"]
    titles = ["Everbilt 1/2 in. x 10 ft. Galvanized Pipe", "Husqvarna 46 in. Lawn Tractor",
              "Deck Lights (4-Pack)"]
    m = MatchFeaturizer().fit(["pipe", "mower", "lights"], titles)
    raw = dict(zip(MATCH_FEATURES, m.features("1/2 inch galvanized pipe", titles[0]), strict=True))
    assert raw["term_coverage"] == 1.0 and raw["number_match"] == 1.0 and raw["last_term_match"] == 1.0
    none = dict(zip(MATCH_FEATURES, m.features("1/2 galvanized pipe", titles[1]), strict=True))
    assert none["bm25"] == 0.0 and none["number_match"] == 0.0 and raw["bm25"] > 0
    typo = dict(zip(MATCH_FEATURES, m.features("deck lihgts", titles[2]), strict=True))
    clean = dict(zip(MATCH_FEATURES, m.features("deck lights", titles[2]), strict=True))
    assert 0 < typo["char_tfidf_cosine"] < clean["char_tfidf_cosine"]
    assert clean["stem_coverage"] == 1.0  # lights ~ Lights, after the crude stemmer
    again = MatchFeaturizer.from_dict(m.to_dict())
    q, t = ["pipe", "deck lights"], titles[:2]
    np.testing.assert_array_equal(again.transform(q, t), m.transform(q, t))
    train = m.transform(["pipe", "mower", "lights"], titles)
    np.testing.assert_allclose(train.mean(0), 0.0, atol=1e-5)  # standardised on the training pairs
