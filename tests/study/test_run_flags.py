"""Every ``study run`` flag reaches the config as a typed value, with no text round-trip on the way: a name
with any character and an infinite timeout come out as they went in, also through ``--print-config`` and
``--config``."""

from __future__ import annotations

import math

import pytest

from study.cli import main
from study.runtime.request import RunRequest, request_overrides, resolve_config


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # ./studies.db of the caller's folder is never looked at
    monkeypatch.delenv("STUDY_STORAGE", raising=False)
    return tmp_path


def _config(**flags):
    return resolve_config(RunRequest(**flags))[0]


@pytest.mark.parametrize(("flags", "field", "value"), [
    ({"name": "shoes-v3"}, "study.name", "shoes-v3"),
    ({"name": "😀run"}, "study.name", "😀run"),
    ({"name": 'a "quoted" \\ name'}, "study.name", 'a "quoted" \\ name'),
    ({"n_trials": 7}, "study.n_trials", 7),
    ({"workers": 3}, "study.workers", 3),
    ({"timeout": math.inf}, "study.timeout", math.inf),
    ({"timeout": 90.5}, "study.timeout", 90.5),
    ({"device": "cpu"}, "study.device", "cpu"),
    ({"warm_start_from": "shoes-v2"}, "study.warm_start_from", "shoes-v2"),
    ({"tracker": "mlflow"}, "study.tracker", "mlflow"),
    ({"storage": "sqlite:///other.db"}, "storage.url", "sqlite:///other.db"),
    ({"data": "pairs.csv"}, "data.path", "pairs.csv"),
    ({"data": "pairs.csv"}, "study.name", "pairs"),  # named after the file
    ({"data": "pairs.csv", "source": "file"}, "data.source", "file"),
    ({"map": ("query=search_term", "label=relevance")}, "data.columns",
     {"query": "search_term", "label": "relevance"}),
    ({"overrides": ("train.epochs=2", "study.name=\"x y\"")}, "train.epochs", 2),
    ({"overrides": {"train.epochs": 2, "study.seed": 5}}, "study.seed", 5),
])
def test_each_flag_reaches_the_config_typed(cwd, flags, field, value) -> None:
    section, name = field.split(".")
    got = getattr(getattr(_config(**flags), section), name)
    assert got == value and type(got) is type(value)


def test_flags_win_over_set_and_set_is_parsed_once(cwd, monkeypatch) -> None:
    import study.config as config_module

    calls = []
    parse = config_module.parse_override
    monkeypatch.setattr(config_module, "parse_override", lambda item: calls.append(item) or parse(item))
    request = RunRequest(name="flag", overrides=("study.name=set", "train.epochs=2"))
    config = _config(**{f: getattr(request, f) for f in ("name", "overrides")})
    assert config.study.name == "flag" and config.train.epochs == 2
    assert calls == ["study.name=set", "train.epochs=2"]  # once each, for the whole run


def test_storage_env_and_the_typed_overrides(cwd, monkeypatch) -> None:
    monkeypatch.setenv("STUDY_STORAGE", "sqlite:///env.db")
    assert request_overrides(RunRequest())["storage.url"] == "sqlite:///env.db"
    assert request_overrides(RunRequest(storage="sqlite:///flag.db"))["storage.url"] == "sqlite:///flag.db"
    assert request_overrides(RunRequest(n_trials=4, timeout=math.inf)) == {
        "study.n_trials": 4, "study.timeout": math.inf, "storage.url": "sqlite:///env.db"}


def test_enqueue_reaches_the_config(cwd) -> None:
    config = _config(enqueue=('{"train.head_lr": 0.01}',))
    assert config.enqueue[-1] == {"train.head_lr": 0.01}


def test_new_skips_the_stored_study(cwd) -> None:
    assert _config(new=True, name="fresh").study.name == "fresh"


@pytest.mark.parametrize("name", ["😀run", "tab\there", "ümlaut-ß"])
def test_name_and_infinite_timeout_round_trip_through_print_config(cwd, capsys, name) -> None:
    assert main(["run", "--name", name, "--timeout", "inf", "--n-trials", "5", "--workers", "2",
                 "--print-config", "-q"]) == 0
    printed = capsys.readouterr().out
    (cwd / "printed.toml").write_text(printed, encoding="utf-8")
    again = _config(config=str(cwd / "printed.toml"))
    assert again.study.name == name and again.study.timeout == math.inf
    assert again.study.n_trials == 5 and again.study.workers == 2
