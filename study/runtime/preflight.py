"""Checks ``study run`` makes before it creates, resumes or replaces (``--new``) a study: the device, the
model variant against the data, the model itself, the sampler and the pruner. Each failure is a
``UserInputError`` (one paragraph, exit code 2), raised while nothing stored has been touched yet."""

from __future__ import annotations

import torch

from study.config import Config
from study.data.schema import JudgedPairs
from study.errors import UserInputError
from study.models.device import resolve_device
from study.models.encoder import resolve_encoder_dir
from study.models.ranker import RankingNet, resolve_variant
from study.samplers import build_pruner, build_sampler

UNTOUCHED = "Nothing was created, changed or deleted."


def device_for(name: str) -> torch.device:
    """``resolve_device`` with its refusal (``cuda`` on a machine without CUDA, an unknown name) as a user
    error."""
    try:
        return resolve_device(name)
    except ValueError as exc:
        raise UserInputError(f"Device {name!r}: {exc}. Use --device cpu, or --device auto (CUDA where it is "
                             f"available, else the CPU). {UNTOUCHED}") from None


def variant_choices(config: Config) -> list[str]:
    """Every variant a trial can get: the search space's choices for ``model.variant``, else the config's."""
    space = config.search.get("model.variant")
    if isinstance(space, dict) and "choices" in space:
        return [str(v) for v in space["choices"]]
    return [config.model.variant]


def check_variants(config: Config, pairs: JudgedPairs) -> None:
    """Every variant the study can try must be one the data can feed (fusion and features need features)."""
    searched = "model.variant" in config.search
    for variant in variant_choices(config):
        try:
            resolve_variant(variant, len(pairs.feature_fields))
        except ValueError as exc:
            where = (f"model.variant is searched over {variant_choices(config)} and " if searched else "")
            fix = (f" Or drop {variant!r} from the choices of \"model.variant\" in [search]." if searched
                   else "")
            raise UserInputError(f"{config.data.path or pairs.name}: {where}{exc}.{fix} "
                                 f"{UNTOUCHED}") from None


def describe_variant(config: Config, pairs: JudgedPairs) -> str:
    """One line for the user: which variant runs and why, e.g. ``model: text (auto: the data has no ...)``."""
    choices = variant_choices(config)
    if len(choices) > 1 or "model.variant" in config.search:
        resolved = sorted({resolve_variant(v, len(pairs.feature_fields)) for v in choices})
        return f"model: searched over {', '.join(resolved)}"
    if config.model.variant != "auto":
        return f"model: {config.model.variant}"
    features = pairs.feature_fields
    if features:
        shown = ", ".join(features[:6]) + (f" and {len(features) - 6} more" if len(features) > 6 else "")
        return f"model: fusion (auto: the data has behaviour features: {shown})"
    return "model: text (auto: the data has no behaviour features)"


def _check_searched_layers(config: Config) -> None:
    space = config.search.get("model.n_layers")
    if not isinstance(space, dict):
        return
    n_layers_total = _encoder_layers(config)
    values = space.get("choices") or [space.get("high", 0)]
    too_many = [v for v in values if isinstance(v, int) and v > n_layers_total]
    if too_many:
        raise UserInputError(
            f"The search space tries model.n_layers {too_many}, but the encoder {config.model.encoder!r} has "
            f"{n_layers_total} layers. Lower those values in [search] (0 keeps all layers), or fix it with "
            f"--set model.n_layers=N. {UNTOUCHED}"
        )


def check_model(config: Config, *, n_features: int) -> None:
    """Build the ranker once (the encoder's weights are then cached for the trials) and the sampler and
    pruner, so that a config they refuse stops here, before any study is created or deleted."""
    try:
        ranker = RankingNet(config.model, n_features=n_features)
    except (ValueError, TypeError, OSError) as exc:
        raise UserInputError(f"The model cannot be built from [model] (variant {config.model.variant!r}, "
                             f"encoder {config.model.encoder!r}, n_layers {config.model.n_layers}): {exc}. "
                             f"{UNTOUCHED}"
                             ) from None
    if ranker.encoder is None and (config.model.uses_prior or config.model.uses_text):
        try:  # a frozen model builds no encoder, but reads the pretrained one's zero-shot cosine and tokens
            resolve_encoder_dir(config.model.encoder)
        except (ValueError, OSError) as exc:
            raise UserInputError(f"model.encoder {config.model.encoder!r}: {exc}. {UNTOUCHED}") from None
    if ranker.encoder is not None:
        _check_searched_layers(config)
    try:
        build_sampler(config.sampler, seed=config.study.seed, search_space=config.search)
        build_pruner(config.pruner, max_epochs=config.train.epochs)
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"The sampler or pruner cannot be built ([sampler] {config.sampler.name!r}, "
                             f"[pruner] {config.pruner.name!r}): {exc}. {UNTOUCHED}") from None


def _encoder_layers(config: Config) -> int:
    from transformers import AutoConfig  # transformers: ~1 s, only models with an encoder need it

    return int(AutoConfig.from_pretrained(str(resolve_encoder_dir(config.model.encoder)),
                                          local_files_only=True).num_hidden_layers)
