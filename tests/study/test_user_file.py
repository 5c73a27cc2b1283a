"""A new user's own file: ``study run --data FILE`` works first try, and every refusal happens before anything
stored is touched."""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path

import optuna
import pytest
import torch
from optuna.trial import TrialState
from study.data.sources import load_dataset
from study.data.validate import validate_pairs

from study.cli import main
from study.config import build_config
from study.runtime.attrs import study_attr
from study.runtime.preflight import describe_variant
from study.runtime.request import load_config
from tests.messages import assert_not_says, assert_one_paragraph, assert_says


def write_pairs(tmp_path: Path, *, features: bool = False, name: str = "pairs.csv") -> Path:
    """24 queries x 6 products, labels 0-3: ``query,title,label`` (plus ``price`` with features)."""
    words = ["red", "blue", "green", "shoe", "boot", "sofa", "lamp", "table", "chair", "mug", "cup", "desk"]
    rows = ["query,title,label" + (",price" if features else "")]
    for q in range(24):
        for i in range(6):
            row = (f"{words[q % 12]} {words[(q * 5 + 3) % 12]} {q},{words[(q + i) % 12]} "
                   f"{words[(q + 2 * i) % 12]} {i}")
            rows.append(f"{row},{(6 - i) % 4}" + (f",{10 + i}" if features else ""))
    path = tmp_path / name
    path.write_text("\n".join(rows) + "\n")
    return path


def fast(tmp_path: Path, tiny_bert: Path) -> list[str]:
    """A study of one 1-epoch trial on the tiny BERT, in a private SQLite file."""
    return ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--n-trials", "1", "--device", "cpu",
            "--set", "train.epochs=1", "--set", f"model.encoder={str(tiny_bert)!r}", "--set",
            "model.max_length=24", "--set", f"study.runs_dir={str(tmp_path / 'runs')!r}"]


def test_a_three_column_file_runs_a_study_and_the_same_command_resumes_it(tmp_path, tiny_bert,
                                                                          capsys) -> None:
    path = write_pairs(tmp_path)
    command = ["run", "--data", str(path), "--name", "x", *fast(tmp_path, tiny_bert)]
    assert main(command) == 0
    err = capsys.readouterr().err
    assert_says(err, "model: text (auto: the data has no behaviour features)")
    assert_not_says(err, "Traceback")
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.load_study(study_name="x", storage=url)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE]
    stored = study_attr(study, "config")["data"]
    assert stored["path"] == str(path) and stored["source"] == "auto" and stored["val_fraction"] == 0.2
    assert study_attr(study, "data_summary")["queries"] == 24
    fingerprint = study_attr(study, "dataset_fingerprint")
    assert main(command) == 0  # the same command again resumes: the study is finished, nothing more runs
    again = optuna.load_study(study_name="x", storage=url)
    assert len(again.trials) == 1 and study_attr(again, "dataset_fingerprint") == fingerprint


def test_auto_variant_is_text_without_features_and_fusion_with_them(tmp_path, tiny_bert, capsys) -> None:
    config = build_config({}, overrides=[f"data.path={str(write_pairs(tmp_path))!r}"])
    assert config.model.variant == "auto"
    text_only = load_dataset(config.data)
    assert describe_variant(config, text_only) == "model: text (auto: the data has no behaviour features)"
    path = write_pairs(tmp_path, features=True, name="shop.csv")
    assert main(["run", "--data", str(path), *fast(tmp_path, tiny_bert),
                 "--set", "study.baselines=false"]) == 0
    assert_says(capsys.readouterr().err, "model: fusion (auto: the data has behaviour features: price)")
    # named after the file
    study = optuna.load_study(study_name="shop", storage=f"sqlite:///{tmp_path / 's.db'}")
    assert study.trials[0].state == TrialState.COMPLETE


@pytest.mark.parametrize("flags", [["--set", "model.variant=fusion"], ["--set", "model.variant=features"],
                                   ["--set", "search.model.variant={choices = ['text', 'fusion']}"]],
                         ids=["fusion", "features", "searched"])
def test_a_variant_the_data_cannot_feed_is_refused_before_new_deletes_anything(tmp_path, tiny_bert, capsys,
                                                                               flags) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="old", storage=url).set_user_attr("keep", "me")
    path = write_pairs(tmp_path)
    assert main(["run", "--data", str(path), "--name", "old", "--new", *fast(tmp_path, tiny_bert),
                 *flags]) == 2
    err = capsys.readouterr().err
    assert_says(err, "needs behaviour features", "model.variant")
    assert_not_says(err, "Traceback")
    assert optuna.load_study(study_name="old", storage=url).user_attrs == {"keep": "me"}


