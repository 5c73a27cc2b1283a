"""CLI errors are wrapped at 100 columns and most begin with a path, so where their lines break moves with the
folder a user (or a test) works in: what they say is the same from any folder, no path is ever split, and the
tests' phrase matching (tests/messages.py) holds wherever the breaks fall."""

from __future__ import annotations

from pathlib import Path

import pytest

from study.cli import main, wrap_error
from tests.messages import assert_not_says, assert_one_paragraph, assert_says

NO_LABEL = "query,title,stars\nshoe,Shoe,2\nshoe,Boot,0\nsofa,Sofa,1\nsofa,Boot,0\n"
PHRASES = ("required column(s) 'label' missing", "The file has columns 'query', 'title', 'stars'",
           "at least one product text column such as title",
           "map differently named columns with --map (e.g. --map query=search_term)", "with data.columns")


def _refusal(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, str]:
    """``study data check`` on a file without a label column in ``folder``: the file and the CLI's stderr."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pairs.csv"
    path.write_text(NO_LABEL)
    assert main(["data", "check", str(path)]) == 2
    return path, capsys.readouterr().err


def _check(path: Path, err: str) -> None:
    assert err.startswith("error: ")
    assert_says(err, f"{path}: required column(s)", *PHRASES)
    assert_not_says(err, "Traceback")
    assert_one_paragraph(err)
    assert any(str(path) in line for line in err.splitlines())  # the path whole, on one line
    assert all(len(line) <= 100 or str(path) in line for line in err.splitlines())


@pytest.mark.parametrize("depth", [0, 4], ids=["short", "long"])
def test_a_refusal_says_the_same_from_a_short_and_a_long_folder(tmp_path, capsys, depth) -> None:
    folder = tmp_path.joinpath(*["a_folder_that_moves_every_line_break"] * depth)
    assert depth == 0 or len(str(folder)) >= 150
    path, err = _refusal(folder, capsys)
    _check(path, err)


def test_phrases_match_wherever_the_lines_break(tmp_path, capsys) -> None:
    """Folder names of every length from 1 to 100 characters move each line break through each phrase: a
    plain substring test fails for some of them (the issue), the whitespace-normalised one for none."""
    split_somewhere = 0
    for length in range(1, 101):
        path, err = _refusal(tmp_path / ("d" * length), capsys)
        _check(path, err)
        split_somewhere += any(phrase not in err for phrase in PHRASES)  # unnormalised on purpose
    assert split_somewhere > 0  # the sweep did put line breaks inside the phrases


def test_a_path_with_spaces_is_never_split_across_lines(tmp_path, capsys) -> None:
    for length in range(1, 101, 9):
        folder = tmp_path / ("p" * length) / "My Drive" / "shop exports 2026"
        folder.mkdir(parents=True)
        missing = folder / "judged pairs.csv"
        assert main(["data", "check", str(missing)]) == 2
        err = capsys.readouterr().err
        assert_says(err, str(missing), "does not exist")
        assert any(str(missing) in line for line in err.splitlines()), err


def test_wrap_error_keeps_paths_whole_at_every_offset_and_words_within_100_columns() -> None:
    path = "/Users/ann/Google Drive/shop data/judged pairs.csv"
    for offset in range(101):
        message = f"{'word ' * (offset // 5)}{'x' * (offset % 5)} {path}: column 'label' is empty in row 3."
        wrapped = wrap_error(message + "\n1. first problem " + "and more " * 20 + "\n2. second problem")
        lines = wrapped.splitlines()
        assert lines[0].startswith("error: ") and any(path in line for line in lines), wrapped
        assert all(len(line) <= 100 for line in lines), wrapped
        assert all(line.startswith("   ") for line in lines[lines.index(next(
            line for line in lines if line.startswith("1. "))):] if line[:3] not in ("1. ", "2. "))
    assert wrap_error("epoch 1/2 and 3/4") == "error: epoch 1/2 and 3/4"  # an ordinary slash changes nothing
