"""``study export --retrain``: the best trial's configuration fitted again on train + validation (the
feature scaler refitted on them) for the trial's best number of epochs, then scored on the test split."""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna
import pandas as pd
import torch

from study.data.batching import build_split_tensors
from study.data.features import FeatureScaler
from study.data.match import MatchFeaturizer
from study.data.schema import JudgedPairs, product_text
from study.errors import UserInputError
from study.models.device import resolve_precision
from study.models.encoder import resolve_encoder_dir
from study.models.ranker import RankingNet
from study.models.train import evaluate, fit
from study.runtime.attrs import study_attr
from study.runtime.studies import stored_config
from study.workspace import assemble_inputs, prepare_workspace


def retrain_best(study: optuna.Study, trial: optuna.trial.FrozenTrial, config: Any, device: Any) -> tuple:
    """Fit the trial's config on train + validation (scaler refitted on them) for its best epoch count."""
    ws = prepare_workspace(stored_config(study), device)
    if study_attr(study, "dataset_fingerprint") not in (None, ws.pairs.fingerprint()):
        raise UserInputError(f"The data found here differs from study {study.study_name!r}'s (fingerprint "
                             f"{ws.pairs.fingerprint()} vs {study_attr(study, 'dataset_fingerprint')}); not "
                             "retraining.")
    p = ws.pairs
    both = JudgedPairs(pd.concat([ws.splits.train.frame, ws.splits.val.frame], ignore_index=True),
                       p.text_fields, p.feature_fields, p.name)
    scaler = FeatureScaler(log1p=True).fit(both.frame, p.feature_fields)
    match = None
    if config.model.uses_match:
        match = MatchFeaturizer().fit(both.frame["query"].astype(str).tolist(),
                                      product_text(both.frame, p.text_fields))
    model_dir = str(resolve_encoder_dir(config.model.encoder)) if config.model.uses_encoder else None

    def tensors(pairs: JudgedPairs) -> Any:
        inputs = assemble_inputs(pairs.frame, p.text_fields, model=config.model, scaler=scaler, match=match,
                                 prior_encoder=config.model.encoder, device=device)
        return build_split_tensors(pairs, inputs, device=device, model_dir=model_dir,
                                   max_length=config.model.max_length,
                                   separate_query=config.model.needs_query_tokens)

    epochs = int(trial.user_attrs.get("best_epoch") or config.train.epochs)
    train_cfg = dataclasses.replace(config.train, epochs=epochs, patience=0)
    torch.manual_seed(train_cfg.seed)
    model = RankingNet(config.model, n_features=scaler.n_outputs_)
    # Validation queries are in the training data now, so the last epoch is kept, not the "best" one.
    result = fit(model, tensors(both), tensors(ws.splits.val), train_cfg)
    test, _ = evaluate(model, tensors(ws.splits.test), config=train_cfg,
                       dtype=resolve_precision(train_cfg.precision, device),
                       score_threshold=result.history[-1]["score_threshold"])
    info = {"epochs": epochs, "train_queries": both.n_queries, "train_pairs": len(both),
            "test": {k: round(float(v), 6) for k, v in test.items()}}
    return model.cpu(), scaler, match, info