def test_a_data_path_means_the_file_and_synthetic_with_a_path_is_refused(tmp_path, capsys,
                                                                       monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # the default storage is ./studies.db: this folder's, not the caller's
    path = write_pairs(tmp_path)
    assert main(["run", "--set", f"data.path={str(path)!r}", "--print-config"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    # not the demo split
    assert printed["data"]["path"] == str(path) and printed["data"]["val_fraction"] == 0.2
    config = build_config(printed)
    assert load_dataset(config.data).name == "pairs" and load_dataset(config.data).n_queries == 24
    storage = ["--storage", f"sqlite:///{tmp_path / 's.db'}"]
    assert main(["run", "--set", f"data.path={str(path)!r}", "--set", "data.source=synthetic", *storage]) == 2
    err = capsys.readouterr().err
    assert_says(err, "data.path", "synthetic")
    assert_not_says(err, "Traceback")
    assert not (tmp_path / "s.db").exists()


def test_print_config_reads_back_with_config_as_the_same_config(tmp_path, capsys) -> None:
    path = write_pairs(tmp_path)
    storage = ["--storage", f"sqlite:///{tmp_path / 's.db'}"]
    assert main(["run", "--data", str(path), "--map", "title=title", "--set", "train.epochs=2", *storage,
                 "--print-config"]) == 0
    first = capsys.readouterr().out
    (tmp_path / "my.toml").write_text(first)
    assert main(["run", "--config", str(tmp_path / "my.toml"), "--print-config"]) == 0
    assert capsys.readouterr().out == first
    config = load_config(tmp_path / "my.toml")
    assert (config.study.name == "pairs" and config.data.columns == {"title": "title"}
            and config.train.epochs == 2)
    assert not (tmp_path / "s.db").exists()  # nothing ran, nothing was created


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_on_a_machine_without_it_is_one_paragraph_and_exit_2(tmp_path, capsys) -> None:
    path = write_pairs(tmp_path)
    assert main(["run", "--data", str(path), "--device", "cuda",
                 "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert_one_paragraph(err)
    assert_says(err, "CUDA", "--device cpu")
    assert_not_says(err, "Traceback")
    assert not (tmp_path / "s.db").exists()


def test_a_file_study_does_not_resume_a_builtin_catalogue_study(tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    optuna.create_study(study_name="demo", storage=url).set_user_attr("config", build_config({}).to_dict())
    assert main(["run", "--data", str(write_pairs(tmp_path)), "--name", "demo", "--storage", url]) == 2
    assert_says(capsys.readouterr().err, "built-in catalogue")


def test_data_check_ends_with_the_run_command_for_that_file(tmp_path, capsys) -> None:
    path = tmp_path / "my shop.csv"
    path.write_text(write_pairs(tmp_path).read_text().replace("query,title", "search_term,title", 1))
    assert main(["data", "check", str(path), "--map", "query=search_term", "--source", "file"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1].strip()
    assert last == f"study run --data {shlex.quote(str(path))} --source file --map query=search_term"
    argv = shlex.split(last)[1:]
    assert main([*argv, "--print-config"]) == 0  # the printed command is one study run accepts
    printed = tomllib.loads(capsys.readouterr().out)
    assert printed["data"]["columns"] == {"query": "search_term"} and printed["data"]["source"] == "file"
    assert printed["study"]["name"] == "my-shop"


def test_candidates_without_product_id_still_validate() -> None:
    import pandas as pd

    frame = pd.DataFrame({"query": ["a", "a"], "title": ["x", "y"]})
    assert validate_pairs(frame, source="mem", require_label=False).frame["product_id"].nunique() == 2


def test_set_data_path_is_the_same_request_as_data_even_beside_a_default_study(tmp_path, capsys,
                                                                              monkeypatch) -> None:
    """With a built-in 'default' study in ./studies.db, `--set data.path=FILE` is named after the file, as
    `--data FILE` is; it does not resume (or mix into) the built-in study."""
    monkeypatch.chdir(tmp_path)
    optuna.create_study(study_name="default", storage="sqlite:///studies.db").set_user_attr(
        "config", build_config({}).to_dict())
    path = write_pairs(tmp_path)
    for flags in (["--set", f"data.path={str(path)!r}"], ["--data", str(path)]):
        assert main(["run", *flags, "--print-config"]) == 0
        printed = tomllib.loads(capsys.readouterr().out)
        assert printed["study"]["name"] == "pairs" and printed["data"]["val_fraction"] == 0.2
