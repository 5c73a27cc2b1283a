"""Reference points on the test split: random order, the behaviour-only MLP and the zero-shot encoder
(cosine between pretrained query and product embeddings, no training)."""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import torch
import torch.nn.functional as F

from data.schema import LABEL, product_text
from data.tokenize import load_tokenizer
from models.device import autocast, resolve_precision
from models.encoder import load_encoder, pool, resolve_encoder_dir
from models.metrics import evaluate_ranking
from models.ranker import Ranker
from models.train import TrainConfig, evaluate, fit
from study.workspace import Workspace

logger = logging.getLogger(__name__)


def _metrics(scores: np.ndarray, frame, config: TrainConfig) -> dict[str, float]:
    m = evaluate_ranking(scores, frame[LABEL].to_numpy(float), frame["query_id"].to_numpy(str),
                         k=config.ndcg_k, relevance_threshold=config.relevance_threshold,
                         score_threshold=None)  # untrained scores: the best threshold on test, an upper bound
    return {k: round(float(v), 6) for k, v in m.items()}


def random_order(ws: Workspace, *, seed: int = 0) -> dict[str, float]:
    frame = ws.split("test").frame
    scores = np.random.default_rng(seed).random(len(frame))
    return _metrics(scores, frame, ws.config.train)


def behaviour_only(ws: Workspace) -> dict[str, float] | None:
    if ws.scaler.n_outputs_ == 0:
        return None
    model_cfg = dataclasses.replace(ws.config.model, variant="features", dropout=0.1)
    train_cfg = dataclasses.replace(ws.config.train, loss="listnet", epochs=15, head_lr=3e-3, patience=3,
                                    weight_decay=1e-3)
    torch.manual_seed(train_cfg.seed)
    model = Ranker(model_cfg, n_features=ws.scaler.n_outputs_)
    result = fit(model, ws.tensors("train", model_cfg), ws.tensors("val", model_cfg), train_cfg)
    model.load_state_dict(result.best_state)
    metrics, _ = evaluate(model, ws.tensors("test", model_cfg), config=train_cfg,
                          dtype=resolve_precision(train_cfg.precision, ws.device),
                          score_threshold=result.best_metrics["score_threshold"])  # fitted on validation
    return {k: round(float(v), 6) for k, v in metrics.items()}


@torch.inference_mode()
def embed(texts: list[str], *, encoder: str, device: torch.device, max_length: int = 128,
          batch_size: int = 256) -> torch.Tensor:
    """Mean-pooled, L2-normalised sentence embeddings of the full pretrained encoder, (N, H)."""
    model_dir = resolve_encoder_dir(encoder)
    tokenizer = load_tokenizer(model_dir)
    model = load_encoder(model_dir).to(device).eval()
    dtype = resolve_precision("auto", device)
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer(texts[i : i + batch_size], truncation=True, max_length=max_length, padding=True,
                        return_tensors="pt").to(device)
        with autocast(device, dtype):
            hidden = model(**enc).last_hidden_state  # (B, L, H)
        out.append(F.normalize(pool(hidden.float(), enc["attention_mask"], "mean"), dim=-1))
    return torch.cat(out)


def zero_shot_encoder(ws: Workspace) -> dict[str, float]:
    frame = ws.split("test").frame
    queries = frame["query"].astype(str).tolist()
    texts = product_text(frame, ws.pairs.text_fields)
    unique_q = sorted(set(queries))
    q_emb = embed(unique_q, encoder=ws.config.model.encoder, device=ws.device)
    p_emb = embed(texts, encoder=ws.config.model.encoder, device=ws.device)
    index = {q: i for i, q in enumerate(unique_q)}
    rows = torch.tensor([index[q] for q in queries], device=ws.device)
    scores = (q_emb[rows] * p_emb).sum(-1).cpu().numpy()
    return _metrics(scores, frame, ws.config.train)


def compute_baselines(ws: Workspace) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {"random": random_order(ws)}
    behaviour = behaviour_only(ws)
    if behaviour is not None:
        out["behaviour_only"] = behaviour
    if ws.pairs.text_fields:
        out["zero_shot_encoder"] = zero_shot_encoder(ws)
    return out
