"""The search space: the only module that calls ``trial.suggest_*``.

A space is a mapping from a config field (``"train.encoder_lr"``) to a spec:
``{low, high, log?, step?}`` for numbers (int when low and high are ints) or ``{choices = [...]}``.
Parameter names equal config field names, so best params map straight back onto a config.

The space is conditional (define-by-run): a field that only some text architectures read (``ONLY_FOR``) is
suggested only in trials of those architectures, so a ``frozen`` trial neither samples nor reports an encoder
learning rate, and TPE (``group=True``) models each branch apart. A spec's ``only_for = [...]`` narrows any
field the same way (the CPU demo searches 3 or 8 epochs for ``frozen`` trials only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import optuna

SPEC_KEYS = {"low", "high", "log", "step", "choices", "only_for"}
# models.config.ARCHITECTURES, kept here so that the space imports no torch (a test checks they agree)
ARCHITECTURES = ("cross", "prior", "frozen", "two_tower")
ENCODER_ARCHITECTURES = ("cross", "prior", "two_tower")  # those with a trainable encoder
# fields read only under some values of model.architecture (and never by the text-free ``features`` variant)
ONLY_FOR: dict[str, tuple[str, ...]] = {
    "train.encoder_lr": ENCODER_ARCHITECTURES,
    "train.layerwise_lr_decay": ENCODER_ARCHITECTURES,
    "train.freeze_layers": ENCODER_ARCHITECTURES,
    "model.n_layers": ENCODER_ARCHITECTURES,
    "model.max_length": ENCODER_ARCHITECTURES,
    "model.trainable_layers": ENCODER_ARCHITECTURES,
    "model.pooling": ("cross", "prior"),
    "model.prior_scale": ("prior", "frozen", "two_tower"),
}
PARENTS = ("model.variant", "model.architecture")  # suggested first: the others depend on them


def check_space(space: dict[str, dict[str, Any]], *, valid_fields: set[str]) -> None:
    for name, spec in space.items():
        if name not in valid_fields:
            raise ValueError(f"search space names an unknown config field {name!r}; valid fields: "
                             f"{', '.join(sorted(valid_fields))}")
        if not isinstance(spec, dict):  # a config error, reported as such
            raise ValueError(  # noqa: TRY004
                f"search space entry {name!r} must be a table like {{low=..., high=...}} or "
                f"{{choices=[...]}}, got {spec!r}")
        unknown = set(spec) - SPEC_KEYS
        if unknown:
            raise ValueError(f"search space entry {name!r} has unknown keys {sorted(unknown)}; "
                             f"allowed: {sorted(SPEC_KEYS)}")
        _check_only_for(name, spec)
        if "choices" in spec:
            if not spec["choices"]:
                raise ValueError(f"search space entry {name!r} has no choices")
        elif "low" not in spec or "high" not in spec:
            raise ValueError(f"search space entry {name!r} needs low and high, or choices")
        elif spec["low"] > spec["high"]:
            raise ValueError(f"search space entry {name!r} has low > high: {spec!r}")
        elif spec.get("log") and spec["low"] <= 0:
            raise ValueError(f"search space entry {name!r} has log = true, which needs low > 0, got low = "
                             f"{spec['low']}")
        else:
            try:  # what Optuna itself would refuse at the first trial (a log range with a step, ...)
                _distribution(spec)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"search space entry {name!r} is not a valid range: {exc}") from None


def _check_only_for(name: str, spec: dict[str, Any]) -> None:
    if "only_for" not in spec:
        return
    only_for = spec["only_for"]
    if name in PARENTS:
        raise ValueError(f"search space entry {name!r} cannot have only_for: it decides which fields matter")
    if (not isinstance(only_for, (list, tuple)) or not only_for
            or any(a not in ARCHITECTURES for a in only_for)):
        raise ValueError(f"search space entry {name!r}: only_for must be a non-empty list of architectures "
                         f"from {list(ARCHITECTURES)}, got {only_for!r}")


def _distribution(spec: dict[str, Any]) -> optuna.distributions.BaseDistribution:
    log = bool(spec.get("log", False))
    if _is_int(spec):
        return optuna.distributions.IntDistribution(spec["low"], spec["high"], log=log,
                                                    step=int(spec.get("step", 1)))
    return optuna.distributions.FloatDistribution(float(spec["low"]), float(spec["high"]), log=log,
                                                  step=spec.get("step"))

def in_spec(value: Any, spec: dict[str, Any]) -> bool:
    """Whether ``value`` is one the search-space entry ``spec`` can give (``study.space`` conventions)."""
    if "choices" in spec:
        return any(value == c and isinstance(value, bool) == isinstance(c, bool) for c in spec["choices"])
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    low, high = spec["low"], spec["high"]
    if not low <= value <= high:
        return False
    is_int = isinstance(low, int) and isinstance(high, int) and not isinstance(spec.get("step", 1), float)
    if is_int and value != int(value):
        return False
    step = spec.get("step")
    return not step or abs((value - low) / step - round((value - low) / step)) < 1e-9


def _is_int(spec: dict[str, Any]) -> bool:
    return isinstance(spec["low"], int) and isinstance(spec["high"], int) and not isinstance(
        spec.get("step", 1), float
    )


def active(name: str, values: dict[str, Any], spec: dict[str, Any] | None = None) -> bool:
    """Whether field ``name`` matters given the ``values`` of ``model.variant`` / ``model.architecture`` (a
    missing value counts as any). A spec's own ``only_for`` narrows the built-in ``ONLY_FOR``: the field is
    searched only in trials of those architectures, and the others keep the config's value."""
    only_for = ONLY_FOR.get(name)
    if spec and "only_for" in spec:
        only_for = tuple(a for a in spec["only_for"] if only_for is None or a in only_for)
    if only_for is None:
        return True
    if values.get("model.variant") == "features":
        return False
    architecture = values.get("model.architecture")
    return architecture is None or architecture in only_for


