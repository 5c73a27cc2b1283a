"""The CUDA path: a tiny trial in bf16, resume, TF32, CUDA against CPU scores, a real out-of-memory.

Every test is marked ``cuda`` and skipped without CUDA; ``bench/gpu_proof.py`` runs them with ``-m cuda``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from study.data.batching import SplitTensors, build_split_tensors
from study.data.features import FeatureScaler
from study.data.splits import split_by_query
from study.data.synthetic import generate_catalogue
from study.models.device import enable_fast_math
from study.models.ranker import RankerConfig, RankingNet
from study.models.train import TrainConfig, fit, predict

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]
CPU = torch.device("cpu")
CUDA = torch.device("cuda")


@pytest.fixture(scope="module")
def small_data(tiny_bert: Path):
    pairs = generate_catalogue(n_queries=40, items_per_query=8, seed=3)
    splits = split_by_query(pairs, val_fraction=0.25, test_fraction=0.25, seed=0)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)

    def tensors(split, device: torch.device) -> SplitTensors:
        return build_split_tensors(split, scaler.transform(split.frame), device=device,
                                   model_dir=str(tiny_bert), max_length=48)

    return splits, scaler, tensors


def new_model(tiny_bert: Path, n_features: int, *, seed: int = 0) -> RankingNet:
    torch.manual_seed(seed)
    config = RankerConfig(variant="fusion", architecture="cross", encoder=str(tiny_bert), dropout=0.0)
    return RankingNet(config, n_features=n_features)


def test_a_tiny_trial_trains_end_to_end_in_bf16(small_data, tiny_bert) -> None:
    splits, scaler, tensors = small_data
    train, val = tensors(splits.train, CUDA), tensors(splits.val, CUDA)
    model = new_model(tiny_bert, scaler.n_outputs_)
    cfg = TrainConfig(epochs=2, batch_size=16, encoder_lr=1e-3, head_lr=3e-3, patience=0, precision="bf16")
    result = fit(model, train, val, cfg)
    assert result.epochs_run == 2 and len(result.history) == 3
    assert all(np.isfinite(h["ndcg@10"]) for h in result.history)
    assert np.isfinite(result.history[-1]["train_loss"])
    assert next(model.parameters()).device.type == "cuda"
    assert next(model.parameters()).dtype == torch.float32  # autocast: the weights stay fp32
    assert result.peak_memory_mb > 0 and result.pairs_per_second > 0


def test_resume_on_cuda_gives_the_straight_run_metrics(small_data, tiny_bert, tmp_path) -> None:
    splits, scaler, tensors = small_data
    train, val = tensors(splits.train, CUDA), tensors(splits.val, CUDA)
    cfg = TrainConfig(epochs=3, batch_size=16, encoder_lr=1e-3, head_lr=3e-3, patience=0, seed=1,
                      precision="fp32")
    straight = fit(new_model(tiny_bert, scaler.n_outputs_), train, val, cfg)

    class Stop(Exception):
        pass

    def stop_after_first(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == 1:
            raise Stop

    with pytest.raises(Stop):
        fit(new_model(tiny_bert, scaler.n_outputs_), train, val, cfg, on_epoch_end=stop_after_first,
            checkpoint_path=tmp_path / "last.ckpt")
    resumed = fit(new_model(tiny_bert, scaler.n_outputs_, seed=123), train, val, cfg,
                  resume_from=tmp_path / "last.ckpt")
    assert resumed.resumed_from_epoch == 1 and resumed.epochs_run == 3
    # CUDA backward kernels (index_put, atomics) are not bit-deterministic: equal to 1e-3, not bit for bit.
    # The encoder's dropout draws from the CUDA generator, so this also checks that resuming restores it.
    for key in ("ndcg@10", "mrr"):
        assert resumed.history[-1][key] == pytest.approx(straight.history[-1][key], abs=1e-3)
    assert resumed.history[-1]["train_loss"] == pytest.approx(straight.history[-1]["train_loss"], rel=1e-2)


def test_enable_fast_math_turns_tf32_on() -> None:
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        enable_fast_math(CPU)
        assert not torch.backends.cuda.matmul.allow_tf32  # the CPU changes nothing
        enable_fast_math(CUDA)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def test_cuda_scores_equal_cpu_scores(small_data, tiny_bert) -> None:
    splits, scaler, tensors = small_data
    model = new_model(tiny_bert, scaler.n_outputs_)
    cpu_scores = predict(model, tensors(splits.val, CPU), batch_size=64, dtype=torch.float32)
    model.to(CUDA)
    val = tensors(splits.val, CUDA)
    before = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False  # true fp32 matmuls for the 1e-4 comparison
        fp32 = predict(model, val, batch_size=64, dtype=torch.float32)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
    bf16 = predict(model, val, batch_size=64, dtype=torch.bfloat16)
    np.testing.assert_allclose(fp32, cpu_scores, atol=1e-4, rtol=1e-4)
    # bf16 keeps 8 bits of mantissa: 2e-2 of the score scale
    scale = max(float(np.abs(cpu_scores).max()), 1.0)
    np.testing.assert_allclose(bf16, cpu_scores, atol=2e-2 * scale, rtol=0)


def test_a_real_cuda_out_of_memory_fails_only_that_trial(write_study_config, trials_of, monkeypatch) -> None:
    import optuna
    from optuna.trial import TrialState

    import study.objective as objective_mod
    from study.cli import main

    real_fit = objective_mod.fit
    calls: list[str] = []

    def fit_that_runs_out_of_memory_once(model, train, val, cfg, **kw):
        calls.append(kw["checkpoint_path"].parent.name)
        if len(calls) == 1:  # 2**42 fp32 numbers: 16 TiB, more than any GPU holds
            torch.empty(2**42, dtype=torch.float32, device=train.labels.device)
        return real_fit(model, train, val, cfg, **kw)

    monkeypatch.setattr(objective_mod, "fit", fit_that_runs_out_of_memory_once)
    path = write_study_config(n_trials=2, epochs=1)
    assert main(["run", "--config", str(path), "--quiet", "--device", "cuda"]) == 0
    trials: list[optuna.trial.FrozenTrial] = trials_of(path)
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs["fail_reason"] == "out_of_memory"
    assert [t.state for t in trials[1:]] == [TrialState.COMPLETE, TrialState.COMPLETE]
    assert torch.cuda.memory_allocated() < 2**30  # nothing of the failed trial is left on the GPU
