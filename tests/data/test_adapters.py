"""Public dataset adapters on tiny files in their real formats, and on the real Home Depot file."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from study.data.adapters import load_adapter, load_esci, load_homedepot, load_wands
from study.data.validate import query_ids_from_text

from study.errors import UserInputError
from tests.messages import assert_says

HOMEDEPOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "homedepot" / "train.csv.zip"


def _esci(tmp_path: Path) -> tuple[Path, Path]:
    examples = pd.DataFrame({
        "example_id": range(8),
        "query": ["red shoe", "red shoe", "red shoe", "sofa", "sofa", "lamp", "zapato", "sofa"],
        "query_id": [1, 1, 1, 2, 2, 3, 4, 2],
        "product_id": ["B1", "B2", "B3", "B4", "B1", "B5", "B1", "B6"],
        "product_locale": ["us", "us", "us", "us", "us", "us", "es", "us"],
        "esci_label": ["E", "S", "I", "C", "I", "E", "E", "E"],
        "small_version": [1, 1, 1, 1, 1, 1, 1, 0],
        "large_version": [1] * 8,
        "split": ["train"] * 8,
    })
    products = pd.DataFrame({
        "product_id": ["B1", "B2", "B3", "B4", "B5", "B6", "B1"],
        "product_title": ["Red Shoe", "Blue Shoe", "Kettle", "Sofa cover", "Desk lamp", "Big sofa",
                          "Zapato rojo"],
        "product_description": ["<p>A <b>red</b> shoe</p>", None, "", "Fits most sofas", "", "", ""],
        "product_bullet_point": ["Rubber sole\nLace-up", "", "", "", "", "", ""],
        "product_brand": ["Acme", "Acme", "Kettly", None, "Lumo", "Comfy", "Acme"],
        "product_color": ["Red", "Blue", "", "", "", "Grey", "Rojo"],
        "product_locale": ["us", "us", "us", "us", "us", "us", "es"],
    })
    examples_path = tmp_path / "shopping_queries_dataset_examples.parquet"
    products_path = tmp_path / "shopping_queries_dataset_products.parquet"
    examples.to_parquet(examples_path, index=False)
    products.to_parquet(products_path, index=False)
    return examples_path, products_path


def test_esci_maps_labels_joins_products_and_filters(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    examples_path, products_path = _esci(tmp_path)
    with caplog.at_level(logging.INFO, logger="study.data.validate"):
        pairs = load_esci(examples_path, products_path)
    frame = pairs.frame
    assert pairs.name == "esci"
    # Spanish locale and small_version == 0 rows are gone; 'lamp' had one judged product and is dropped.
    assert sorted(frame["query"].unique()) == ["red shoe", "sofa"]
    assert_says(caplog.text, "dropped 1 queries")
    assert frame["label"].tolist() == [3.0, 2.0, 0.0, 1.0, 0.0]
    assert frame["query_id"].tolist() == ["1", "1", "1", "2", "2"]
    assert pairs.text_fields == ("title", "brand", "colour", "description", "bullet_points")
    first = frame.iloc[0]
    assert (first["title"], first["brand"], first["colour"]) == ("Red Shoe", "Acme", "Red")  # the US product
    assert first["description"] == "A red shoe"  # HTML stripped
    assert first["bullet_points"] == "Rubber sole Lace-up"
    assert frame.iloc[3]["brand"] == ""  # missing text is empty, not 'nan'
    assert pairs.feature_fields == ()
    # The products file is found beside the examples, and a folder works too.
    assert len(load_esci(examples_path, None)) == len(pairs) == len(load_esci(tmp_path, None))
    assert load_esci(examples_path, products_path, small_version=False).n_queries == 2


def test_esci_errors(tmp_path: Path) -> None:
    examples_path, products_path = _esci(tmp_path)
    with pytest.raises(UserInputError) as info:
        load_esci(examples_path, products_path, locale="jp")
    assert_says(info.value, "locale 'jp'", "'es', 'us'")
    with pytest.raises(UserInputError) as info:
        load_esci(tmp_path / "missing.parquet", products_path)
    assert_says(info.value, "does not exist")
    pd.DataFrame({"query": ["x"]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(UserInputError) as info:
        load_esci(tmp_path / "bad.parquet", products_path)
    assert_says(info.value, "bad.parquet: missing column(s) 'query_id'")


def _wands(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    product = pd.DataFrame({
        "product_id": [0, 1, 2, 3],
        "product_name": ["solid wood platform bed", "velvet sofa", "oak coffee table", "table lamp"],
        "product_class": ["Beds", "Sofas", "Coffee & Cocktail Tables", "Table Lamps"],
        "category hierarchy": ["Furniture / Bedroom / Beds", "Furniture / Living Room / Sofas",
                               "Furniture / Living Room / Tables", "Lighting / Lamps"],
        "product_description": ["a sturdy bed", "soft and deep", None, "warm light"],
        "product_features": ["material:wood|size:queen", "colour:green", "", "bulb:e27"],
        "rating_count": [10, None, 3, 0],
        "average_rating": [4.5, None, 4.0, None],
        "review_count": [8, None, 2, 0],
    })
    query = pd.DataFrame({"query_id": [0, 1, 2], "query": ["king bed", "green couch", "lamp"],
                          "query_class": ["Beds", "Sofas", "Table Lamps"]})
    label = pd.DataFrame({"id": range(6), "query_id": [0, 0, 1, 1, 1, 2], "product_id": [0, 1, 1, 2, 0, 3],
                          "label": ["Exact", "Irrelevant", "Exact", "Partial", "Irrelevant", "Exact"]})
    for name, frame in (("product", product), ("query", query), ("label", label)):
        frame.to_csv(directory / f"{name}.csv", sep="\t", index=False)
    return directory


def test_wands_reads_the_three_tab_separated_files(tmp_path: Path) -> None:
    directory = _wands(tmp_path / "WANDS" / "dataset")
    pairs = load_wands(tmp_path / "WANDS")  # the repository root works: dataset/ is searched
    frame = pairs.frame
    assert pairs.name == "wands"
    assert frame["query"].tolist() == ["king bed", "king bed", "green couch", "green couch", "green couch"]
    assert frame["label"].tolist() == [2.0, 0.0, 2.0, 1.0, 0.0]  # single-item query 'lamp' dropped
    assert pairs.text_fields == ("title", "product_class", "category", "description", "attributes")
    assert pairs.feature_fields == ("rating", "review_count", "rating_count")
    assert frame.loc[0, "category"] == "Furniture / Bedroom / Beds"
    assert pd.isna(frame.loc[1, "rating"]) and frame.loc[0, "rating"] == 4.5
    assert len(load_wands(directory)) == 5


def test_wands_errors(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as info:
        load_wands(tmp_path / "nothing")
    assert_says(info.value, "not a folder")
    directory = _wands(tmp_path / "w")
    (directory / "label.csv").unlink()
    with pytest.raises(UserInputError) as info:
        load_wands(directory)
    assert_says(info.value, "label.csv")
    directory = _wands(tmp_path / "w2")
    pd.DataFrame({"id": [0], "query_id": [0], "product_id": [0], "label": ["Great"]}).to_csv(
        directory / "label.csv", sep="\t", index=False)
    with pytest.raises(UserInputError) as info:
        load_wands(directory)
    assert_says(info.value, "'Great'")


def _homedepot(directory: Path, *, zipped: bool = False, descriptions: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = ("id,product_uid,product_title,search_term,relevance\n"
            "2,100001,Simpson Strong-Tie 12-Gauge Angle,angle bracket,3\n"
            "3,100001,Simpson Strong-Tie 12-Gauge Angle,l bracket,2.5\n"
            "9,100002,Behr Premium Textured DeckOver,angle bracket,1\n"
            "16,100005,Delta Vero Shower Faucet Trim Kit in Champagne Bronze caf\xe9,l bracket,2.33\n"
            "17,100006,Whirlpool Microwave,microwave,2.67\n")
    if zipped:
        path = directory / "train.csv.zip"
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("train.csv", text.encode("latin-1"))
    else:
        path = directory / "train.csv"
        path.write_bytes(text.encode("latin-1"))
    if descriptions:
        (directory / "product_descriptions.csv").write_bytes(
            "product_uid,product_description\n100001,Not only do angles make joints stronger\n"
            "100002,Deck resurfacer\n".encode("latin-1"))
    return path


@pytest.mark.parametrize("zipped", [False, True])
def test_homedepot_small_file(tmp_path: Path, zipped: bool, caplog: pytest.LogCaptureFixture) -> None:
    path = _homedepot(tmp_path, zipped=zipped)
    with caplog.at_level(logging.INFO, logger="study.data.validate"):
        pairs = load_homedepot(path)
    frame = pairs.frame
    assert pairs.name == "homedepot" and pairs.text_fields == ("title", "description")
    assert frame["query"].tolist() == ["angle bracket", "l bracket", "angle bracket", "l bracket"]
    assert frame["label"].tolist() == [2.0, 1.5, 0.0, 1.33]  # relevance - 1
    assert_says(caplog.text, "dropped 1 queries")  # 'microwave' had a single judged product
    assert frame["title"].iloc[3].endswith("café")  # latin-1 decoded
    assert frame["description"].tolist()[:3] == ["Not only do angles make joints stronger",
                                                 "Not only do angles make joints stronger", "Deck resurfacer"]
    assert frame["description"].iloc[3] == ""
    ids = frame.groupby("query")["query_id"].first()
    assert ids["angle bracket"] == query_ids_from_text(pd.Series(["angle bracket"]))[0]
    assert frame["query_id"].nunique() == 2
    assert len(load_homedepot(tmp_path)) == 4  # the folder works too


def test_homedepot_without_descriptions(tmp_path: Path) -> None:
    pairs = load_homedepot(_homedepot(tmp_path, descriptions=False))
    assert pairs.text_fields == ("title",)


def test_unknown_adapter_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UserInputError) as info:
        load_adapter("amazon", path=tmp_path)
    assert_says(info.value, "'amazon'", "esci, wands, homedepot")
    assert len(load_adapter("homedepot", path=_homedepot(tmp_path))) == 4


@pytest.mark.skipif(not HOMEDEPOT.is_file(), reason="real Home Depot file not present (development only)")
def test_real_homedepot_file(caplog: pytest.LogCaptureFixture) -> None:
    raw = pd.read_csv(HOMEDEPOT, encoding="latin-1")
    assert len(raw) == 74_067 and raw["search_term"].nunique() == 11_795
    with caplog.at_level(logging.INFO, logger="study.data.validate"):
        pairs = load_homedepot(HOMEDEPOT)
    assert_says(caplog.text, "dropped 1399 queries with a single judged product")
    assert len(pairs) == 74_067 - 1_399 and pairs.n_queries == 11_795 - 1_399
    assert pairs.frame["label"].between(0.0, 2.0).all()
    assert pairs.frame.groupby("query_id").size().min() >= 2
    assert pairs.text_fields == ("title",) and pairs.feature_fields == ()
