"""What a user asked for, resolved into the frozen ``Config`` once: ``study run``'s flags or the API's keyword
arguments become one dict of typed overrides (``--set`` strings parsed once, flag values taken as they are,
never written out as text and read back), merged into a config file, the stored config of the study being
resumed, or the built-in default for this machine's device and the data."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from study.config import Config, as_overrides, build_config, check_enqueue, profile_cuts, read_toml
from study.data.config import DataConfig, is_builtin_catalogue
from study.data.loaders import check_column_map
from study.data.sources import resolve_source
from study.errors import UserInputError, missing_path
from study.runtime.attrs import study_attr
from study.runtime.preflight import device_for
from study.runtime.studies import load_existing
from study.storage.database import StorageConfig, StorageUnavailableError

Cuts = list[tuple[str, Any, Any]]  # what a file profile sets below the defaults: (key, value, default)

# flag -> the config field it sets
FLAG_FIELDS = {"name": "study.name", "n_trials": "study.n_trials", "workers": "study.workers",
               "timeout": "study.timeout", "device": "study.device",
               "warm_start_from": "study.warm_start_from", "tracker": "study.tracker",
               "storage": "storage.url"}


@dataclass(frozen=True)
class RunRequest:
    """What a user asked for: ``study run``'s flags, or the API's keyword arguments."""

    config: str | None = None  # a TOML file
    data: str | None = None  # a data file or folder (data.path)
    source: str | None = None
    map: Sequence[str] = ()  # CANONICAL=COLUMN
    name: str | None = None
    n_trials: int | None = None
    workers: int | None = None
    timeout: float | None = None
    device: str | None = None
    storage: str | None = None
    overrides: Sequence[str] | Mapping[str, Any] = ()  # --set KEY=VALUE strings, or typed values by key
    new: bool = False
    enqueue: Sequence[str] = ()  # JSON objects of searched fields, run first
    warm_start_from: str | None = None
    tracker: str | None = None
    map_origin: str = "--map"  # how the caller gave ``map``, for a refusal: --map, or the API's columns=


def parse_column_maps(items: Sequence[str]) -> dict[str, str]:
    """``--map query=search_term`` (repeatable) -> {"query": "search_term"}."""
    columns = {}
    for item in items:
        canonical, sep, column = item.partition("=")
        if not sep or not canonical.strip() or not column.strip():
            raise UserInputError("--map expects CANONICAL=COLUMN (for example query=search_term), got "
                                 f"{item!r}.")
        columns[canonical.strip()] = column.strip()
    return columns


def request_overrides(request: RunRequest) -> dict[str, Any]:
    """Every typed override the request makes: ``--set`` first, then the flags (which win), then
    ``$STUDY_STORAGE`` where no ``--storage`` was given."""
    out = as_overrides(request.overrides)
    named = request.name or out.get("study.name")
    for flag, key in FLAG_FIELDS.items():
        value = getattr(request, flag)
        if value is not None and (value != "" or flag != "storage"):
            out[key] = value
    if request.data is not None:
        out["data.path"] = str(request.data)
    path = out.get("data.path") or None
    if path is not None and not named and request.config is None:  # a run on a file is named after it
        out["study.name"] = _name_of_data(str(path))
    if request.source:
        out["data.source"] = request.source
    columns = parse_column_maps(request.map or [])
    if columns:
        out["data.columns"] = columns
    env_storage = None if request.storage else os.environ.get("STUDY_STORAGE")
    if env_storage:  # --storage, then $STUDY_STORAGE, then the config file
        out["storage.url"] = env_storage
    return out


def _name_of_data(path: str) -> str:
    """``pairs.csv`` -> ``pairs``, ``train.csv.zip`` -> ``train``, a folder -> its name."""
    stem = Path(path).name.split(".")[0] or Path(path).resolve().name
    return re.sub(r"[^A-Za-z0-9_-]+", "-", stem) or "data"


def _may_hold_studies(url: str) -> bool:
    """False for a SQLite file that does not exist yet: no study to resume, and no file created just to
    look."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///").split("?")[0]
        return path in ("", ":memory:") or Path(path).exists()
    return True


