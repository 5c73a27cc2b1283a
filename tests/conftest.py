"""Shared fixtures: a tiny randomly initialised BERT with the real MiniLM tokenizer, a private cache, and the
tiny study configs and study processes the study tests share (as fixtures: test modules import nothing from
each other)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    os.environ["STUDY_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from study.models.encoder import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"), hidden_size=32, n_layers=2, n_heads=2,
                           intermediate_size=64, seed=0)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository root: the PYTHONPATH of a ``python -m study`` subprocess."""
    return ROOT


def _write_study_toml(folder: Path, tiny_bert: Path, *, tail: str = "") -> Path:
    """``folder/study.toml``: study "t", 3 trials, median pruning, 24 queries, two searched parameters;
    ``tail`` adds lines to [search]."""
    text = f"""
[study]
name = "t"
n_trials = 3
runs_dir = "{folder / 'runs'}"
device = "cpu"
[storage]
url = "sqlite:///{folder / 'studies.db'}"
[sampler]
name = "random"
[pruner]
name = "median"
n_startup_trials = 1
n_warmup_steps = 0
[data]
n_queries = 24
items_per_query = 6
[model]
encoder = "{tiny_bert}"
max_length = 32
[train]
epochs = 2
batch_size = 16
[search]
"train.head_lr" = {{ low = 1e-3, high = 1e-2, log = true }}
"train.loss" = {{ choices = ["listnet", "ranknet"] }}
{tail}
"""
    path = folder / "study.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="session")
def study_toml_in(tiny_bert: Path) -> Callable[..., Path]:
    """``make(folder, tail="") -> Path``: the ``study_toml`` config written into ``folder`` (its database and
    runs/ there too), for module-scoped fixtures that have no ``tmp_path``."""

    def make(folder: Path, *, tail: str = "") -> Path:
        return _write_study_toml(folder, tiny_bert, tail=tail)

    return make


@pytest.fixture
def study_toml(tmp_path: Path, tiny_bert: Path) -> Callable[..., Path]:
    """``make(tail="") -> Path``: ``tmp_path/study.toml`` for study "t" (3 trials, random sampler, median
    pruner, 2 epochs) with its SQLite file and runs/ in ``tmp_path``; ``tail`` adds lines to [search]."""

    def make(*, tail: str = "") -> Path:
        return _write_study_toml(tmp_path, tiny_bert, tail=tail)

    return make


@pytest.fixture
def write_study_config(tmp_path: Path, tiny_bert: Path) -> Callable[..., Path]:
    """``make(name="t", n_trials=2, epochs=2, n_queries=24, url=None, storage="", study="", pruner="none",
    search=None, filename=None) -> Path``: a tiny study without baselines or early stopping, written to
    ``tmp_path/<filename or name.toml>``; ``storage`` and ``study`` add lines to those sections, ``search``
    replaces the two searched parameters."""

    def make(*, name: str = "t", n_trials: int = 2, epochs: int = 2, n_queries: int = 24,
             url: str | None = None, storage: str = "", study: str = "", pruner: str = "none",
             search: str | None = None, filename: str | None = None) -> Path:
        url = url or f"sqlite:///{tmp_path / 'studies.db'}"
        search = search if search is not None else (
            '"train.head_lr" = { low = 1e-3, high = 1e-2, log = true }\n'
            '"train.loss" = { choices = ["listnet", "ranknet"] }\n'
        )
        text = f"""
[study]
name = "{name}"
n_trials = {n_trials}
runs_dir = "{tmp_path / 'runs'}"
device = "cpu"
baselines = false
{study}
[storage]
url = "{url}"
{storage}
[sampler]
name = "random"
[pruner]
name = "{pruner}"
[data]
n_queries = {n_queries}
items_per_query = 6
[model]
encoder = "{tiny_bert}"
max_length = 32
[train]
epochs = {epochs}
batch_size = 16
patience = 0
[search]
{search}
"""
        path = tmp_path / (filename or f"{name}.toml")
        path.write_text(text)
        return path

    return make


@pytest.fixture
def start_study(tmp_path: Path) -> Callable[[list[str], str], tuple[subprocess.Popen, Path, Path]]:
    """``start(args, tag) -> (process, stdout file, stderr file)``: ``python -m study *args`` in the
    background, its output in ``tmp_path/<tag>.out`` and ``.err``."""

    def start(args: list[str], tag: str) -> tuple[subprocess.Popen, Path, Path]:
        out, err = tmp_path / f"{tag}.out", tmp_path / f"{tag}.err"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        # SIGINT back to its default in the child: a shell without job control (CI running the suite as a
        # background job) starts it ignored, and Python then never turns it into KeyboardInterrupt
        proc = subprocess.Popen([sys.executable, "-m", "study", *args], cwd=ROOT, env=env,
                                stdout=out.open("w"), stderr=err.open("w"),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
        return proc, out, err

    return start


FIXED_GENERATION = "feedbeef" * 4


@pytest.fixture
def fixed_generation(monkeypatch: pytest.MonkeyPatch) -> str:
    """Studies created in this test get the token ``FIXED_GENERATION``, so their trial folders are known
    before they exist: ``runs/<study>/feedbeef/trial_<n>``. Returns ``"feedbeef"``."""
    import study.runtime.studies

    monkeypatch.setattr(study.runtime.studies, "new_generation", lambda: FIXED_GENERATION)
    return FIXED_GENERATION[:8]


@pytest.fixture(scope="session")
def trials_of() -> Callable[..., list]:
    """``trials_of(config_path, name="t")``: the stored trials of the study that config file names."""

    def load(config_path: Path, name: str = "t") -> list:
        import optuna

        from study.runtime.request import load_config
        from study.storage.database import build_storage

        config = load_config(config_path)
        return optuna.load_study(study_name=name, storage=build_storage(config.storage)).get_trials()

    return load
