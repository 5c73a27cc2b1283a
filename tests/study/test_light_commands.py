"""The everyday read-only commands never import torch or transformers (they start in well under a second):
status, best, list, trials, compare and delete."""

from __future__ import annotations

import subprocess
import sys

import optuna

from tests.messages import assert_says


def test_read_only_commands_import_no_torch(tmp_path) -> None:
    db = f"sqlite:///{tmp_path / 'studies.db'}"
    study = optuna.create_study(study_name="s", storage=db, direction="maximize")
    study.set_user_attr("config", {"study": {"n_trials": 1, "metric": "ndcg@10"}})
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    code = (
        "import sys\n"
        "from study.cli import main\n"
        "for args in (['list'], ['status'], ['best', '--name', 's'], ['trials', 's'],\n"
        "             ['trials', 's', '--format', 'json']):\n"
        f"    assert main([*args, '--storage', {db!r}]) == 0, args\n"
        "heavy = sorted(m for m in ('torch', 'transformers', 'sklearn', 'plotly') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_says(proc.stdout, "HEAVY []")
