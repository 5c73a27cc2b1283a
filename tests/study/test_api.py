"""The Python API, used as a notebook would: config, run, trials, test results, export, rank; and the one
installed namespace, checked from a folder that holds a user's own ``models/`` and ``data/`` packages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import optuna
import pandas as pd
import pytest

import study
from tests.messages import assert_says


def test_a_notebook_flow_without_global_side_effects(tmp_path, tiny_bert, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)
    import sklearn  # noqa: F401 - scikit-learn sets KMP_* variables on import: its doing, not ours
    before = (dict(os.environ), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.stdout,
              sys.stderr)
    pairs = tmp_path / "pairs.csv"
    rows = ["query,title,label"] + [f"q{q} item,product {q} {i} item,{(i + q) % 4}" for q in range(24)
                                    for i in range(5)]
    pairs.write_text("\n".join(rows) + "\n")
    cfg = study.load_config(data=pairs, overrides=[f"model.encoder={str(tiny_bert)!r}", "train.epochs=1",
                                                   "study.device=\"cpu\"", "model.max_length=16"])
    assert cfg.study.name == "pairs" and cfg.data.path == str(pairs)
    result = study.run(cfg, n_trials=2, quiet=True)
    after = (dict(os.environ), signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT), sys.stdout,
             sys.stderr)
    changed = {k for k in set(before[0]) | set(after[0]) if before[0].get(k) != after[0].get(k)}
    assert changed == set()  # no environment variable set by the library
    assert after[1:] == before[1:]  # no signal handler or stream swapped

    assert isinstance(result, optuna.Study) and result.study_name == "pairs"
    trials = study.trials_dataframe("pairs")
    assert list(trials.index) == [0, 1] and set(trials["state"]) <= {"complete", "pruned"}
    assert {"duration_s", "epochs_run", "reason", "train.head_lr"} <= set(trials.columns)
    results = study.test_results("pairs")
    assert results.index[0].startswith("tuned") and "zero-shot encoder" in results.index
    assert results.loc["zero-shot encoder", "tuned_minus"] is not None

    out = study.export_model("pairs", out=tmp_path / "model")
    ranked = study.rank(out, pd.DataFrame({"query": ["q1 item"] * 3, "title": ["a", "product 1 item", "b"]}))
    assert list(ranked.columns[-2:]) == ["score", "rank"] and sorted(ranked["rank"]) == [1, 2, 3]
    assert ranked["score"].is_monotonic_decreasing


def test_import_study_is_light_and_the_namespace_is_ours(tmp_path) -> None:
    """A notebook in a project with its own models/ and data/ packages gets ours under study.*, theirs
    under their own names; importing study loads no torch."""
    for name in ("models", "data"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"WHO = 'user {name}'\n")
    code = ("import sys, study, models, data\n"
            "assert 'torch' not in sys.modules, 'import study loaded torch'\n"
            "import study.models.ranker, study.data.validate\n"
            "print(models.WHO, data.WHO, study.models.ranker.__name__, study.data.validate.__name__)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["user", "models", "user", "data", "study.models.ranker",
                                   "study.data.validate"]


def test_quiet_is_silent_apart_from_errors_on_both_streams(tmp_path, tiny_bert, capfd, monkeypatch) -> None:
    import warnings

    from transformers.utils import logging as hf_logging

    monkeypatch.chdir(tmp_path)
    optuna.logging.set_verbosity(optuna.logging.INFO)  # as a fresh notebook has them
    hf_logging.enable_progress_bar()
    pairs = tmp_path / "pairs.csv"
    rows = ["query,title,label"] + [f"q{q} item,product {q} {i} item,{(i + q) % 4}" for q in range(24)
                                    for i in range(5)]
    pairs.write_text("\n".join([*rows, rows[1]]) + "\n")  # a repeated judgment: a data warning
    cfg = study.load_config(data=pairs, overrides=[f"model.encoder={str(tiny_bert)!r}", "train.epochs=1",
                                                   "study.device=\"cpu\"", "model.max_length=16"])
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        study.run(cfg, n_trials=2, quiet=True)
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
    assert [str(w.message) for w in caught] == []  # no ExperimentalWarning, nor any other
    assert optuna.logging.get_verbosity() == optuna.logging.INFO and hf_logging.is_progress_bar_enabled()


@pytest.mark.parametrize(("kwargs", "error", "phrase"), [
    ({"n_trials": 2.5}, TypeError, "n_trials must be a whole number of trials, got n_trials=2.5"),
    ({"n_trials": True}, TypeError, "got n_trials=True"),
    ({"n_trials": 0}, ValueError, "n_trials must be at least 1, got n_trials=0"),
    ({"name": 3}, TypeError, "name must be a str or None, got name=3"),
    ({"storage": ["sqlite:///x.db"]}, TypeError, "storage must be a str or None"),
    ({"config": {"study": {}}}, TypeError, "config must be a Config or None"),
    ({"quiet": "yes"}, TypeError, "quiet must be True or False, got quiet='yes'"),
])
def test_the_api_refuses_wrong_arguments_by_name_before_anything_is_created(tmp_path, monkeypatch, kwargs,
                                                                           error, phrase) -> None:
    """Issue 19, item 10: the API accepted n_trials=2.5 (which the CLI refuses) and gave raw TypeError or
    AttributeError for wrong types."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error) as info:
        study.run(**kwargs)
    assert_says(info.value, phrase)
    assert list(tmp_path.iterdir()) == []
