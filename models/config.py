"""The model's and the training's settings, without torch: ``study status``, ``study best`` and the config
checks import these and start in well under a second. ``study.models.ranker`` and ``study.models.train``
re-export them."""

from __future__ import annotations

import re
from dataclasses import dataclass

POOLINGS = ("cls", "mean", "pair")
SCHEDULES = ("linear", "cosine", "constant")
LOSS_NAMES = ("bce", "mse", "focal", "ranknet", "listnet", "lambdaloss", "approxndcg")
# validation metrics that can select epochs and be optimised (all higher-is-better); K is train.ndcg_k
SELECTABLE_METRICS = ("ndcg@K", "mrr", "map", "recall@K", "roc_auc")


def selectable_metrics(k: int) -> tuple[str, ...]:
    return tuple(m.replace("K", str(k)) for m in SELECTABLE_METRICS)


def check_metric(metric: str, k: int) -> None:
    """``metric`` is one the training computes on the validation split, with its K equal to ``ndcg_k``."""
    valid = selectable_metrics(k)
    if metric in valid:
        return
    at = re.fullmatch(r"(ndcg|recall)@(\d+)", str(metric))
    hint = (f" (for @{at.group(2)} set train.ndcg_k = {at.group(2)})" if at else "")
    raise ValueError(f"study.metric must be one of {', '.join(valid)}, got {metric!r}{hint}")


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


ARCHITECTURES = ("cross", "prior", "frozen", "two_tower")
PRIOR_RESIDUALS = ("cosine", "score")
# model settings added with a default that changes what a stored model computes: a stored config (a study's,
# a checkpoint's, an export's) that has no such key ran with this value
LEGACY_MODEL_VALUES: dict[str, object] = {"prior_residual": "score"}


@dataclass(frozen=True)
class RankerConfig:
    variant: str = "auto"  # auto | fusion | text | features
    architecture: str = "prior"  # how the text is read: cross | prior | frozen | two_tower (see RankingNet)
    # lexical query-product match features (BM25, coverage, numbers) into the head
    match_features: bool = False
    encoder: str = "minilm"  # 'minilm' or a local Hugging Face model directory
    n_layers: int = 0  # keep the first k encoder layers; 0 = all
    # fine-tune only the top k of those layers; the frozen ones below run once per dataset and their output
    # is cached (models.layer_cache), so a trial trains at the cost of k layers. 0 = train every layer
    trainable_layers: int = 0
    pooling: str = "pair"  # 'pair' (mean + query/product interaction) | 'cls' | 'mean'
    max_length: int = 64
    feature_hidden: int = 64
    feature_layers: int = 2
    head_hidden: int = 128
    dropout: float = 0.1
    prior_scale: float = 20.0  # initial multiplier of the zero-shot / two-tower cosine in the score
    # where the ``prior`` residual is added: "cosine", to cos0 inside the learned scale (s * (cos0 + r)), so a
    # small residual moves the ranking; "score", outside it (s * cos0 + r, how models stored before 2026-12-07
    # score), where the zero-initialised residual must grow by the scale (about 20) before the ranking moves
    prior_residual: str = "cosine"

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown model variant {self.variant!r}; expected one of {VARIANTS}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"unknown model architecture {self.architecture!r}; expected one of "
                             f"{ARCHITECTURES}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {self.pooling!r}; expected one of {POOLINGS}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8, got {self.max_length}")
        if not isinstance(self.match_features, bool):
            raise TypeError(f"match_features must be true or false, got {self.match_features}")
        if not isinstance(self.trainable_layers, int) or self.trainable_layers < 0:
            raise ValueError(
                f"trainable_layers must be an integer >= 0 (0 = all), got {self.trainable_layers!r}")
        if self.prior_scale <= 0:
            raise ValueError(f"prior_scale must be > 0, got {self.prior_scale}")
        if self.prior_residual not in PRIOR_RESIDUALS:
            raise ValueError(f"unknown prior_residual {self.prior_residual!r}; expected one of "
                             f"{PRIOR_RESIDUALS}")

    @property
    def uses_text(self) -> bool:
        """Whether the data's text is read at all (every variant but ``features``)."""
        return self.variant in ("auto", "fusion", "text")

    @property
    def uses_encoder(self) -> bool:
        """Whether a trainable encoder runs on the tokens (``frozen`` only needs the precomputed cosine)."""
        return self.uses_text and self.architecture != "frozen"

    @property
    def uses_prior(self) -> bool:
        """Whether the pretrained encoder's zero-shot cosine is an input (precomputed once per dataset)."""
        return self.uses_text and self.architecture in ("prior", "frozen")

    @property
    def uses_match(self) -> bool:
        return self.uses_text and self.match_features

    @property
    def needs_query_tokens(self) -> bool:
        """``two_tower`` encodes the query and the product text apart."""
        return self.uses_text and self.architecture == "two_tower"


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "listnet"
    epochs: int = 4
    batch_size: int = 32  # pairs per batch, whole queries
    encoder_lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    schedule: str = "linear"
    grad_clip: float = 1.0
    layerwise_lr_decay: float = 1.0
    freeze_layers: int = 0
    patience: int = 2  # epochs without validation improvement before stopping; 0 = never stop early
    precision: str = "auto"
    eval_batch_size: int = 512
    ndcg_k: int = 10
    relevance_threshold: float = 1.0
    bucket_by_length: bool = True
    # torch.compile the training steps. Off by default: on the CPU it measured slower (bench/RESULTS.md,
    # section 2); on CUDA it is not yet measured (bench/gpu_proof.py runs throughput.py with --compile).
    compile: bool = False
    metric: str = ""  # the validation metric that picks the best epoch and stops early; "" = ndcg@{ndcg_k}
    # validate before the first update (epoch 0): a trial never ends below its start
    eval_at_start: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.loss not in LOSS_NAMES:
            raise ValueError(f"unknown loss {self.loss!r}; expected one of {sorted(LOSS_NAMES)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; expected one of {SCHEDULES}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.metric:
            check_metric(self.metric, self.ndcg_k)

    @property
    def selection_metric(self) -> str:
        return self.metric or f"ndcg@{self.ndcg_k}"
