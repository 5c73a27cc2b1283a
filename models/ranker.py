"""The ranker: cross-encoder text tower, behaviour-feature tower and the MLP head that fuses them.

Variants: ``auto`` (``fusion`` when the data has behaviour features, ``text`` otherwise), ``fusion`` (both
towers), ``text`` (encoder only), ``features`` (feature MLP only, no encoder: the seeds' baseline). The model
returns one score per pair; losses live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from models.encoder import POOLINGS, encoder_hidden_size, load_encoder, pool, pooled_size, resolve_encoder_dir

VARIANTS = ("auto", "fusion", "text", "features")


def resolve_variant(variant: str, n_features: int) -> str:
    """``auto`` -> ``fusion`` with behaviour features, ``text`` without; an explicit variant the data cannot
    feed raises ``ValueError`` naming the fix."""
    if variant == "auto":
        return "fusion" if n_features > 0 else "text"
    if variant in ("fusion", "features") and n_features == 0:
        raise ValueError(
            f"model variant {variant!r} needs behaviour features and the data has none; use "
            "model.variant = \"auto\" or \"text\" (for example --set model.variant=text), or add numeric "
            "behaviour columns (price, clicks, ...) to the file")
    return variant


@dataclass(frozen=True)
class RankerConfig:
    variant: str = "auto"  # auto | fusion | text | features
    encoder: str = "minilm"  # 'minilm' or a local Hugging Face model directory
    n_layers: int = 0  # keep the first k encoder layers; 0 = all
    pooling: str = "pair"  # 'pair' (mean + query/product interaction) | 'cls' | 'mean'
    max_length: int = 64
    feature_hidden: int = 64
    feature_layers: int = 2
    head_hidden: int = 128
    dropout: float = 0.1

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown model variant {self.variant!r}; expected one of {VARIANTS}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout=}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length=}")

    @property
    def uses_text(self) -> bool:
        return self.variant in ("auto", "fusion", "text")

    def uses_features(self, n_features: int) -> bool:
        return resolve_variant(self.variant, n_features) in ("fusion", "features")


def mlp(n_in: int, hidden: int, n_layers: int, dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers), width


class FeatureTower(nn.Module):
    """MLP over scaled behaviour features and their missing flags."""

    def __init__(self, n_features: int, *, hidden: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.net, self.out_dim = mlp(n_features, hidden, max(n_layers, 1), dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, hidden)
        return self.net(features)


class Ranker(nn.Module):
    def __init__(self, config: RankerConfig, *, n_features: int) -> None:
        super().__init__()
        self.config = config
        self.n_features = n_features
        self.variant = resolve_variant(config.variant, n_features)  # concrete: fusion | text | features
        width = 0
        self.encoder: nn.Module | None = None
        self.features: FeatureTower | None = None
        if self.variant in ("fusion", "text"):
            self.encoder = load_encoder(resolve_encoder_dir(config.encoder), n_layers=config.n_layers)
            width += pooled_size(encoder_hidden_size(self.encoder), config.pooling)
        if self.variant in ("fusion", "features"):
            self.features = FeatureTower(
                n_features, hidden=config.feature_hidden, n_layers=config.feature_layers, dropout=config.dropout
            )
            width += self.features.out_dim
        self.dropout = nn.Dropout(config.dropout)
        body, body_out = mlp(width, config.head_hidden, 1, config.dropout)
        self.head = nn.Sequential(body, nn.Linear(body_out, 1))

    def forward(
        self,
        input_ids: torch.Tensor | None = None,  # (B, L)
        attention_mask: torch.Tensor | None = None,  # (B, L)
        token_type_ids: torch.Tensor | None = None,  # (B, L)
        features: torch.Tensor | None = None,  # (B, F)
    ) -> torch.Tensor:
        parts = []
        if self.encoder is not None:
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            parts.append(self.dropout(pool(out.last_hidden_state, attention_mask, self.config.pooling, token_type_ids)))  # (B, H)
        if self.features is not None:
            parts.append(self.features(features))  # (B, hidden)
        return self.head(torch.cat(parts, dim=-1)).squeeze(-1)  # (B,)

    def parameter_groups(
        self, *, encoder_lr: float, head_lr: float, weight_decay: float, layerwise_lr_decay: float = 1.0,
        freeze_layers: int = 0,
    ) -> list[dict]:
        """AdamW groups: encoder layers (optionally with layer-wise decay, bottom layers frozen) and head.

        Biases and LayerNorm weights get no weight decay.
        """
        groups: list[dict] = []

        def add(params: list[tuple[str, nn.Parameter]], lr: float) -> None:
            decay = [p for n, p in params if p.requires_grad and p.ndim >= 2]
            no_decay = [p for n, p in params if p.requires_grad and p.ndim < 2]
            if decay:
                groups.append({"params": decay, "lr": lr, "weight_decay": weight_decay})
            if no_decay:
                groups.append({"params": no_decay, "lr": lr, "weight_decay": 0.0})

        if self.encoder is not None:
            layers = list(self.encoder.encoder.layer)
            n = len(layers)
            if freeze_layers:
                for p in self.encoder.embeddings.parameters():
                    p.requires_grad_(False)
                for layer in layers[:freeze_layers]:
                    for p in layer.parameters():
                        p.requires_grad_(False)
            add(list(self.encoder.embeddings.named_parameters()), encoder_lr * layerwise_lr_decay**n)
            for i, layer in enumerate(layers):
                add(list(layer.named_parameters()), encoder_lr * layerwise_lr_decay ** (n - 1 - i))
            rest = [
                (name, p) for name, p in self.encoder.named_parameters()
                if not name.startswith(("embeddings.", "encoder.layer."))
            ]
            add(rest, encoder_lr)
        head_params = list(self.head.named_parameters())
        if self.features is not None:
            head_params += list(self.features.named_parameters())
        add(head_params, head_lr)
        return groups
