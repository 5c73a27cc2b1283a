"""The ranker: cross-encoder text tower, behaviour-feature tower and the MLP head that fuses them.

Variants: ``auto`` (``fusion`` when the data has behaviour features, ``text`` otherwise), ``fusion`` (both
towers), ``text`` (encoder only), ``features`` (feature MLP only, no encoder: the seeds' baseline). The model
returns one score per pair; losses live elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from study.data.match import N_MATCH
from study.models.config import ARCHITECTURES, VARIANTS, RankerConfig, resolve_variant  # noqa: F401 - re-exported
from study.models.encoder import (
    encoder_hidden_size,
    load_encoder,
    pool,
    pooled_size,
    resolve_encoder_dir,
)
from study.models.layer_cache import frozen_layers
from torch import nn


@dataclass(frozen=True)
class FeatureLayout:
    """Where each input sits in the model's ``features`` tensor: ``[behaviour | match | prior]``."""

    n_behaviour: int  # scaled behaviour features and their missing flags (always present, maybe unused)
    n_match: int
    prior: bool


def feature_layout(config: RankerConfig, n_features: int) -> FeatureLayout:
    return FeatureLayout(n_features, N_MATCH if config.uses_match else 0, config.uses_prior)


def mlp(n_in: int, hidden: int, n_layers: int, dropout: float) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(dropout)]
        width = hidden
    return nn.Sequential(*layers), width