def suggest(trial: optuna.trial.BaseTrial, space: dict[str, dict[str, Any]], *,
            fixed: dict[str, Any] | None = None) -> dict[str, Any]:
    """One value per search-space field that matters for this trial, by name. ``fixed``: the config's values
    of the fields that are not searched (``model.architecture`` and ``model.variant`` decide what matters)."""
    params: dict[str, Any] = {}
    values = dict(fixed or {})
    for name in [*(p for p in PARENTS if p in space), *(n for n in space if n not in PARENTS)]:
        spec = space[name]
        if not active(name, values, spec):
            continue
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, list(spec["choices"]))
        elif _is_int(spec):
            params[name] = trial.suggest_int(
                name, spec["low"], spec["high"], step=int(spec.get("step", 1)),
                log=bool(spec.get("log", False))
            )
        else:
            params[name] = trial.suggest_float(
                name, float(spec["low"]), float(spec["high"]), step=spec.get("step"),
                log=bool(spec.get("log", False))
            )
        values[name] = params[name]
    return params


def grid_values(space: dict[str, dict[str, Any]], *, points: int = 3) -> dict[str, list[Any]]:
    """A finite grid for the grid sampler: choices as given, ranges cut into ``points`` values."""
    grid: dict[str, list[Any]] = {}
    for name, spec in space.items():
        if "choices" in spec:
            grid[name] = list(spec["choices"])
        elif _is_int(spec):
            step = int(spec.get("step", 1))
            values = list(range(spec["low"], spec["high"] + 1, step))
            idx = np.unique(np.linspace(0, len(values) - 1, min(points, len(values))).round().astype(int))
            grid[name] = [values[i] for i in idx]
        elif spec.get("log"):
            grid[name] = [float(v) for v in np.geomspace(spec["low"], spec["high"], points)]
        else:
            grid[name] = [float(v) for v in np.linspace(spec["low"], spec["high"], points)]
    return grid

def check_enqueue(entries: Any, search: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    """Each ``[[enqueue]]`` table (or ``--enqueue`` JSON) names searched fields only, with values their range
    or choices allow; the sampler fills the searched fields an entry leaves out."""
    if isinstance(entries, dict):
        entries = [entries]
    if not isinstance(entries, (list, tuple)):
        raise TypeError("enqueue must be a list of tables like {\"train.head_lr\" = 0.01}, got "
                        f"{entries!r}")
    out = []
    for i, entry in enumerate(entries, 1):
        if not isinstance(entry, dict) or not entry:
            raise ValueError(f"enqueue entry {i} must be a non-empty table of searched fields, got {entry!r}")
        for key, value in entry.items():
            if key not in search:
                raise ValueError(f"enqueue entry {i} sets {key!r}, which is not searched (searched: "
                                 f"{', '.join(sorted(search)) or 'nothing'}); fix a field with --set instead")
            if not in_spec(value, search[key]):
                raise ValueError(f"enqueue entry {i}: {key} = {value!r} lies outside its search range "
                                 f"{search[key]}")
        out.append(dict(entry))
    return tuple(out)
