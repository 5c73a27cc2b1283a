"""What a worker prepares once and reuses for every trial: the data, its splits, the fitted feature
scaler, and device-resident tensors per (encoder tokenizer, max length)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import torch

from data.batching import SplitTensors, build_split_tensors
from data.features import FeatureScaler
from data.schema import JudgedPairs
from data.sources import load_dataset
from data.splits import Splits, kfold_by_query, split_by_query
from models.encoder import resolve_encoder_dir
from models.ranker import RankerConfig
from study.config import Config

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class Workspace:
    config: Config
    pairs: JudgedPairs
    splits: Splits
    scaler: FeatureScaler
    device: torch.device
    _tensors: dict[tuple, SplitTensors] = field(default_factory=dict, repr=False)

    def split(self, name: str) -> JudgedPairs:
        return getattr(self.splits, name)

    def features(self, name: str) -> np.ndarray:
        return self.scaler.transform(self.split(name).frame)

    def tensors(self, name: str, model: RankerConfig) -> SplitTensors:
        """Tokenised (cached) and moved to the device once per split, tokenizer and max length."""
        model_dir = str(resolve_encoder_dir(model.encoder)) if model.uses_text else None
        key = (name, model_dir, model.max_length if model_dir else 0)
        if key not in self._tensors:
            self._tensors[key] = build_split_tensors(
                self.split(name), self.features(name), device=self.device, model_dir=model_dir,
                max_length=model.max_length,
            )
        return self._tensors[key]

    def summary(self) -> dict[str, object]:
        return {
            **self.pairs.summary(),
            "fingerprint": self.pairs.fingerprint(),
            "splits": {n: {"pairs": len(self.split(n)), "queries": self.split(n).n_queries} for n in SPLITS},
        }


def prepare_workspace(config: Config, device: torch.device) -> Workspace:
    pairs = load_dataset(config.data)
    d = config.data
    if d.n_folds:
        splits = kfold_by_query(pairs, n_folds=d.n_folds, fold=d.fold, test_fraction=d.test_fraction, seed=d.seed)
    else:
        splits = split_by_query(pairs, val_fraction=d.val_fraction, test_fraction=d.test_fraction, seed=d.seed)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)
    logger.info("data %s: %d pairs, %d queries (train %d / val %d / test %d queries)", pairs.name, len(pairs),
                pairs.n_queries, splits.train.n_queries, splits.val.n_queries, splits.test.n_queries)
    return Workspace(config=config, pairs=pairs, splits=splits, scaler=scaler, device=device)
