"""Slow: on the synthetic catalogue, text + behaviour beats either signal alone (real MiniLM, one layer)."""

from __future__ import annotations

import pytest
import torch
from study.models.ranker import RankingNet
from study.models.train import evaluate, fit

from study.config import build_config
from study.workspace import prepare_workspace


@pytest.mark.slow
def test_fusion_beats_text_only_and_behaviour_only() -> None:
    base = ["data.n_queries=120", "data.seed=1", "train.epochs=2", "train.head_lr=1e-2",
            "train.encoder_lr=3e-4", "model.max_length=40", "model.n_layers=1", "study.device='cpu'"]
    config = build_config({}, profile="cpu", overrides=base)
    ws = prepare_workspace(config, torch.device("cpu"))
    test = {}
    for variant in ("fusion", "text", "features"):
        cfg = config.with_params({"model.variant": variant})
        torch.manual_seed(0)
        model = RankingNet(cfg.model, n_features=ws.scaler.n_outputs_)
        result = fit(model, ws.tensors("train", cfg.model), ws.tensors("val", cfg.model), cfg.train)
        model.load_state_dict(result.best_state)
        metrics, _ = evaluate(model, ws.tensors("test", cfg.model), config=cfg.train, dtype=torch.float32)
        test[variant] = metrics["ndcg@10"]
    assert test["fusion"] > test["text"] and test["fusion"] > test["features"], test
