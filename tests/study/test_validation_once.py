"""Each epoch's validation split is scored once: the per-query chart of a trial reuses the best epoch's
scores instead of scoring the split again."""

from __future__ import annotations

from collections import Counter

import study.models.inference as inference_module

from study.cli import main


def test_validation_is_scored_once_per_epoch(study_toml, monkeypatch) -> None:
    path = study_toml()
    calls: list[int] = []
    real = inference_module.predict

    def counting(model, split, **kw):
        calls.append(int(split.labels_np.size))
        return real(model, split, **kw)

    monkeypatch.setattr(inference_module, "predict", counting)
    assert main(["run", "--config", str(path), "--n-trials", "1", "--quiet", "--set", "train.epochs=2",
                 "--set", "train.patience=0", "--set", "study.baselines=false"]) == 0
    val, test = Counter(calls).most_common(2)  # the validation split, then the test split (scored once)
    assert val[1] == 3 and test[1] == 1  # epoch 0 (before training), 1 and 2; the trial's chart adds none
