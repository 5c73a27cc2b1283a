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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data.config import DataConfig
from data.errors import UserInputError
from models.ranker import RankerConfig
from models.train import TrainConfig
from study.samplers import PrunerConfig, SamplerConfig
from study.space import check_space
from study.storage import StorageConfig

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

    def __post_init__(self) -> None:
        if self.n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, got {self.n_trials=}")
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers=}")
        if self.second_objective not in SECOND_OBJECTIVES:
            raise ValueError(f"unknown second_objective {self.second_objective!r}; expected one of {SECOND_OBJECTIVES}")


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

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}
        out["search"] = copy.deepcopy(self.search)
        return json.loads(json.dumps(out, default=list))

    def space_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.search, sort_keys=True).encode()).hexdigest()[:16]

    def training_hash(self) -> str:
        """What must not change when a study resumes: everything that shapes a trial's result."""
        d = self.to_dict()
        keep = {k: d[k] for k in ("data", "model", "train", "search")}
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


# The built-in default. On a CPU it keeps the first 2 MiniLM layers and a small catalogue so that the whole
# study fits in about 10 minutes on 2 cores; on CUDA it uses the full encoder and a larger budget.
DEFAULT_SEARCH: dict[str, dict[str, Any]] = {
    "train.encoder_lr": {"low": 3e-5, "high": 1e-3, "log": True},
    "train.head_lr": {"low": 1e-3, "high": 3e-2, "log": True},
    "train.loss": {"choices": ["listnet", "lambdaloss", "ranknet", "bce"]},
    "train.weight_decay": {"low": 1e-4, "high": 0.1, "log": True},
    "model.dropout": {"low": 0.0, "high": 0.3},
}
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "cpu": {
        "study": {"n_trials": 20},
        "pruner": {"n_startup_trials": 4, "n_warmup_steps": 0},
        "data": {"n_queries": 200, "items_per_query": 10, "val_fraction": 0.25, "test_fraction": 0.35},
        "model": {"n_layers": 1, "max_length": 40},
        "train": {"epochs": 3, "batch_size": 16, "patience": 0},
    },
    "cuda": {
        "study": {"n_trials": 60},
        "data": {"n_queries": 2000, "items_per_query": 12},
        "model": {"n_layers": 0, "max_length": 64},
        "train": {"epochs": 5, "batch_size": 64, "patience": 2},
        "search": {"model.n_layers": {"choices": [3, 6]}, "model.pooling": {"choices": ["pair", "cls", "mean"]},
                   "train.layerwise_lr_decay": {"low": 0.7, "high": 1.0}},
    },
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if key != "search" and isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif key == "search":
            out["search"] = {**out.get("search", {}), **copy.deepcopy(value)}
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


def build_config(
    raw: dict[str, Any], *, source: str = "config", overrides: list[str] = (), profile: str = "cpu"
) -> Config:
    """Defaults for the device profile, then the user's TOML, then ``--set`` overrides."""
    merged = _merge({"search": DEFAULT_SEARCH}, PROFILES[profile])
    merged = _merge(merged, {k: v for k, v in raw.items() if k != "search"})
    if "search" in raw:  # the user's own space replaces the built-in one
        merged["search"] = copy.deepcopy(raw["search"])
    else:  # fields the user fixed in the file are no longer searched
        for section, values in raw.items():
            if isinstance(values, dict):
                for name in values:
                    merged["search"].pop(f"{section}.{name}", None)
    for item in overrides:
        key, value = parse_override(item)
        section, _, name = key.partition(".")
        if section == "search":
            merged.setdefault("search", {})[name] = value
        else:
            merged.setdefault(section, {})[name] = value
            merged.get("search", {}).pop(key, None)  # a fixed field is no longer searched
    unknown = set(merged) - set(SECTIONS) - {"search"}
    if unknown:
        raise UserInputError(f"{source}: unknown section(s) {sorted(unknown)}; valid sections: "
                             f"{sorted([*SECTIONS, 'search'])}.")
    sections: dict[str, Any] = {}
    try:
        for name, cls in SECTIONS.items():
            values = dict(merged.get(name, {}))
            allowed = {f.name for f in dataclasses.fields(cls)}
            bad = set(values) - allowed
            if bad:
                raise UserInputError(f"{source}: unknown key(s) {sorted(bad)} in [{name}]; valid keys: "
                                     f"{', '.join(sorted(allowed))}.")
            if name == "data":
                sections[name] = DataConfig.from_dict(values)
                continue
            for f in dataclasses.fields(cls):
                if f.name in values and isinstance(values[f.name], list):
                    values[f.name] = tuple(values[f.name])
            sections[name] = cls(**values)
        search = merged.get("search", {})
        check_space(search, valid_fields=valid_fields())
    except (ValueError, TypeError) as exc:
        raise UserInputError(f"{source}: {exc}.") from None
    return Config(**sections, search=search)


def load_config(path: Path | None, *, overrides: list[str] = (), profile: str = "cpu") -> Config:
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise UserInputError(f"The config file {path} does not exist.") from None
        except tomllib.TOMLDecodeError as exc:
            raise UserInputError(f"The config file {path} is not valid TOML: {exc}.") from None
    return build_config(raw, source=str(path) if path else "built-in config", overrides=overrides, profile=profile)


def config_from_dict(d: dict[str, Any]) -> Config:
    """Rebuild a resolved config (as stored with a study) without re-applying profile defaults."""
    search = d.get("search", {})
    sections = {}
    for name, cls in SECTIONS.items():
        values = dict(d.get(name, {}))
        if name == "data":
            sections[name] = DataConfig.from_dict(values)
            continue
        for f in dataclasses.fields(cls):
            if f.name in values and isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        sections[name] = cls(**values)
    return Config(**sections, search=search)
