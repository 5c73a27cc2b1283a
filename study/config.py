"""The study's TOML config: built-in defaults per device, the user's file, ``--set`` overrides, merged once
into the frozen ``Config`` (``build_config``); what a file profile cuts (``profile_cuts``).

Sections: [study], [storage], [sampler], [pruner], [data], [model], [train], [search]. Unknown keys are
rejected with their name. The resolved config is stored with the study and with every trial. The sections and
the ``Config`` itself live in ``study.config_sections`` and are re-exported here.
"""

from __future__ import annotations

import copy
import dataclasses
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from study.config_sections import (
    SECOND_OBJECTIVES,
    SECTIONS,
    Config,
    StudyConfig,
    config_from_dict,
    valid_fields,
)
from study.data.config import DataConfig, is_builtin_catalogue
from study.errors import UserInputError, did_you_mean
from study.profiles import DEFAULT_SEARCH, DEVICES, PROFILES
from study.space import check_enqueue, check_space

__all__ = [
    "SECOND_OBJECTIVES", "SECTIONS", "Config", "Overrides", "StudyConfig", "as_overrides", "build_config",
    "check_enqueue", "config_from_dict", "parse_override", "profile_cuts", "profile_key", "read_toml",
    "valid_fields",
]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if key != "search" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif key == "search":
            out["search"] = {**out.get("search", {}), **copy.deepcopy(value)}
            out["search"] = {k: v for k, v in out["search"].items() if v is not None}  # None: not searched
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> tuple[str, Any]:
    """``train.epochs=3`` -> ("train.epochs", 3); values are TOML (strings may go unquoted)."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or "." not in key:
        raise UserInputError(f"--set expects section.field=value (for example train.epochs=3), got {item!r}.")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return key, value


Overrides = Mapping[str, Any]  # {"train.epochs": 3, "study.name": "shoes"}: typed values by dotted key


def as_overrides(overrides: Overrides | Sequence[str] = ()) -> dict[str, Any]:
    """Typed overrides as a dict: a mapping is taken as it is, ``--set`` strings (``train.epochs=3``) are
    parsed once here; a later value for the same key wins."""
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        key, value = parse_override(item)
        out.pop(key, None)  # keeps the order in which they were given
        out[key] = value
    return out


def _user_values(raw: dict[str, Any], overrides: Overrides) -> dict[str, Any]:
    """The ``section.field`` values the user set in the TOML and with ``--set`` (the search space aside)."""
    out = {f"{section}.{name}": value for section, values in raw.items()
           if section != "search" and isinstance(values, dict) for name, value in values.items()}
    out.update({k: v for k, v in overrides.items() if not k.startswith("search.")})
    return out


def profile_key(raw: dict[str, Any], *, overrides: Overrides | Sequence[str] = (),
                profile: str = "cpu") -> str:
    """The PROFILES key: ``profile`` as given when it is one, else the device (``cpu``/``cuda``) plus ``demo``
    for the built-in catalogue or ``file`` for anything read from a path."""
    if profile in PROFILES:
        return profile
    if profile not in DEVICES:
        raise ValueError(f"unknown profile {profile!r}; expected one of {DEVICES} or {sorted(PROFILES)}")
    user = _user_values(raw, as_overrides(overrides))
    builtin = is_builtin_catalogue(user.get("data.source"), user.get("data.path"))
    return f"{profile}-{'demo' if builtin else 'file'}"


def profile_cuts(
    raw: dict[str, Any], *, overrides: Overrides | Sequence[str] = (), profile: str = "cpu"
) -> list[tuple[str, Any, Any]]:
    """What a file profile sets away from the defaults that the user did not set, as (key, value, default):
    ``("train.epochs", 3, 4)``. Empty for the demo profiles, which are described in the README."""
    overrides = as_overrides(overrides)
    key = profile_key(raw, overrides=overrides, profile=profile)
    if not key.endswith("-file"):
        return []
    user = _user_values(raw, overrides)
    cuts = []
    for section in ("data", "model", "train"):
        defaults = {f.name: f.default for f in dataclasses.fields(SECTIONS[section])}
        for name, value in PROFILES[key].get(section, {}).items():
            if f"{section}.{name}" not in user and value != defaults.get(name):
                cuts.append((f"{section}.{name}", value, defaults.get(name)))
    return cuts


def build_config(
    raw: dict[str, Any], *, source: str = "config", overrides: Overrides | Sequence[str] = (),
    profile: str = "cpu",
) -> Config:
    """Defaults for the profile, then the user's TOML, then the overrides (typed values by dotted key, or
    ``--set`` strings), merged once into the frozen config. ``profile`` is the device (``cpu`` or ``cuda``;
    demo or file profile from the data the config names) or a PROFILES key."""
    overrides = as_overrides(overrides)
    try:
        name = profile_key(raw, overrides=overrides, profile=profile)
    except ValueError as exc:
        raise UserInputError(f"{source}: {exc}.") from None
    merged = _merge({"search": DEFAULT_SEARCH}, PROFILES[name])
    merged = _merge(merged, {k: v for k, v in raw.items() if k != "search"})
    if "search" in raw:  # the user's own space replaces the built-in one
        merged["search"] = copy.deepcopy(raw["search"])
    else:  # fields the user fixed in the file are no longer searched
        for section, values in raw.items():
            if isinstance(values, dict):
                for name in values:
                    merged["search"].pop(f"{section}.{name}", None)
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        if section == "search":
            merged.setdefault("search", {})[name] = value
        else:
            merged.setdefault(section, {})[name] = value
            merged.get("search", {}).pop(key, None)  # a fixed field is no longer searched
    unknown = set(merged) - set(SECTIONS) - {"search", "enqueue"}
    if unknown:
        valid = [*SECTIONS, "search", "enqueue"]
        hints = "".join(did_you_mean(section, valid) for section in sorted(unknown))
        raise UserInputError(f"{source}: unknown section(s) {sorted(unknown)}.{hints} Valid sections: "
                             f"{sorted(valid)}.")
    try:
        sections = {name: _section(name, cls, dict(merged.get(name, {})), source)
                    for name, cls in SECTIONS.items()}
        search = merged.get("search", {})
        check_space(search, valid_fields=valid_fields())
        return Config(**sections, search=search, enqueue=check_enqueue(merged.get("enqueue", []), search))
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"{source}: {exc}.") from None


def _section(name: str, cls: type, values: dict[str, Any], source: str) -> Any:
    """One section from its merged values: unknown keys refused with a did-you-mean, types checked."""
    allowed = {f.name for f in dataclasses.fields(cls)}
    bad = set(values) - allowed
    if bad:
        hints = "".join(did_you_mean(f"{name}.{key}", [f"{name}.{a}" for a in allowed]
                                     + [f"{s}.{f.name}" for s, c in SECTIONS.items() if s != name
                                        for f in dataclasses.fields(c)]) for key in sorted(bad))
        raise UserInputError(f"{source}: unknown key(s) {sorted(bad)} in [{name}].{hints} Valid "
                             f"keys: {', '.join(sorted(allowed))}.")
    _check_types(cls, values, name)
    if name == "data":
        return DataConfig.from_dict(values)
    for f in dataclasses.fields(cls):
        if f.name in values and isinstance(values[f.name], list):
            values[f.name] = tuple(values[f.name])
    return cls(**values)


_TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}


def _check_types(cls: type, values: dict[str, Any], section: str) -> None:
    """Each value has its field's type (read from the default): ``n_trials = "ten"`` and ``n_trials = 2.5``
    are refused naming the field and the type, instead of failing later or being truncated."""
    for f in dataclasses.fields(cls):
        if f.name not in values or f.default is dataclasses.MISSING:
            continue
        want, value = type(f.default), values[f.name]
        if want not in _TYPE_NAMES:
            continue
        ok = (isinstance(value, bool) if want is bool
              else isinstance(value, want) and not isinstance(value, bool) if want in (int, str)
              else isinstance(value, (int, float)) and not isinstance(value, bool))
        if want is int and isinstance(value, float) and value.is_integer() and not isinstance(value, bool):
            values[f.name] = int(value)  # 10.0 is ten
            continue
        if not ok:
            raise TypeError(f"{section}.{f.name} must be {_TYPE_NAMES[want]}, got {value!r}")


def read_toml(path: Path) -> dict[str, Any]:
    """A config file's tables as written (before defaults); a missing or malformed file is a user error."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserInputError(f"The config file {path} does not exist.") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserInputError(f"The config file {path} is not valid TOML: {exc}.") from None
