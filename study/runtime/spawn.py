"""``--workers K``: K local worker processes on one storage, the cores or GPUs shared between them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import torch

from study.config import Config
from study.runtime.signals import Terminated, signals_deferred


def cpu_threads_per_worker(n_workers: int) -> int:
    """Intra-op threads for each of ``n_workers`` CPU workers: the usable cores split between them."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, cores // max(n_workers, 1))


def spawn_workers(config: Config, *, n: int, quiet: bool = True) -> int:
    """K local worker processes on one storage, spread over the visible GPUs; returns the worst exit code.

    The storage URL travels in the environment, not on the command line, where ``ps`` would show a
    password."""
    n_gpus = torch.cuda.device_count()
    on_cpu = n_gpus == 0 or config.study.device == "cpu"
    threads = cpu_threads_per_worker(n)
    procs = []
    for i in range(n):
        env = dict(os.environ, STUDY_STORAGE=config.storage.url)
        if n_gpus > 1 and "CUDA_VISIBLE_DEVICES" not in os.environ:
            env["CUDA_VISIBLE_DEVICES"] = str(i % n_gpus)
        if on_cpu and "OMP_NUM_THREADS" not in os.environ:  # K workers share the cores instead of fighting
            env["OMP_NUM_THREADS"] = str(threads)
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        cmd = [sys.executable, "-m", "study", "worker", "--name", config.study.name,
               "--worker-index", str(i + 1)]
        if config.study.timeout:
            cmd += ["--timeout", str(config.study.timeout)]
        if config.study.device != "auto":
            cmd += ["--device", config.study.device]
        if quiet:
            cmd.append("--quiet")
        procs.append(subprocess.Popen(cmd, env=env))
    codes = []
    try:
        for p in procs:
            codes.append(p.wait())
    except KeyboardInterrupt as exc:
        sig = signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT
        with signals_deferred():
            for p in procs:
                if p.poll() is None:
                    p.send_signal(sig)
            for p in procs:
                p.wait()
        raise
    return max(codes, key=lambda code: (code != 0, code))
