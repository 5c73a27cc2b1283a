"""The built-in defaults: the search space every profile starts from, and the profiles chosen by (device,
data) that adjust it. The user's TOML and ``--set`` override them (``study.config.build_config``)."""

from __future__ import annotations

from typing import Any

# The search space every profile starts from (a profile's "search" table adds to it; None there removes an
# entry). The architecture is searched: ``prior`` and ``frozen`` start at the pretrained encoder's zero-shot
# ranking (bench/RESULTS.md, "Architectures"), ``two_tower`` and ``cross`` fine-tune the encoder's own view of
# the pair.
DEFAULT_SEARCH: dict[str, dict[str, Any]] = {
    "model.architecture": {"choices": ["prior", "frozen", "two_tower", "cross"]},
    "model.match_features": {"choices": [False, True]},
    "train.encoder_lr": {"low": 3e-5, "high": 1e-3, "log": True},
    "train.head_lr": {"low": 1e-3, "high": 3e-2, "log": True},
    "train.loss": {"choices": ["listnet", "lambdaloss", "ranknet", "bce"]},
    "train.weight_decay": {"low": 1e-4, "high": 0.1, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.3},
}
# Built-in defaults, chosen by (device, data): "<device>-demo" for the built-in synthetic catalogue,
# "<device>-file" for a user's file or a public dataset. The user's TOML and --set override them.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    # The demo: on a CPU the first MiniLM layer for the fine-tuned architectures (the zero-shot prior always
    # uses the whole pretrained encoder) and a small catalogue, so that the study fits in about 10 minutes on
    # 2 cores; on CUDA the full encoder and a larger budget.
    "cpu-demo": {
        "study": {"n_trials": 16},
        "pruner": {"n_startup_trials": 4, "n_warmup_steps": 1},
        "data": {"n_queries": 300, "items_per_query": 10, "val_fraction": 0.25, "test_fraction": 0.35},
        "model": {"n_layers": 1, "max_length": 40},
        "train": {"epochs": 3, "batch_size": 32, "patience": 0},
        # frozen trials take a second an epoch and need more of them (bench/RESULTS.md, section 5); a
        # fine-tuned trial's epoch takes about 10 s here, so those keep 3 (8 made the study 4x slower and
        # no better)
        "search": {"train.epochs": {"choices": [3, 8], "only_for": ["frozen"]}},
    },
    "cuda-demo": {
        "study": {"n_trials": 60},
        "data": {"n_queries": 2000, "items_per_query": 12},
        "model": {"n_layers": 0, "max_length": 64},
        "train": {"epochs": 5, "batch_size": 64, "patience": 2},
        "search": {"model.n_layers": {"choices": [3, 6]},
                   "model.pooling": {"choices": ["pair", "cls", "mean"]},
                   "train.layerwise_lr_decay": {"low": 0.7, "high": 1.0}},
    },
    # A user's own file (or a public dataset): the normal split (DataConfig defaults), the whole encoder.
    # On a CPU the profile keeps the encoder frozen (its zero-shot cosine plus a learned residual over the
    # match and behaviour features; trials take seconds) and says why: fine-tuning did not pay within a CPU
    # budget on real text (bench/RESULTS.md, section 8: on Home Depot one epoch of the whole encoder over
    # 7,396 training queries, 19 minutes on 2 cores, gained +0.0024 NDCG@10 over the zero-shot encoder,
    # interval [-0.0005, +0.0056]; the top two layers +0.0018 in 36 minutes; the hand-run recipes +0.0018 to
    # +0.0033, and all of them combined +0.0042).
    "cpu-file": {
        "study": {"n_trials": 30},
        # match features on by default: on a text-only file, frozen without them is the zero-shot ranking
        # itself
        "model": {"architecture": "frozen", "match_features": True, "n_layers": 0, "max_length": 64},
        "train": {"epochs": 6, "patience": 3},
        "search": {"model.architecture": None, "train.encoder_lr": None},
    },
    "cuda-file": {
        "study": {"n_trials": 40},
        "model": {"n_layers": 0, "max_length": 64},
        "train": {"epochs": 4, "batch_size": 64, "patience": 2},
        "search": {"train.layerwise_lr_decay": {"low": 0.7, "high": 1.0}},
    },
}
DEVICES = ("cpu", "cuda")
# A file profile's settings that deserve a sentence of their own when a run applies them (``study run``
# says it).
PROFILE_NOTES: dict[str, str] = {
    "model.architecture": (
        "the encoder is not fine-tuned for a data file (model.architecture = frozen: the pretrained "
        "encoder's zero-shot cosine plus a learned residual over match and behaviour features). On a CPU "
        "fine-tuning did not pay: on Home Depot, one epoch of the whole encoder (19 minutes on 2 cores) "
        "gained +0.0024 NDCG@10 over the untrained encoder, no more than the recipes one would run by hand "
        "(bench/RESULTS.md, section 8). --set model.architecture=prior --set train.epochs=1 fine-tunes "
        "anyway (about 20 minutes a trial for 50,000 training pairs on 2 cores; --set "
        "model.trainable_layers=2 trains only the top two layers, over cached lower ones)."),
}
