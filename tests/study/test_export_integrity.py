"""An export records the SHA-256 of the files it is loaded from; a missing or changed file is refused by
name (``Ranker.load`` and ``study rank``, exit 2), older exports without the record still load when
complete, and an export to a place that cannot be written is one paragraph with exit 2."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from study.cli import main
from study.errors import UserInputError
from study.export.scoring import Ranker
from tests.messages import assert_not_says, assert_one_paragraph, assert_says, flatten

ONE_TRIAL = ["--n-trials", "1", "--set", "study.baselines=false", "--set", "train.epochs=1", "--quiet"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory, study_toml_in) -> dict:
    tmp = tmp_path_factory.mktemp("export-integrity")
    assert main(["run", "--config", str(study_toml_in(tmp)), *ONE_TRIAL]) == 0
    storage = f"sqlite:///{tmp / 'studies.db'}"
    assert main(["export", "--name", "t", "--storage", storage, "--out", str(tmp / "model")]) == 0
    return {"tmp": tmp, "storage": storage, "model": tmp / "model"}


@pytest.fixture
def copy(exported, tmp_path: Path) -> Path:
    """A fresh copy of the export to damage."""
    return Path(shutil.copytree(exported["model"], tmp_path / "model"))


def test_the_export_records_the_checksums_of_what_it_is_loaded_from(exported) -> None:
    model = exported["model"]
    files = json.loads((model / "ranker.json").read_text())["files"]
    needed = {"model.safetensors", "feature_scaler.json", "encoder/config.json", "encoder/tokenizer.json"}
    assert needed <= set(files)
    for name, digest in files.items():
        assert hashlib.sha256((model / name).read_bytes()).hexdigest() == digest, name
    assert "README.md" not in files and "metrics.json" not in files  # documentation: free to edit
    Ranker.load(model)


def test_a_missing_tokenizer_is_refused_by_name(copy, capsys) -> None:
    (copy / "encoder" / "tokenizer.json").unlink()
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "encoder/tokenizer.json is missing")
    code = main(["rank", "--model", str(copy), "--input", str(copy / "candidates.csv"),
                 "--output", str(copy / "ranked.csv")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ")
    assert_says(err, "encoder/tokenizer.json")
    assert_not_says(err, "Traceback")
    assert not (copy / "ranked.csv").exists()


def test_changed_weights_are_refused_by_name(copy) -> None:
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one weight: safetensors itself would load it
    weights.write_bytes(bytes(data))
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "model.safetensors has changed since the export", str(copy), "study export")


def test_a_half_copied_prior_encoder_is_refused(copy) -> None:
    if not (copy / "prior_encoder").is_dir():
        pytest.skip("this export has no prior encoder")
    weights = copy / "prior_encoder" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "prior_encoder/model.safetensors has changed")


def test_the_model_card_may_be_edited(copy) -> None:
    (copy / "README.md").write_text("# our shoe ranker\n")
    Ranker.load(copy)


def test_an_older_export_without_checksums_loads_when_complete(copy) -> None:
    spec = json.loads((copy / "ranker.json").read_text())
    del spec["files"]
    (copy / "ranker.json").write_text(json.dumps(spec))
    Ranker.load(copy)
    (copy / "encoder" / "tokenizer.json").unlink()
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "encoder/tokenizer.json or encoder/vocab.txt", "is missing")


def test_a_damaged_ranker_json_is_one_paragraph(copy) -> None:
    (copy / "ranker.json").write_text('{"format": "study-ranker", ')
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "ranker.json is damaged")


@pytest.mark.parametrize("place", ["under_a_file", "sysfs"])
def test_export_to_an_unwritable_place_is_one_paragraph(exported, capsys, place) -> None:
    """Real refusals that hold for root too: a folder below a regular file, and sysfs (no mkdir there)."""
    if place == "under_a_file":
        blocker = exported["tmp"] / "a-file.txt"
        blocker.write_text("not a folder")
        out = blocker / "models" / "shoes"
    else:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no sysfs here")
        out = Path("/sys/study-export-test/model")
    capsys.readouterr()
    assert main(["export", "--name", "t", "--storage", exported["storage"], "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert flatten(err).startswith(f"error: Cannot write the exported model to {out}: ")
    assert_says(err, "--out")
    assert_not_says(err, "Traceback")
    assert_one_paragraph(err)
    assert not out.exists()


def test_the_exported_weights_are_readable_like_the_rest_of_the_directory(exported) -> None:
    modes = {p.name: p.stat().st_mode & 0o777 for p in Path(exported["model"]).iterdir() if p.is_file()}
    assert modes["model.safetensors"] == modes["ranker.json"]
