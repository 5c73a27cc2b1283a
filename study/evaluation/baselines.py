"""Reference points on the test split: random order, the behaviour-only MLP, the zero-shot encoder (cosine
between pretrained query and product embeddings, no training) and TF-IDF cosine (fitted on the training
split's product texts and queries, no labels).

Each ``*_scores`` function returns the model's test scores as a :class:`~study.comparison.Scored` (for the
paired comparison); :func:`compute_baselines` and the metric-only functions keep the plain metrics dicts.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch

from study.data.schema import LABEL, product_text
from study.evaluation.comparison import Scored
from study.models.device import resolve_precision
from study.models.metrics import evaluate_ranking
from study.models.ranker import RankingNet
from study.models.train import TrainConfig, evaluate, fit
from study.workspace import Workspace

logger = logging.getLogger(__name__)

LABELS = {"zero_shot_encoder": "zero-shot encoder", "tfidf_cosine": "tf-idf cosine", "random": "random order",
          "behaviour_only": "behaviour only"}


def _metrics(scores: np.ndarray, frame, config: TrainConfig) -> dict[str, float]:
    m = evaluate_ranking(scores, frame[LABEL].to_numpy(float), frame["query_id"].to_numpy(str),
                         k=config.ndcg_k, relevance_threshold=config.relevance_threshold,
                         score_threshold=None)  # untrained scores: the best threshold on test, an upper bound
    return {k: round(float(v), 6) for k, v in m.items()}


def _scored_frame(key: str, scores: np.ndarray, ws: Workspace) -> Scored:
    """Scores in the row order of the test split's frame."""
    frame = ws.split("test").frame
    return Scored(key=key, label=LABELS[key], scores=np.asarray(scores, dtype=np.float64),
                  labels=frame[LABEL].to_numpy(float), query_ids=frame["query_id"].to_numpy(str),
                  metrics=_metrics(scores, frame, ws.config.train))


def random_scores(ws: Workspace, *, seed: int = 0) -> Scored:
    return _scored_frame("random", np.random.default_rng(seed).random(len(ws.split("test").frame)), ws)


def random_order(ws: Workspace, *, seed: int = 0) -> dict[str, float]:
    return random_scores(ws, seed=seed).metrics


def behaviour_scores(ws: Workspace) -> Scored | None:
    """The behaviour-only MLP trained on the training split; None where the data has no behaviour feature."""
    if ws.scaler.n_outputs_ == 0:
        return None
    model_cfg = dataclasses.replace(ws.config.model, variant="features", dropout=0.1)
    train_cfg = dataclasses.replace(ws.config.train, loss="listnet", epochs=15, head_lr=3e-3, patience=3,
                                    weight_decay=1e-3)
    torch.manual_seed(train_cfg.seed)
    model = RankingNet(model_cfg, n_features=ws.scaler.n_outputs_)
    result = fit(model, ws.tensors("train", model_cfg), ws.tensors("val", model_cfg), train_cfg)
    model.load_state_dict(result.best_state)
    test = ws.tensors("test", model_cfg)
    metrics, scores = evaluate(model, test, config=train_cfg,
                               dtype=resolve_precision(train_cfg.precision, ws.device),
                               score_threshold=result.best_metrics["score_threshold"])  # fitted on validation
    return Scored(key="behaviour_only", label=LABELS["behaviour_only"],
                  scores=np.asarray(scores, dtype=np.float64),
                  labels=np.asarray(test.labels_np, dtype=np.float64), query_ids=test.row_query,
                  metrics={k: round(float(v), 6) for k, v in metrics.items()})


def behaviour_only(ws: Workspace) -> dict[str, float] | None:
    scored = behaviour_scores(ws)
    return None if scored is None else scored.metrics


def zero_shot_scores(ws: Workspace) -> Scored:
    """The untrained encoder's cosine: the same numbers (and cache) the ``prior`` architecture starts from."""
    return _scored_frame("zero_shot_encoder", ws.prior("test", ws.config.model.encoder), ws)


def zero_shot_encoder(ws: Workspace) -> dict[str, float]:
    return zero_shot_scores(ws).metrics


def tfidf_scores(ws: Workspace) -> Scored:
    """Cosine between TF-IDF vectors (``sublinear_tf``) of query and product text; the vocabulary and IDF are
    fitted on the training split's product texts and queries only (no labels, nothing of the test split)."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # sklearn: ~1.3 s, only this baseline

    train = ws.split("train").frame
    corpus = (product_text(train.drop_duplicates("product_id"), ws.pairs.text_fields)
              + sorted(set(train["query"].astype(str))))
    vectorizer = TfidfVectorizer(sublinear_tf=True).fit(corpus)
    frame = ws.split("test").frame
    q = vectorizer.transform(frame["query"].astype(str).tolist())
    p = vectorizer.transform(product_text(frame, ws.pairs.text_fields))
    scores = np.asarray(q.multiply(p).sum(axis=1)).ravel()  # rows are L2-normalised: the sum is the cosine
    return _scored_frame("tfidf_cosine", scores, ws)


def tfidf_cosine(ws: Workspace) -> dict[str, float]:
    return tfidf_scores(ws).metrics


def baseline_scores(ws: Workspace) -> list[Scored]:
    """Every baseline the data allows, in table order: zero-shot encoder and TF-IDF (text fields), random
    order, behaviour only (behaviour features)."""
    out: list[Scored] = []
    if ws.pairs.text_fields:
        out += [zero_shot_scores(ws), tfidf_scores(ws)]
    out.append(random_scores(ws))
    behaviour = behaviour_scores(ws)
    if behaviour is not None:
        out.append(behaviour)
    return out


def compute_baselines(ws: Workspace) -> dict[str, dict[str, float]]:
    return {s.key: s.metrics for s in baseline_scores(ws)}
