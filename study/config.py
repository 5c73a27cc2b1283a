"""The study's TOML config: typed frozen sections, built-in defaults per device, ``--set`` overrides.

Sections: [study], [storage], [sampler], [pruner], [data], [model], [train], [search]. Unknown keys are
rejected with their name. The resolved config is stored with the study and with every trial.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from study.data.config import DataConfig, is_builtin_catalogue
from study.errors import UserInputError, did_you_mean
from study.models.config import RankerConfig, TrainConfig, check_metric
from study.profiles import DEFAULT_SEARCH, DEVICES, PROFILES
from study.runtime.trackers import TRACKERS
from study.samplers import PrunerConfig, SamplerConfig
from study.space import check_enqueue, check_space
from study.storage.database import StorageConfig

SECOND_OBJECTIVES = ("", "latency", "model_size")


@dataclass(frozen=True)
class StudyConfig:
    name: str = "default"
    n_trials: int = 24  # finished trials (complete + pruned) the study runs to, over all workers
    timeout: float = 0.0  # seconds this invocation may run before starting no new trial; 0 = none
    metric: str = "ndcg@10"  # validation metric to maximise
    second_objective: str = ""  # '', 'latency' (ms per 1,000 pairs) or 'model_size' (M parameters)
    seed: int = 0
    device: str = "auto"
    workers: int = 1
    runs_dir: str = "runs"  # checkpoints: runs/<study>/trial_<n>/
    keep_checkpoints: int = 3  # best trials whose checkpoints are kept
    baselines: bool = True  # evaluate behaviour-only and zero-shot encoder on the test split
    warm_start_from: str = ""  # another study (same storage) whose best finished configs are run first
    warm_start_trials: int = 5  # how many of them
    tracker: str = ""  # '', 'mlflow' or 'wandb': every finished trial logged there too (runtime/trackers)
    tracker_uri: str = ""  # MLflow tracking URI or W&B project; '' = the tracker's default

    @property
    def metric_names(self) -> list[str]:
        """The study's objectives as Optuna names them: the metric, then the second objective's value."""
        second = {"latency": ["latency_ms_per_1000_pairs"], "model_size": ["model_size_m"]}
        return [self.metric, *second.get(self.second_objective, [])]

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise ValueError("study.name must not be empty")
        if len(self.name) > 200:
            raise ValueError(f"study.name must be at most 200 characters, got {len(self.name)}")
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.tracker not in TRACKERS:
            raise ValueError(f"unknown tracker {self.tracker!r}; expected one of {TRACKERS}")
        if self.second_objective not in SECOND_OBJECTIVES:
            raise ValueError(f"unknown second_objective {self.second_objective!r}; expected one of "
                             f"{SECOND_OBJECTIVES}")


SECTIONS: dict[str, type] = {
    "study": StudyConfig,
    "storage": StorageConfig,
    "sampler": SamplerConfig,
    "pruner": PrunerConfig,
    "data": DataConfig,
    "model": RankerConfig,
    "train": TrainConfig,
}


@dataclass(frozen=True)
class Config:
    study: StudyConfig = field(default_factory=StudyConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    pruner: PrunerConfig = field(default_factory=PrunerConfig)
    data: DataConfig = field(default_factory=DataConfig)
    model: RankerConfig = field(default_factory=RankerConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    search: dict[str, dict[str, Any]] = field(default_factory=dict)
    # known-good settings run first, before the sampler's own ([[enqueue]] tables, --enqueue JSON)
    enqueue: tuple[dict[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # the metric Optuna maximises is the one that picks each trial's best epoch and stops it early
        check_metric(self.study.metric, self.train.ndcg_k)
        if self.train.metric not in ("", self.study.metric):
            raise ValueError("train.metric follows study.metric; set study.metric instead (got "
                             f"train.metric = {self.train.metric!r}, study.metric = {self.study.metric!r})")
        if self.train.metric != self.study.metric:
            object.__setattr__(self, "train", dataclasses.replace(self.train, metric=self.study.metric))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        out["search"] = copy.deepcopy(self.search)
        out["enqueue"] = [dict(e) for e in self.enqueue]
        return json.loads(json.dumps(out, default=list))

    def space_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.search, sort_keys=True).encode()).hexdigest()[:16]

    def training_hash(self) -> str:
        """What must not change when a study resumes: everything that shapes a trial's result."""
        d = self.to_dict()
        keep = {k: d[k] for k in ("data", "model", "train", "search")}
        keep["train"].pop("metric", None)  # a copy of study.metric (below): studies made before it resume
        keep["metric"] = self.study.metric
        keep["second_objective"] = self.study.second_objective
        return hashlib.sha256(json.dumps(keep, sort_keys=True).encode()).hexdigest()[:16]

    def with_params(self, params: dict[str, Any]) -> Config:
        """A copy with dotted ``section.field`` values set (trial params map straight back this way)."""
        updates: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            section, _, name = key.partition(".")
            updates.setdefault(section, {})[name] = value
        return dataclasses.replace(
            self, **{s: dataclasses.replace(getattr(self, s), **u) for s, u in updates.items()}
        )


def valid_fields() -> set[str]:
    return {f"{s}.{f.name}" for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}


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
    sections: dict[str, Any] = {}
    try:
        for name, cls in SECTIONS.items():
            values = dict(merged.get(name, {}))
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
                sections[name] = DataConfig.from_dict(values)
                continue
            for f in dataclasses.fields(cls):
                if f.name in values and isinstance(values[f.name], list):
                    values[f.name] = tuple(values[f.name])
            sections[name] = cls(**values)
        search = merged.get("search", {})
        check_space(search, valid_fields=valid_fields())
        return Config(**sections, search=search, enqueue=check_enqueue(merged.get("enqueue", []), search))
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"{source}: {exc}.") from None


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


def config_from_dict(d: dict[str, Any]) -> Config:
    """Rebuild a resolved config (as stored with a study) without re-applying profile defaults."""
    search = d.get("search", {})
    enqueue = tuple(dict(e) for e in d.get("enqueue", []))
    sections = {}
    for name, cls in SECTIONS.items():
        values = dict(d.get(name, {}))
        if name == "data":
            if values.get("source") == "synthetic":  # stored before a path with 'synthetic' was refused
                values["path"] = None
            sections[name] = DataConfig.from_dict(values)
            continue
        for f in dataclasses.fields(cls):
            if f.name in values and isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        sections[name] = cls(**values)
    return Config(**sections, search=search, enqueue=enqueue)