def _refuse_other_data(path: str | None, stored: dict[str, Any], name: str) -> None:
    data = stored.get("data", {})
    if path is not None and is_builtin_catalogue(data.get("source"), data.get("path")):
        raise UserInputError(
            f"Study {name!r} runs on the built-in catalogue, so it cannot continue on {path}; nothing "
            "was changed. Give the run on your file its own name (--name NAME), or pass --new to replace "
            f"{name!r}."
        )


def _resolve(request: RunRequest) -> tuple[Config, Cuts]:
    device = device_for(request.device or "auto")
    profile = "cuda" if device.type == "cuda" else "cpu"
    overrides = request_overrides(request)
    if request.config is None and not request.new:
        url = overrides.get("storage.url") or StorageConfig().url
        path = overrides.get("data.path") or None
        name = str(overrides.get("study.name") or "default")
        try:
            study = load_existing(name, url) if _may_hold_studies(url) else None
        except StorageUnavailableError:
            raise
        except UserInputError:
            study = None
        if study is not None and study_attr(study, "config") is not None:
            _refuse_other_data(path, study_attr(study, "config"), name)
            # the stored config shows the URL without its password: connect with the one given here
            return build_config(study_attr(study, "config"), source=f"study {name!r}",
                                overrides={**overrides, "storage.url": url}, profile=profile), []
    raw = read_toml(Path(request.config)) if request.config else {}
    source = request.config or "built-in config"
    return (build_config(raw, source=source, overrides=overrides, profile=profile),
            profile_cuts(raw, overrides=overrides, profile=profile))


def resolve_config(request: RunRequest) -> tuple[Config, Cuts]:
    """--config given: that file. Else an existing study of this name resumes with its stored config. Else
    the built-in default for this machine's device and the data (demo or file profile). ``--enqueue``
    entries are added to the config's. Also returns what a file profile cuts below the defaults."""
    config, cuts = _resolve(request)
    columns = parse_column_maps(request.map or [])
    if columns and config.data.path and Path(config.data.path).exists():  # a missing path: see run_study
        check_data(config.data, columns=columns, origin=request.map_origin)
    if request.enqueue:
        extra = []
        for item in request.enqueue:
            try:
                extra.append(json.loads(item))
            except json.JSONDecodeError as exc:
                raise UserInputError("--enqueue expects a JSON object such as '{\"train.head_lr\": 0.01}', "
                                     f"got {item!r} ({exc.msg}).") from None
        try:
            config = dataclasses.replace(config, enqueue=config.enqueue + check_enqueue(extra, config.search))
        except (ValueError, TypeError) as exc:
            raise UserInputError(f"--enqueue: {exc}.") from None
    return config, cuts


def check_data(data: DataConfig, *, columns: Mapping[str, str] | None = None, origin: str = "--map") -> None:
    """What can be told about the data before anything is printed or created: a data path that does not
    exist (with the closest name in its folder), and ``columns`` (the caller's own mapping) naming columns
    that the file's header lacks (with the closest column)."""
    path = data.path
    if not path or data.builtin:
        return
    if not Path(path).exists():
        raise UserInputError(missing_path(path))
    if columns and Path(path).is_file() and resolve_source(data) == "file":
        check_column_map(path, dict(columns), origin=origin, format=data.format)


def load_config(path: str | Path | None = None, *, data: str | Path | None = None, name: str | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = (), columns: dict[str, str] | None = None,
                device: str | None = None, storage: str | None = None) -> Config:
    """The effective config, as ``study run`` would build it: a TOML file (``path``), a data file (``data``,
    with ``columns`` mapping canonical names to the file's: ``{"query": "search_term"}``), and
    ``overrides`` as ``--set`` strings (``["train.epochs=3"]``) or typed values (``{"train.epochs": 3}``);
    without ``path``, an existing study of that name resumes with its stored config."""
    request = RunRequest(config=str(path) if path is not None else None,
                         data=str(data) if data is not None else None, name=name, device=device,
                         storage=storage, map=tuple(f"{k}={v}" for k, v in (columns or {}).items()),
                         overrides=overrides, map_origin="columns=")
    return resolve_config(request)[0]
