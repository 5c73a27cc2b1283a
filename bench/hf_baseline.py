"""The baseline users would otherwise pick: a Hugging Face ``Trainer`` fine-tune of
``AutoModelForSequenceClassification`` (one label, MSE on the gain) with its usual settings.

Usual settings: ``DataCollatorWithPadding`` (dynamic padding to the longest pair of each batch), the
default fused AdamW, linear decay with warmup, gradient clipping at 1.0, bf16 on CUDA, fp32 on the CPU,
``train_sampling_strategy`` "random" or "group_by_length" (transformers 5's name for ``group_by_length``).
It gets exactly the project's token ids (unpadded), so both sides see the same pairs.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import torch
from common import Run, steady_window
from study.data.batching import SplitTensors
from study.data.tokenize import load_tokenizer


class _PairDataset(torch.utils.data.Dataset):
    """Unpadded token ids per pair, as a tokenizer without padding would return them."""

    def __init__(self, split: SplitTensors, rows: np.ndarray) -> None:
        ids = split.input_ids.cpu().numpy()
        types = split.token_type_ids.cpu().numpy()
        labels = split.labels_np
        self.items = [
            {"input_ids": ids[r, : split.lengths[r]].tolist(),
             "token_type_ids": types[r, : split.lengths[r]].tolist(),
             "attention_mask": [1] * int(split.lengths[r]),
             "labels": float(labels[r])}
            for r in rows
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


class _CountingCollator:
    """``DataCollatorWithPadding`` that also counts the padded tokens it produces."""

    def __init__(self, tokenizer) -> None:
        from transformers import DataCollatorWithPadding

        self.inner = DataCollatorWithPadding(tokenizer)
        self.padded_tokens = 0
        self.batch_sizes: list[int] = []

    def __call__(self, features):
        batch = self.inner(features)
        self.padded_tokens += int(batch["input_ids"].numel())
        self.batch_sizes.append(len(features))
        return batch


def _epoch_timer():
    from transformers import TrainerCallback

    class EpochTimer(TrainerCallback):
        """Times the step loop (like the project's ``train_time``) and every step, end to end."""

        def __init__(self) -> None:
            self.begin = self.end = 0.0
            self.step_ends: list[float] = []
            self.sync = lambda: None

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.sync()
            self.begin = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step in steady_window(state.max_steps):  # two syncs per epoch, none in between
                self.sync()
            self.step_ends.append(time.perf_counter())

        def on_epoch_end(self, args, state, control, **kwargs):
            self.sync()
            self.end = time.perf_counter()

    return EpochTimer()


def run_trainer(
    split: SplitTensors,
    *,
    model_dir: str,
    device: torch.device,
    batch_size: int,
    eval_batch_size: int,
    strategy: str,
    train_rows: np.ndarray | None = None,
    score: bool = True,
    n_layers: int = 0,
    seed: int = 0,
) -> Run:
    """One epoch of ``Trainer.train`` over ``train_rows`` of the split, then ``Trainer.predict`` on all of
    it."""
    import transformers
    from transformers import AutoModelForSequenceClassification, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback

    transformers.logging.set_verbosity_error()  # the new classifier's "MISSING" report, expected
    transformers.utils.logging.disable_progress_bar()
    tokenizer = load_tokenizer(model_dir)
    rows = np.arange(split.n_pairs) if train_rows is None else train_rows
    train_set = _PairDataset(split, rows)
    torch.manual_seed(seed)
    cut = {"num_hidden_layers": n_layers} if n_layers else {}  # the same first-k-layers cut as the project
    model = AutoModelForSequenceClassification.from_pretrained(model_dir, num_labels=1, **cut)
    collator = _CountingCollator(tokenizer)
    timer = _epoch_timer()
    if device.type == "cuda":
        timer.sync = lambda: torch.cuda.synchronize(device)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=batch_size,
            per_device_eval_batch_size=eval_batch_size,
            num_train_epochs=1,
            learning_rate=5e-5,
            weight_decay=0.01,
            warmup_steps=0.1,  # a float below 1 is a ratio of the steps in transformers 5
            lr_scheduler_type="linear",
            max_grad_norm=1.0,
            bf16=device.type == "cuda",
            use_cpu=device.type == "cpu",
            train_sampling_strategy=strategy,
            save_strategy="no",
            eval_strategy="no",
            report_to="none",
            disable_tqdm=True,
            seed=seed,
            dataloader_pin_memory=device.type == "cuda",
        )
        trainer = Trainer(model=model, args=args, train_dataset=train_set, data_collator=collator,
                          processing_class=tokenizer, callbacks=[timer])
        trainer.remove_callback(PrinterCallback)  # it prints the final metrics dict
        trainer.train()
        train_padded = collator.padded_tokens
        score_time = float("nan")
        if score:
            score_set = _PairDataset(split, np.arange(split.n_pairs))
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            trainer.predict(score_set)
            score_time = time.perf_counter() - t0
    train_batches = collator.batch_sizes[: len(timer.step_ends)]
    first, last = steady_window(len(timer.step_ends))
    return Run(
        name=f"HF Trainer ({strategy})",
        train_pairs=len(rows),
        train_real_tokens=int(split.lengths[rows].sum()),
        train_padded_tokens=train_padded,
        train_time_s=timer.end - timer.begin,
        score_pairs=split.n_pairs,
        score_time_s=score_time,
        step_pairs=train_batches[1:],
        step_times=np.diff(timer.step_ends).tolist(),
        steady_pairs=int(sum(train_batches[first:last])),
        steady_time_s=timer.step_ends[last - 1] - timer.step_ends[first - 1] if last > first else 0.0,
    )
