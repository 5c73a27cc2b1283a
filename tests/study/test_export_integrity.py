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
    assert {"README.md", "metrics.json", "study_config.json"} <= set(files)  # listed, free to edit
    written = {p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()}
    assert set(files) == written - {"ranker.json"}  # every file
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


def _edit_spec(model: Path, edit) -> None:
    spec = json.loads((model / "ranker.json").read_text())
    edit(spec)
    (model / "ranker.json").write_text(json.dumps(spec))


@pytest.mark.parametrize("removed", ["files", "fields"])
def test_a_ranker_json_without_its_lists_is_refused(copy, capsys, removed) -> None:
    """Issue 19, item 8: without the file list, random weights were accepted (248 of 300 ranks changed)."""
    _edit_spec(copy, lambda spec: spec.pop(removed))
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, f"{copy / 'ranker.json'} has no list of the export's files and fields",
                "not loading it", "study export")


def test_an_edited_field_is_refused_by_name(copy, capsys) -> None:
    """Issue 19, item 8: an edited text_fields was accepted silently (259 of 300 ranks changed)."""
    _edit_spec(copy, lambda spec: spec.update(text_fields=spec["text_fields"][::-1], extra=1))
    capsys.readouterr()
    code = main(["rank", "--model", str(copy), "--input", str(copy / "candidates.csv"),
                 "--output", str(copy / "ranked.csv")])
    err = capsys.readouterr().err
    assert code == 2
    assert_says(err, "ranker.json was edited since the export", "field 'text_fields' has changed",
                "field 'extra' was added")
    assert_not_says(err, "Traceback")
    assert_one_paragraph(err)


@pytest.mark.parametrize("content", ["[1, 2]", '{"format": "study-ranker", "version": "two"}',
                                     ('{"format": "study-ranker", "version": 3, "files": {"../x": "0"}, '
                                      '"fields": {"a": "0"}}')])
def test_broken_ranker_json_fields_are_one_paragraph(copy, content) -> None:
    (copy / "ranker.json").write_text(content)
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, str(copy / "ranker.json"))


def test_consistent_but_unbuildable_fields_are_one_paragraph(copy) -> None:
    """Fields edited together with their checksums still give one paragraph, not a KeyError."""
    from study.export.manifest import field_manifest

    def edit(spec: dict) -> None:
        spec["model"] = {"variant": "nonsense"}
        del spec["n_features"]
        spec["fields"] = field_manifest(spec)
    _edit_spec(copy, edit)
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "does not describe a model this tool can build")


def test_a_pickle_without_a_manifest_is_one_paragraph_and_never_unpickled(copy, tmp_path) -> None:
    marker = tmp_path / "unpickled"

    class Boom:
        def __reduce__(self):
            return (Path.touch, (marker,))
    import pickle
    (copy / "model.safetensors").write_bytes(pickle.dumps(Boom()))
    _edit_spec(copy, lambda spec: spec.pop("files"))
    with pytest.raises(UserInputError) as info:
        Ranker.load(copy)
    assert_says(info.value, "has no list of the export's files")
    assert not marker.exists()


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


def _export(exported, out: Path, *extra: str) -> int:
    return main(["export", "--name", "t", "--storage", exported["storage"], "--out", str(out), *extra])


def test_force_replaces_only_the_previous_exports_own_files(exported, copy, capsys) -> None:
    """Issue 19, item 8: `export --force` onto a folder with a ranker.json deleted the user's other files."""
    (copy / "notes.txt").write_text("mine")
    (copy / "encoder" / "my-vocab-notes.txt").write_text("mine too")
    (copy / "stale.bin").write_text("old export file")
    _edit_spec(copy, lambda spec: spec["files"].update({"stale.bin": "0"}))  # as if an older export wrote it
    assert _export(exported, copy) == 2  # without --force: refused
    assert _export(exported, copy, "--force") == 0
    assert (copy / "notes.txt").read_text() == "mine"
    assert (copy / "encoder" / "my-vocab-notes.txt").read_text() == "mine too"
    assert not (copy / "stale.bin").exists()  # the previous export's own file, named in its manifest
    Ranker.load(copy)


def test_force_without_a_manifest_replaces_nothing(exported, copy, capsys) -> None:
    (copy / "notes.txt").write_text("mine")
    _edit_spec(copy, lambda spec: spec.pop("files"))
    before = sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*"))
    capsys.readouterr()
    assert _export(exported, copy, "--force") == 2
    err = capsys.readouterr().err
    assert_says(err, "lists no files of its own", "not replacing anything")
    assert_one_paragraph(err)
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*")) == before


@pytest.mark.parametrize("force", [False, True])
def test_export_onto_a_symlink_is_refused_and_nothing_behind_it_is_touched(exported, copy, tmp_path, capsys,
                                                                          force) -> None:
    """Issue 19, item 8: an export onto a symlink to a folder gave a traceback (rmtree on a symlink)."""
    (copy / "notes.txt").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(copy, target_is_directory=True)
    before = {p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    capsys.readouterr()
    assert _export(exported, link, *(["--force"] if force else [])) == 2
    err = capsys.readouterr().err
    assert_says(err, f"{link} is a symbolic link", "never writes through one")
    assert_not_says(err, "Traceback")
    assert_one_paragraph(err)
    assert link.is_symlink()
    assert {p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_force_never_removes_through_a_linked_folder(exported, copy, tmp_path) -> None:
    """The previous export's encoder/ replaced by a link to the user's folder: its files stay."""
    elsewhere = Path(shutil.copytree(copy / "encoder", tmp_path / "precious"))
    shutil.rmtree(copy / "encoder")
    (copy / "encoder").symlink_to(elsewhere, target_is_directory=True)
    assert _export(exported, copy, "--force") == 2
    assert sorted(p.name for p in elsewhere.iterdir()) == sorted(
        p.name for p in (exported["model"] / "encoder").iterdir())
