"""What a worker prepares once and reuses for every trial: the data, its splits, the fitted feature
scaler, and device-resident tensors per (encoder tokenizer, max length)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from study.config import Config
from study.data.batching import SplitTensors, build_split_tensors
from study.data.features import FeatureScaler
from study.data.match import MATCH_FEATURES, MatchFeaturizer
from study.data.schema import JudgedPairs, product_text
from study.data.sources import load_dataset
from study.data.splits import Splits, kfold_by_query, split_by_query
from study.data.tokenize import default_cache_dir, write_cache_file
from study.models.encoder import resolve_encoder_dir
from study.models.layer_cache import frozen_layers, lower_hidden_states
from study.models.ranker import RankerConfig
from study.models.zero_shot import zero_shot_cosine

logger = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


@dataclass
class Workspace:
    config: Config
    pairs: JudgedPairs
    splits: Splits
    scaler: FeatureScaler
    device: torch.device
    match_featurizer: MatchFeaturizer | None = None  # fitted on the training split on first use
    _tensors: dict[tuple, SplitTensors] = field(default_factory=dict, repr=False)
    _match: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def split(self, name: str) -> JudgedPairs:
        return getattr(self.splits, name)

    def features(self, name: str) -> np.ndarray:
        return self.scaler.transform(self.split(name).frame)

    def texts(self, name: str) -> tuple[list[str], list[str]]:
        frame = self.split(name).frame
        return frame["query"].astype(str).tolist(), product_text(frame, self.pairs.text_fields)

    def match(self, name: str) -> np.ndarray:
        """(P, N_MATCH) standardised query-product match features of a split, in its frame's row order."""
        if self.match_featurizer is None:
            self.match_featurizer = _fitted_match(self.texts("train"))
        if name not in self._match:
            self._match[name] = _cached_match(self.match_featurizer, self.texts("train"), self.texts(name))
        return self._match[name]

    def prior(self, name: str, encoder: str) -> np.ndarray:
        """(P,) zero-shot cosine of the full pretrained encoder (cached on disk), in the frame's row order."""
        return zero_shot_cosine(*self.texts(name), model_dir=resolve_encoder_dir(encoder), device=self.device)

    def model_inputs(self, name: str, model: RankerConfig) -> np.ndarray:
        """The ``features`` columns of ``models.ranker.FeatureLayout``: behaviour, match features, prior."""
        return assemble_inputs(self.split(name).frame, self.pairs.text_fields, model=model,
                               scaler=self.scaler, match=self.match(name) if model.uses_match else None,
                               prior_encoder=model.encoder, device=self.device)

    def tensors(self, name: str, model: RankerConfig) -> SplitTensors:
        """Tokenised (cached) and moved to the device once per split, tokenizer, max length and inputs; with
        the frozen lower layers' output attached when ``model.trainable_layers`` leaves layers frozen."""
        model_dir = str(resolve_encoder_dir(model.encoder)) if model.uses_encoder else None
        key = (name, model_dir, model.max_length if model_dir else 0, model.uses_match,
               model.uses_prior and model.encoder, model.needs_query_tokens)
        if key not in self._tensors:
            self._tensors[key] = build_split_tensors(
                self.split(name), self.model_inputs(name, model), device=self.device, model_dir=model_dir,
                max_length=model.max_length, separate_query=model.needs_query_tokens,
            )
        n_frozen = cached_layers(model)
        if not n_frozen:
            return self._tensors[key]
        hidden_key = (*key, n_frozen)
        if hidden_key not in self._tensors:
            base = self._tensors[key]
            hidden, offsets = lower_hidden_states(
                base.input_ids.cpu().numpy(), base.token_type_ids.cpu().numpy(), base.lengths,
                model_dir=Path(model_dir), n_frozen=n_frozen, device=self.device)
            self._tensors[hidden_key] = dataclasses.replace(base, hidden=hidden, hidden_offsets=offsets)
        return self._tensors[hidden_key]

    def summary(self) -> dict[str, object]:
        return {
            **self.pairs.summary(),
            "fingerprint": self.pairs.fingerprint(),
            "splits": {n: {"pairs": len(self.split(n)), "queries": self.split(n).n_queries} for n in SPLITS},
        }


def _texts_key(*parts: tuple[list[str], list[str]]) -> str:
    h = hashlib.sha256(repr(MATCH_FEATURES).encode())
    for queries, texts in parts:
        for q, t in zip(queries, texts, strict=True):
            h.update(q.encode() + b"\x1f" + t.encode() + b"\x1e")
        h.update(b"\x1d")
    return h.hexdigest()[:24]


