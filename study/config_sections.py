"""What a study's config is: its typed frozen sections ([study] here; [storage], [sampler], [pruner], [data],
[model], [train] next to the code they configure) and the ``Config`` that holds them with the search space and
the enqueued settings; its hashes (what must not change on resume), and rebuilding one as stored with a study.
Reading a TOML file and merging defaults and overrides into one is ``study.config``."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from study.data.config import DataConfig
from study.models.config import LEGACY_MODEL_VALUES, RankerConfig, TrainConfig, check_metric
from study.runtime.trackers import TRACKERS
from study.samplers import PrunerConfig, SamplerConfig
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
    runs_dir: str = "runs"  # checkpoints: runs/<study>/<generation>/trial_<n>/
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
        if name == "model":  # stored before a setting that changed what a model computes
            values = {**LEGACY_MODEL_VALUES, **values}
        for f in dataclasses.fields(cls):
            if f.name in values and isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        sections[name] = cls(**values)
    return Config(**sections, search=search, enqueue=enqueue)

