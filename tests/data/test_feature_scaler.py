"""FeatureScaler: fit on train only, impute + flag + standardise, cold-start columns, export roundtrip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from study.data.features import FeatureScaler
from study.data.splits import split_by_query
from study.data.synthetic import generate_catalogue

from tests.messages import assert_says

TRAIN = pd.DataFrame({
    "price": [10.0, 20.0, np.nan, 1000.0],
    "rating": [4.0, 5.0, 3.0, np.nan],
    "constant": [7.0, 7.0, 7.0, 7.0],
})


def test_fitted_stats_are_the_training_stats() -> None:
    scaler = FeatureScaler(log1p=("price",)).fit(TRAIN, ["price", "rating", "constant"])
    logged = np.log1p([10.0, 20.0, 1000.0])
    assert scaler.feature_fields_ == ("price", "rating", "constant")
    assert scaler.log1p_fields_ == ("price",)
    np.testing.assert_allclose(scaler.medians_, [np.median(logged), 4.0, 7.0])
    np.testing.assert_allclose(scaler.means_, [logged.mean(), 4.0, 7.0])
    np.testing.assert_allclose(scaler.stds_, [logged.std(), np.std([4.0, 5.0, 3.0]), 1.0])  # std 0 -> 1
    np.testing.assert_allclose(scaler.missing_fraction_, [0.25, 0.25, 0.0])
    assert scaler.n_outputs_ == 6


def test_transform_imputes_flags_and_standardises() -> None:
    scaler = FeatureScaler(log1p=False).fit(TRAIN, ["price", "rating"])
    out = scaler.transform(TRAIN)
    assert out.dtype == np.float32 and out.shape == (4, 4)
    np.testing.assert_array_equal(out[:, 2:], [[0, 0], [0, 0], [1, 0], [0, 1]])
    # A missing value becomes the (standardised) training median.
    expected_price = (20.0 - np.mean([10.0, 20.0, 1000.0])) / np.std([10.0, 20.0, 1000.0])
    assert out[2, 0] == pytest.approx(expected_price, rel=1e-6)
    assert out[3, 1] == pytest.approx(0.0, abs=1e-6)  # median == mean for rating
    observed = out[[0, 1, 3], 0]
    assert observed.mean() == pytest.approx(0.0, abs=1e-6) and observed.std() == pytest.approx(1.0, rel=1e-5)


def test_default_log1p_picks_counts_and_prices_not_ratings() -> None:
    pairs = generate_catalogue(n_queries=60, seed=0)
    scaler = FeatureScaler().fit(pairs.frame, pairs.feature_fields)
    assert set(scaler.log1p_fields_) == {"price", "review_count", "impressions", "clicks", "add_to_cart",
                                         "purchases"}
    assert FeatureScaler(log1p=False).fit(pairs.frame, pairs.feature_fields).log1p_fields_ == ()
    skewed = pd.DataFrame({"dwell": np.random.default_rng(0).lognormal(0.0, 1.5, 500)})
    assert FeatureScaler().fit(skewed, ["dwell"]).log1p_fields_ == ("dwell",)
    negative = pd.DataFrame({"price": [-1.0, 2.0, 3.0]})
    assert FeatureScaler().fit(negative, ["price"]).log1p_fields_ == ()


def test_no_leakage_fit_on_train_only() -> None:
    pairs = generate_catalogue(n_queries=60, seed=1)
    splits = split_by_query(pairs, val_fraction=0.2, test_fraction=0.2, seed=0)
    scaler = FeatureScaler().fit(splits.train.frame, pairs.feature_fields)
    train_only = FeatureScaler().fit(splits.train.frame.copy(), pairs.feature_fields)
    everything = FeatureScaler().fit(pairs.frame, pairs.feature_fields)
    state = json.dumps(scaler.to_dict())
    val = scaler.transform(splits.val.frame)
    scaler.transform(splits.test.frame)
    assert json.dumps(scaler.to_dict()) == state  # transforming other splits changes nothing fitted
    assert scaler.to_dict() == train_only.to_dict()
    assert not np.allclose(scaler.means_, everything.means_)  # and the split's statistics differ from all
    # The validation rows are scaled with training statistics, so they are not exactly centred.
    assert abs(float(val[:, 0].mean())) > 1e-4


def test_absent_columns_are_cold_start() -> None:
    scaler = FeatureScaler(log1p=False).fit(TRAIN, ["price", "rating"])
    candidates = pd.DataFrame({"rating": [4.0, np.nan]})
    out = scaler.transform(candidates)
    np.testing.assert_array_equal(out[:, 2], [1.0, 1.0])  # price missing everywhere
    np.testing.assert_allclose(out[:, 0], (scaler.medians_[0] - scaler.means_[0]) / scaler.stds_[0])
    np.testing.assert_array_equal(out[:, 3], [0.0, 1.0])


def test_zero_features() -> None:
    scaler = FeatureScaler().fit(TRAIN, [])
    assert scaler.n_outputs_ == 0
    assert scaler.transform(TRAIN).shape == (4, 0)
    assert FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict()))).transform(TRAIN).shape == (4, 0)


def test_roundtrip_through_json() -> None:
    pairs = generate_catalogue(n_queries=40, seed=2)
    scaler = FeatureScaler().fit(pairs.frame, pairs.feature_fields)
    restored = FeatureScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    np.testing.assert_array_equal(restored.transform(pairs.frame), scaler.transform(pairs.frame))
    assert restored.n_outputs_ == scaler.n_outputs_ and restored.log1p_fields_ == scaler.log1p_fields_


def test_all_missing_training_column_is_json_safe() -> None:
    frame = pd.DataFrame({"clicks": [np.nan, np.nan]})
    scaler = FeatureScaler().fit(frame, ["clicks"])
    text = json.dumps(scaler.to_dict(), allow_nan=False)
    restored = FeatureScaler.from_dict(json.loads(text))
    np.testing.assert_array_equal(restored.transform(frame), [[0, 1], [0, 1]])


def test_errors_name_the_problem() -> None:
    with pytest.raises(RuntimeError) as info:
        FeatureScaler().transform(TRAIN)
    assert_says(info.value, "not fitted")
    with pytest.raises(ValueError, match="'views'"):
        FeatureScaler().fit(TRAIN, ["views"])
    with pytest.raises(ValueError, match="'clicks'"):
        FeatureScaler(log1p=["clicks"]).fit(TRAIN, ["price"])
    with pytest.raises(TypeError, match="log1p"):
        FeatureScaler(log1p="price")
    scaler = FeatureScaler().fit(TRAIN, ["price"])
    with pytest.raises(ValueError, match="'price'"):
        scaler.transform(pd.DataFrame({"price": ["cheap"]}))
    with pytest.raises(ValueError, match="medians"):
        FeatureScaler.from_dict({**scaler.to_dict(), "medians": [1.0, 2.0]})