class FeatureTower(nn.Module):
    """MLP over scaled behaviour features and their missing flags (and the text's match features)."""

    def __init__(self, n_features: int, *, hidden: int, n_layers: int, dropout: float) -> None:
        super().__init__()
        self.net, self.out_dim = mlp(n_features, hidden, max(n_layers, 1), dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (B, F) -> (B, hidden)
        return self.net(features)


class RankingNet(nn.Module):
    """One score per (query, product) pair.

    Text architectures (``config.architecture``):

    - ``cross``: ``[CLS] query [SEP] product [SEP]`` through the encoder, pooled, fused with the feature
      tower, MLP head. Must learn query-product interaction from the judged pairs.
    - ``prior``: the same cross-encoder, but its head's output is a *residual* (last layer zero-initialised)
      added to cos0, the pretrained encoder's zero-shot cosine, inside the learned scale:
      ``scale * (cos0 + residual)``: it starts where the zero-shot encoder is and training moves it from
      there (``prior_residual = "score"``: ``scale * cos0 + residual``, as models stored before 2026-12-07).
    - ``frozen``: no trainable encoder: ``scale * cos0`` plus a residual MLP over the match features (and
      behaviour features, and cos0 itself). Trains in seconds.
    - ``two_tower``: query and product encoded apart by the shared encoder, mean-pooled, ``scale * cosine``
      plus the residual head over match / behaviour features. Product vectors can be computed ahead of time.
    """

    def __init__(self, config: RankerConfig, *, n_features: int) -> None:
        super().__init__()
        self.config = config
        self.n_features = n_features
        self.variant = resolve_variant(config.variant, n_features)  # concrete: fusion | text | features
        self.layout = feature_layout(config, n_features)
        text = self.variant in ("fusion", "text")
        self.architecture = config.architecture if text else "features"
        self.use_behaviour = self.variant in ("fusion", "features")
        width = 0
        self.encoder: nn.Module | None = None
        self.features: FeatureTower | None = None
        self.n_frozen_layers = 0  # bottom encoder layers kept pretrained (model.trainable_layers)
        if text and config.uses_encoder:
            self.encoder = load_encoder(resolve_encoder_dir(config.encoder), n_layers=config.n_layers)
            self.n_frozen_layers = frozen_layers(int(self.encoder.config.num_hidden_layers),
                                                 config.trainable_layers)
            if self.architecture in ("cross", "prior"):
                width += pooled_size(encoder_hidden_size(self.encoder), config.pooling)
        tower_in = ((self.layout.n_behaviour if self.use_behaviour else 0) + self.layout.n_match
                    + int(self.layout.prior))
        if tower_in:
            self.features = FeatureTower(
                tower_in, hidden=config.feature_hidden, n_layers=config.feature_layers, dropout=config.dropout
            )
            width += self.features.out_dim
        self.dropout = nn.Dropout(config.dropout)
        self.head: nn.Module | None = None
        if width:
            body, body_out = mlp(width, config.head_hidden, 1, config.dropout)
            self.head = nn.Sequential(body, nn.Linear(body_out, 1))
        self.cosine_scale: nn.Parameter | None = None
        if self.architecture in ("prior", "frozen", "two_tower"):
            # learned, log scale
            self.cosine_scale = nn.Parameter(torch.tensor(float(config.prior_scale)).log())
            if self.head is not None:  # the residual starts at zero: the model starts at the cosine's ranking
                nn.init.zeros_(self.head[-1].weight)
                nn.init.zeros_(self.head[-1].bias)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,  # (B, L) pair tokens, or product tokens for two_tower
        attention_mask: torch.Tensor | None = None,  # (B, L)
        token_type_ids: torch.Tensor | None = None,  # (B, L)
        features: torch.Tensor | None = None,  # (B, F): [behaviour | match | prior], see FeatureLayout
        query_ids: torch.Tensor | None = None,  # (B, Lq) query tokens, two_tower only
        query_mask: torch.Tensor | None = None,  # (B, Lq)
        hidden_states: torch.Tensor | None = None,  # (B, L, H) the frozen lower layers' output, when cached
    ) -> torch.Tensor:
        parts = []
        score = None
        if self.encoder is not None:
            if self.architecture == "two_tower":
                # (B, Lq, H)
                q = self.encoder(input_ids=query_ids, attention_mask=query_mask).last_hidden_state
                p = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                cos = torch.nn.functional.cosine_similarity(
                    pool(q, query_mask, "mean"), pool(p, attention_mask, "mean"), dim=-1, eps=1e-6)  # (B,)
                score = self.cosine_scale.exp() * cos.float()
            else:
                if hidden_states is not None:  # (B, L, H): only the layers above the frozen ones run
                    hidden = self.top_layers(hidden_states, attention_mask)
                else:
                    hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                          token_type_ids=token_type_ids).last_hidden_state
                pooled = pool(hidden, attention_mask, self.config.pooling, token_type_ids)
                parts.append(self.dropout(pooled))  # (B, D)
        if self.features is not None:
            nb, nm = self.layout.n_behaviour, self.layout.n_match
            tower = [features[:, :nb]] if self.use_behaviour else []
            if nm or self.layout.prior:
                tower.append(features[:, nb:])  # match features, then the prior cosine
            parts.append(self.features(torch.cat(tower, dim=-1)))  # (B, hidden)
        cos0 = None
        if self.layout.prior and self.architecture in ("prior", "frozen"):
            cos0 = features[:, -1].float()  # (B,)
            score = self.cosine_scale.exp() * cos0
        if self.head is not None:
            residual = self.head(torch.cat([p.float() for p in parts], dim=-1) if len(parts) > 1
                                 else parts[0]).squeeze(-1)  # (B,)
            if cos0 is not None and self.architecture == "prior" and self.config.prior_residual == "cosine":
                score = self.cosine_scale.exp() * (cos0 + residual)  # the residual in cosine units
            else:
                score = residual if score is None else score + residual
        return score

    def top_layers(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The encoder layers above ``n_frozen_layers`` on the cached output of those below: the same as the
        full encoder's ``last_hidden_state`` on the tokens (up to the cache's float16)."""
        from transformers.masking_utils import create_bidirectional_mask  # lazy: see encoder._pretrained

        dtype = next(self.encoder.parameters()).dtype
        hidden = hidden.to(torch.get_autocast_dtype(hidden.device.type) if torch.is_autocast_enabled(
            hidden.device.type) else dtype)  # (B, L, H)
        mask = create_bidirectional_mask(config=self.encoder.config, inputs_embeds=hidden,
                                         attention_mask=attention_mask)
        for layer in self.encoder.encoder.layer[self.n_frozen_layers:]:
            hidden = layer(hidden, mask)
        return hidden

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
            freeze_layers = max(freeze_layers, self.n_frozen_layers)
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
        head_params = list(self.head.named_parameters()) if self.head is not None else []
        if self.cosine_scale is not None:
            head_params.append(("cosine_scale", self.cosine_scale))
        if self.features is not None:
            head_params += list(self.features.named_parameters())
        add(head_params, head_lr)
        return groups
