"""The per-user cache: where it lives ($STUDY_CACHE_DIR, $XDG_CACHE_HOME/study, ~/.cache/study), shared by
every working folder (a second folder on the same data skips the zero-shot computation), bounded, shown and
cleared by ``study cache``, and whole when two processes fill it at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from study.data.tokenize import default_cache_dir

from study.cli import main
from study.runtime.cache import cache_usage, trim_cache
from tests.messages import assert_says


def test_the_cache_folder_follows_xdg(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("STUDY_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "study"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "study"


def test_a_second_folder_finds_the_zero_shot_scores_ready(monkeypatch, tmp_path, tiny_bert) -> None:
    from study.models import zero_shot

    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path / "cache"))
    queries, texts = ["red shoe", "grey sofa"] * 3, ["red running shoe", "sofa cover", "mug"] * 2
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    started = time.perf_counter()
    first = zero_shot.zero_shot_cosine(queries, texts, model_dir=tiny_bert, device=torch.device("cpu"))
    computed = time.perf_counter() - started
    zero_shot._MEMORY.clear()  # a new process
    monkeypatch.chdir(tmp_path / "b")

    def never(*args, **kwargs):
        raise AssertionError("the zero-shot cosine was computed again")

    monkeypatch.setattr(zero_shot, "embed_texts", never)
    started = time.perf_counter()
    again = zero_shot.zero_shot_cosine(queries, texts, model_dir=tiny_bert, device=torch.device("cpu"))
    print(f"zero-shot cosine: computed in {computed:.3f} s, read from the per-user cache in "
          f"{time.perf_counter() - started:.3f} s")
    np.testing.assert_array_equal(first, again)
    assert not (tmp_path / "a" / ".cache").exists()


def test_study_cache_shows_sizes_per_kind_and_clears(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("STUDY_CACHE_DIR", str(tmp_path))
    (tmp_path / "tokens").mkdir()
    (tmp_path / "zero_shot").mkdir()
    (tmp_path / "tokens" / "a.npz").write_bytes(b"x" * 2_000_000)
    (tmp_path / "zero_shot" / "b.npy").write_bytes(b"x" * 1_000_000)
    assert main(["cache"]) == 0
    out = capsys.readouterr().out
    assert_says(out, f"cache {tmp_path}", "3.0 MB", "tokens 1 files 2.0 MB", "zero_shot 1 files 1.0 MB")
    assert main(["cache", "clear", "token"]) == 2
    assert_says(capsys.readouterr().err, "holds no 'token'. Did you mean 'tokens'?")
    assert main(["cache", "clear", "tokens"]) == 0
    assert_says(capsys.readouterr().out, "2.0 MB freed")
    assert [u.kind for u in cache_usage(tmp_path) if u.files] == ["zero_shot"]
    assert main(["cache", "clear"]) == 0
    assert cache_usage(tmp_path) == []


def test_trim_keeps_the_cache_under_its_limit_least_recently_used_first(tmp_path) -> None:
    (tmp_path / "tokens").mkdir()
    (tmp_path / "hidden").mkdir()
    now = time.time()
    for i, age in enumerate((3000, 2000, 1000, 10)):  # seconds since last use
        path = tmp_path / "tokens" / f"{i}.npz"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (now - age, now - age))
    (tmp_path / "hidden" / "big.bin").write_bytes(b"x" * 10_000)  # bounded by its own limit
    assert trim_cache(tmp_path, budget=2000, min_age=60) == 2000
    assert sorted(p.name for p in (tmp_path / "tokens").iterdir()) == ["2.npz", "3.npz"]
    assert trim_cache(tmp_path, budget=0, min_age=60) == 1000  # the file in use a moment ago stays
    assert (tmp_path / "tokens" / "3.npz").exists() and (tmp_path / "hidden" / "big.bin").exists()


def test_two_processes_filling_the_cache_at_once_leave_whole_files(tmp_path, tiny_bert, repo_root) -> None:
    code = (
        "import sys\n"
        "from study.data.tokenize import tokenize_pairs\n"
        "queries = [f'query {i}' for i in range(3000)]\n"
        "texts = [f'product text number {i} ' * 3 for i in range(3000)]\n"
        f"out = tokenize_pairs(queries, texts, model_dir={str(tiny_bert)!r}, max_length=32)\n"
        "print(int(out.lengths.sum()))\n"
    )
    env = {**os.environ, "STUDY_CACHE_DIR": str(tmp_path), "PYTHONPATH": str(repo_root)}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    assert results[0][0] == results[1][0]
    files = list((tmp_path / "tokens").iterdir())
    assert len(files) == 1 and files[0].suffix == ".npz"  # no temporary file left behind
    with np.load(files[0]) as z:
        assert int(z["lengths"].sum()) == int(results[0][0])
    reread = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert reread.stdout == results[0][0]
    assert Path(files[0]).exists()
