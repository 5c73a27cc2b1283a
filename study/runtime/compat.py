"""May a stored study be resumed with this config? Its trials must stay comparable with new ones: the same
dataset, the same search space and every setting that shapes a trial, each change named in the refusal. A
setting newer than the study counts as unchanged while it holds what the study ran with."""

from __future__ import annotations

import dataclasses
from typing import Any

import optuna

from study.config import SECTIONS, Config
from study.errors import UserInputError
from study.models.config import LEGACY_MODEL_VALUES
from study.runtime.attrs import study_attrs


def _space_difference(stored: dict[str, Any], now: dict[str, Any]) -> str:
    parts = []
    added = sorted(set(now) - set(stored))
    removed = sorted(set(stored) - set(now))
    changed = sorted(k for k in set(now) & set(stored) if now[k] != stored[k])
    if added:
        parts.append("now also searches " + ", ".join(added))
    if removed:
        parts.append("no longer searches " + ", ".join(removed))
    for key in changed:
        parts.append(f"{key} was {stored[key]} and is now {now[key]}")
    return "; ".join(parts)


def _added_at_default(section: str, key: str, value: Any, stored: dict[str, Any]) -> bool:
    """Whether ``section.key`` is a setting newer than the stored study, at what the study ran with: its
    default (``data.duplicates = "mean"`` merged nothing before repeated pairs were allowed,
    ``model.trainable_layers = 0`` trains every layer, as every trial then did), or its legacy value where
    the default changed what a model computes (``model.prior_residual``, in a study that trains ``prior``)."""
    legacy = _legacy_value(section, key, stored)
    if legacy is not None:
        return value == legacy
    fields = {f.name: f for f in dataclasses.fields(SECTIONS[section])}
    return key in fields and fields[key].default is not dataclasses.MISSING and value == fields[key].default


def _legacy_value(section: str, key: str, stored: dict[str, Any]) -> Any:
    if section != "model" or key not in LEGACY_MODEL_VALUES:
        return None
    architectures = stored.get("search", {}).get("model.architecture", {}).get("choices", [])
    if stored.get("model", {}).get("architecture") == "prior" or "prior" in architectures:
        return LEGACY_MODEL_VALUES[key]
    return None  # a study that never trains prior: the setting changes nothing there


def _setting_changes(stored: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """``train.epochs 2 -> 3`` for every setting that shapes a trial's result and differs. A setting the
    stored study predates counts as unchanged while it holds its default."""
    out = []
    for section in ("data", "model", "train"):
        a, b = stored.get(section, {}), now.get(section, {})
        for key in sorted(set(a) | set(b)):
            if key == "metric" and section == "train":
                continue  # a copy of study.metric
            if key not in a and _added_at_default(section, key, b.get(key), stored):
                continue
            legacy = _legacy_value(section, key, stored) if key not in a else None
            if legacy is not None:
                out.append(f"{section}.{key} {_shown(legacy)} -> {_shown(b.get(key))} (the study predates "
                           f"this setting; --set {section}.{key}={legacy} resumes it as it ran)")
            elif a.get(key) != b.get(key):
                out.append(f"{section}.{key} {_shown(a.get(key))} -> {_shown(b.get(key))}")
    for key in ("metric", "second_objective"):
        a, b = stored.get("study", {}).get(key), now.get("study", {}).get(key)
        if a != b:
            out.append(f"study.{key} {_shown(a)} -> {_shown(b)}")
    return out


def _shown(value: Any) -> str:
    return "(unset)" if value is None else repr(value) if isinstance(value, str) else str(value)


def check_compatible(study: optuna.Study, config: Config, fingerprint: str) -> None:
    attrs = study_attrs(study)
    problems = []
    if attrs.get("dataset_fingerprint") not in (None, fingerprint):
        problems.append(f"the dataset differs (stored fingerprint {attrs['dataset_fingerprint']}, now "
                        f"{fingerprint})")
    if attrs.get("space_hash") not in (None, config.space_hash()):
        diff = _space_difference(attrs.get("search_space") or {}, config.search)
        problems.append("the search space differs" + (f" ({diff})" if diff else ""))
    elif attrs.get("training_hash") not in (None, config.training_hash()):
        stored = attrs.get("config")
        changes = _setting_changes(stored or {}, config.to_dict())
        if changes or not stored:  # else: only settings newer than the study, at their defaults
            problems.append("settings that shape every trial differ"
                            + (f" ({'; '.join(changes)})" if changes else ""))
    if problems:
        raise UserInputError(
            f"Study {study.study_name!r} already exists and {' and '.join(problems)}, so its trials would "
            "not be comparable with new ones; nothing was changed. Resume it with the same config, or "
            "start a new study with another --name (or pass --new to replace this one)."
        )
