"""``study``: tune BERT rankers for shop search with Optuna.

The Python API (``study.api``), loaded on first use so that ``import study`` stays light and the CLI's quick
commands never import torch::

    import study
    cfg = study.load_config(data="pairs.csv", overrides=["train.epochs=3"])
    s = study.run(cfg, n_trials=12)                # an optuna.Study
    study.trials_dataframe("pairs"); study.test_results("pairs")
    study.export_model("pairs", out="models/pairs")
    study.rank("models/pairs", candidates_df)

Subpackages: ``study.data`` (the canonical table of judged pairs, sources, splits, features),
``study.models`` (encoder, ranking network, losses, metrics, training), and the Optuna side in this package.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
_API = ("export_model", "load_config", "rank", "run", "test_results", "trials_dataframe")
__all__ = [
    "Ranker", "__version__", "export_model", "load_config", "rank", "run", "test_results", "trials_dataframe",
]


def __getattr__(name: str) -> Any:  # PEP 562: the API and its torch import load on first use
    if name in _API:
        from study import api  # torch: `import study` stays light

        return getattr(api, name)
    if name == "Ranker":
        from study.export.scoring import Ranker  # torch: as above

        return Ranker
    raise AttributeError(f"module 'study' has no attribute {name!r}")
