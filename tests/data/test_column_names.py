"""A file's own column names: case and spelling variants and the common names of the required columns are
read as the canonical columns, said once; the user's map wins, and two candidates are never guessed
between."""

from __future__ import annotations

import pytest
from study.data.column_names import recognise_columns
from study.data.loaders import load_file

from study.cli import main
from tests.messages import assert_says

ROWS = [("red shoe", "Red running shoe", 3), ("red shoe", "Blue boot", 0), ("grey sofa", "Grey sofa", 3),
        ("grey sofa", "Sofa cover", 1), ("led bulb", "LED bulb", 2), ("led bulb", "Lamp shade", 0)]


def test_case_spelling_and_common_names_are_recognised() -> None:
    found, notes = recognise_columns(["Query", "Product Title", "Review-Count", "Relevance", "id"], {})
    assert found == {"query": "Query", "label": "Relevance", "title": "Product Title",
                     "review_count": "Review-Count"}
    assert_says(notes[0], "'Query' as query", "'Relevance' as label", "--map <name>=<column>")


def test_the_users_map_and_the_canonical_names_win_and_ambiguity_is_not_guessed() -> None:
    # the file has 'label' itself: 'relevance' stays an ordinary column; the map names the query column
    found, _ = recognise_columns(["search_term", "keyword", "label", "relevance", "title"],
                                 {"query": "keyword"})
    assert found == {}
    # two candidates for the query: neither is chosen (the missing-column refusal asks for --map)
    found, _ = recognise_columns(["search_term", "keyword", "title", "grade"], {})
    assert found == {"label": "grade"} and "query" not in found
    # 'rating' is a product's rating (a behaviour feature), never the label
    assert recognise_columns(["query", "title", "Rating"], {})[0] == {"rating": "Rating"}
    assert recognise_columns(["Label", "label"], {})[0] == {}  # 'label' is there: 'Label' is not taken


def test_a_spreadsheet_export_loads_without_a_map(tmp_path, capsys) -> None:
    path = tmp_path / "export.csv"
    path.write_text("Search Term;Product_Title;Relevance\n" + "".join(f"{q};{t};{g}\n" for q, t, g in ROWS))
    notes: list[str] = []
    frame = load_file(path, notes=notes)
    assert frame[["query", "title", "label"]].values.tolist() == [[q, t, g] for q, t, g in ROWS]
    assert_says(" ".join(notes), "'Search Term' as query", "'Product_Title' as title",
                "'Relevance' as label")
    assert main(["data", "check", str(path)]) in (0, 1)  # warnings about its size are fine; no refusal
    said = capsys.readouterr()
    assert_says(said.out + said.err, "columns read by their names")


@pytest.mark.parametrize("header", ["query,Title,Score", "q,title,label"])
def test_names_that_are_not_recognised_still_get_the_missing_column_refusal(tmp_path, capsys, header) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text(header + "\n" + "".join(f"{q},{t},{g}\n" for q, t, g in ROWS))
    assert main(["data", "check", str(path)]) == 2
    assert_says(capsys.readouterr().err, "missing", "--map")