def _store(path: Path, write: Callable[[Path], None]) -> None:
    write_cache_file(path, write)  # a full or read-only cache costs time, not the run: one warning


def _fitted_match(train: tuple[list[str], list[str]]) -> MatchFeaturizer:
    """The match featurizer fitted on the training texts (fitting scores every training pair), from the
    per-user cache (``match/fit-*.json``) when the same texts were fitted before."""
    path = default_cache_dir() / "match" / f"fit-{_texts_key(train)}.json"
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        if path.is_file():
            return MatchFeaturizer.from_dict(json.loads(path.read_text()))
    featurizer = MatchFeaturizer().fit(*train)
    _store(path, lambda tmp: tmp.write_text(json.dumps(featurizer.to_dict())))
    return featurizer


def _cached_match(featurizer: MatchFeaturizer, train: tuple[list[str], list[str]],
                  split: tuple[list[str], list[str]]) -> np.ndarray:
    """The split's match features from the per-user cache (``match/``), keyed by the texts the featurizer was
    fitted on, the split's texts and the feature names; computed (minutes for 70k pairs) and stored once."""
    path = default_cache_dir() / "match" / f"{_texts_key(train, split)}.npy"
    with contextlib.suppress(OSError, ValueError):
        if path.is_file():
            cached = np.load(path)
            if cached.shape == (len(split[0]), len(MATCH_FEATURES)):
                return cached
    result = featurizer.transform(*split)
    _store(path, lambda tmp: np.save(tmp, result))
    return result


def cached_layers(model: RankerConfig) -> int:
    """The frozen bottom layers whose output is computed once and cached (0: none): the cross-encoders
    (``cross``, ``prior``) with ``trainable_layers`` below the encoder's depth."""
    if not (model.uses_encoder and model.trainable_layers and model.architecture in ("cross", "prior")):
        return 0
    return frozen_layers(model.n_layers or encoder_depth(resolve_encoder_dir(model.encoder)),
                         model.trainable_layers)


def encoder_depth(model_dir: Path) -> int:
    from transformers import AutoConfig  # lazy: transformers takes ~1 s to import

    return int(AutoConfig.from_pretrained(str(model_dir), local_files_only=True).num_hidden_layers)


def prepare_workspace(config: Config, device: torch.device) -> Workspace:
    pairs = load_dataset(config.data)
    d = config.data
    if d.n_folds:
        splits = kfold_by_query(pairs, n_folds=d.n_folds, fold=d.fold, test_fraction=d.test_fraction,
                                seed=d.seed)
    else:
        splits = split_by_query(pairs, val_fraction=d.val_fraction, test_fraction=d.test_fraction,
                                seed=d.seed)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)
    logger.info("data %s: %d pairs, %d queries (train %d / val %d / test %d queries)", pairs.name, len(pairs),
                pairs.n_queries, splits.train.n_queries, splits.val.n_queries, splits.test.n_queries)
    return Workspace(config=config, pairs=pairs, splits=splits, scaler=scaler, device=device)


def assemble_inputs(frame: pd.DataFrame, text_fields: tuple[str, ...], *, model: RankerConfig,
                    scaler: FeatureScaler, match: MatchFeaturizer | np.ndarray | None,
                    prior_encoder: str | Path | None, device: torch.device, cache: bool = True) -> np.ndarray:
    """The model's ``features`` for any frame (a workspace split, retraining, ranking with an exported model):
    behaviour features through the fitted scaler, the match features (from the fitted featurizer, or already
    computed for this frame), the zero-shot cosine of ``prior_encoder``."""
    columns = [scaler.transform(frame)]
    if model.uses_match or model.uses_prior:
        queries, texts = frame["query"].astype(str).tolist(), product_text(frame, text_fields)
    if model.uses_match:
        if match is None:
            raise ValueError("the model reads match features but no fitted MatchFeaturizer was given")
        columns.append(match if isinstance(match, np.ndarray) else match.transform(queries, texts))
    if model.uses_prior:
        if prior_encoder is None:
            raise ValueError("the model reads the zero-shot prior but no prior encoder was given")
        cosine = zero_shot_cosine(queries, texts, model_dir=resolve_encoder_dir(str(prior_encoder)),
                                  device=device, cache=cache)
        columns.append(cosine[:, None])
    return np.concatenate(columns, axis=1).astype(np.float32)
