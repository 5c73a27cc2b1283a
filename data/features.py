"""Behaviour-feature transforms, fit on the training split only (scikit-learn style).

Per feature: optional ``log1p`` (non-negative heavy-tailed counts and prices), median imputation,
standardisation with the training mean / std of the transformed values, and a 0/1 missing flag.
Output columns: the F standardised values, then the F missing flags -> ``(n, 2F)`` float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# Counts and prices: log1p whenever they are non-negative in training, whatever their skew.
HEAVY_TAILED = ("price", "review_count", "rating_count", "impressions", "clicks", "add_to_cart", "purchases",
                "days_since_listed")
_SKEW_THRESHOLD = 1.0


def _column(frame: pd.DataFrame, field: str) -> np.ndarray:
    """A feature as float64, all-NaN when the column is absent (cold start at ranking time)."""
    if field not in frame.columns:
        return np.full(len(frame), np.nan)
    try:
        numbers = pd.to_numeric(frame[field], errors="raise")
        values = np.array(numbers.to_numpy(dtype=np.float64, na_value=np.nan))  # a writable copy
    except (TypeError, ValueError):
        raise ValueError(f"feature column {field!r} holds non-numeric values") from None
    values[~np.isfinite(values)] = np.nan
    return values


def _skewness(values: np.ndarray) -> float:
    std = values.std()
    return float(((values - values.mean()) ** 3).mean() / std**3) if len(values) > 2 and std > 0 else 0.0


class FeatureScaler:
    """log1p -> median impute -> standardise, plus a missing flag per feature.

    ``log1p=True`` picks the non-negative heavy-tailed columns (known counts/prices, or skewness > 1);
    ``False`` none; a sequence names them. Fitted attributes end in ``_``.
    """

    def __init__(self, *, log1p: bool | Sequence[str] = True) -> None:
        if isinstance(log1p, str):
            raise TypeError(f"log1p must be a bool or a sequence of column names, got {log1p=}")
        self.log1p = log1p if isinstance(log1p, bool) else tuple(log1p)

    def fit(self, frame: pd.DataFrame, feature_fields: Sequence[str]) -> FeatureScaler:
        """Fit on the training split's frame; later ``transform`` calls never change the fitted stats."""
        fields = tuple(feature_fields)
        missing = [f for f in fields if f not in frame.columns]
        if missing:
            raise ValueError(f"feature fields {missing} are not columns of the training frame")
        if not isinstance(self.log1p, bool):
            unknown = [f for f in self.log1p if f not in fields]
            if unknown:
                raise ValueError(f"log1p names {unknown}, not among the feature fields {list(fields)}")
        log_fields, medians, means, stds, missing_fraction = [], [], [], [], []
        for field in fields:
            values = _column(frame, field)
            observed = values[~np.isnan(values)]
            nonnegative = len(observed) > 0 and observed.min() >= 0
            if self.log1p is True:
                use_log = nonnegative and (field in HEAVY_TAILED or _skewness(observed) > _SKEW_THRESHOLD)
            else:
                use_log = self.log1p is not False and field in self.log1p
            if use_log:
                log_fields.append(field)
                observed = np.log1p(np.clip(observed, 0.0, None))
            medians.append(float(np.median(observed)) if len(observed) else 0.0)
            means.append(float(observed.mean()) if len(observed) else 0.0)
            std = float(observed.std()) if len(observed) else 0.0
            stds.append(std if std > 1e-12 else 1.0)
            missing_fraction.append(1.0 - len(observed) / max(1, len(values)))
        self.feature_fields_ = fields
        self.log1p_fields_ = tuple(log_fields)
        self.medians_ = np.array(medians, dtype=np.float64)
        self.means_ = np.array(means, dtype=np.float64)
        self.stds_ = np.array(stds, dtype=np.float64)
        self.missing_fraction_ = np.array(missing_fraction, dtype=np.float64)
        self.n_outputs_ = 2 * len(fields)
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "feature_fields_"):
            raise RuntimeError("FeatureScaler is not fitted yet; call fit() on the training split first")

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n, 2F)`` float32: standardised values, then 0/1 missing flags; absent columns are missing."""
        self._check_fitted()
        n, n_fields = len(frame), len(self.feature_fields_)
        out = np.zeros((n, 2 * n_fields), dtype=np.float32)
        for j, field in enumerate(self.feature_fields_):
            values = _column(frame, field)
            if field in self.log1p_fields_:
                values = np.log1p(np.clip(values, 0.0, None))  # negatives never seen in training -> 0
            missing = np.isnan(values)
            values = np.where(missing, self.medians_[j], values)
            out[:, j] = (values - self.means_[j]) / self.stds_[j]
            out[:, n_fields + j] = missing
        return out

    def fit_transform(self, frame: pd.DataFrame, feature_fields: Sequence[str]) -> np.ndarray:
        return self.fit(frame, feature_fields).transform(frame)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe fitted state for export next to the model weights."""
        self._check_fitted()
        return {
            "log1p": self.log1p if isinstance(self.log1p, bool) else list(self.log1p),
            "feature_fields": list(self.feature_fields_),
            "log1p_fields": list(self.log1p_fields_),
            "medians": self.medians_.tolist(),
            "means": self.means_.tolist(),
            "stds": self.stds_.tolist(),
            "missing_fraction": self.missing_fraction_.tolist(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureScaler:
        expected = {"log1p", "feature_fields", "log1p_fields", "medians", "means", "stds"}
        missing = expected - set(d)
        if missing:
            raise ValueError(f"FeatureScaler state lacks keys {sorted(missing)}")
        log1p = d["log1p"]
        scaler = cls(log1p=log1p if isinstance(log1p, bool) else tuple(log1p))
        scaler.feature_fields_ = tuple(d["feature_fields"])
        scaler.log1p_fields_ = tuple(d["log1p_fields"])
        n = len(scaler.feature_fields_)
        for name in ("medians", "means", "stds", "missing_fraction"):
            values = np.array(d.get(name, [0.0] * n), dtype=np.float64)
            if values.shape != (n,):
                raise ValueError(f"FeatureScaler state {name!r} has {values.size} values for {n} features")
            setattr(scaler, f"{name}_", values)
        scaler.n_outputs_ = 2 * n
        return scaler
