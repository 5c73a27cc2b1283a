"""Optuna's private names stay behind one door: no module of the package but
``study/storage/optuna_private.py`` touches one. The scan reads every module's syntax tree for ``optuna._x``
/ ``optuna.storages._x`` imports and attribute chains, and for attribute access (or ``getattr``) on anything
but ``self`` / ``cls`` of a private name that the installed Optuna defines on its own classes (``_storage``,
``_study_id``, ``_trial_id``, ``_backend``, ``_max_retry``, ...); a planted violation shows that it fails."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = [ROOT / "study", ROOT / "data", ROOT / "models"]  # installed as study, study.data, study.models
DOOR = ROOT / "study" / "storage" / "optuna_private.py"


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@functools.cache
def optuna_private_names() -> frozenset[str]:
    """Private attribute and method names that the installed Optuna defines on its classes."""
    names: set[str] = set()
    for path in Path(optuna.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and _private(item.name):
                        names.add(item.name)
                    elif isinstance(item, (ast.Assign, ast.AnnAssign)):
                        targets = item.targets if isinstance(item, ast.Assign) else [item.target]
                        names.update(t.id for t in targets if isinstance(t, ast.Name) and _private(t.id))
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id == "self" and _private(node.attr)):
                names.add(node.attr)
    return frozenset(names)


def _rooted_at_optuna(node: ast.AST) -> list[str] | None:
    """``optuna.storages._heartbeat`` -> ["optuna", "storages", "_heartbeat"]; None when not from
    ``optuna``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) and node.id == "optuna" else None


def violations(path: Path) -> list[str]:
    """Each use of a private Optuna name in one file, as ``file:line: what``."""
    private_names = optuna_private_names()
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        what = None
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "optuna":
            module = node.module.split(".")
            names = (f"import of {node.module}.{a.name}" for a in node.names if _private(a.name))
            what = next((f"import of {'.'.join(module[:i + 1])}" for i, p in enumerate(module)
                         if _private(p)), next(names, None))
        elif isinstance(node, ast.Import):
            what = next((f"import of {a.name}" for a in node.names
                         if a.name.split(".")[0] == "optuna" and any(_private(p) for p in a.name.split("."))),
                        None)
        elif isinstance(node, ast.Attribute) and _private(node.attr):
            chain = _rooted_at_optuna(node)
            if chain is not None:
                what = ".".join(chain)
            elif node.attr in private_names and not (isinstance(node.value, ast.Name)
                                                     and node.value.id in ("self", "cls")):
                what = f"attribute {node.attr}"
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and node.args[1].value in private_names):
            what = f"{node.func.id}(..., {node.args[1].value!r})"
        if what:
            shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
            found.append(f"{shown}:{node.lineno}: {what}")
    return sorted(found, key=lambda line: int(line.split(":")[1]))


def test_the_scan_knows_optunas_private_names() -> None:
    assert {"_storage", "_study_id", "_trial_id", "_backend", "_max_retry"} <= optuna_private_names()


def test_no_private_optuna_name_outside_the_one_module() -> None:
    files = [p for folder in PACKAGE for p in sorted(folder.rglob("*.py")) if p != DOOR]
    assert len(files) > 60
    assert [v for p in files for v in violations(p)] == []


def test_the_door_itself_is_seen_by_the_scan() -> None:
    assert len(violations(DOOR)) >= 5  # the scan would find each of its uses elsewhere


def test_a_planted_violation_fails(tmp_path) -> None:
    planted = tmp_path / "planted.py"
    planted.write_text(
        "import optuna\n"
        "import optuna._imports\n"
        "from optuna.storages._heartbeat import is_heartbeat_enabled\n"
        "from optuna.storages import _CachedStorage\n"
        "def f(study, trial, storage, callback):\n"
        "    a = study._storage, study._study_id, trial._trial_id, callback._max_retry\n"
        "    b = getattr(storage, '_backend', storage)\n"
        "    c = optuna.storages._heartbeat.BaseHeartbeat\n"
        "    return self._storage, a, b, c  # self: the class's own business\n"
    )
    found = violations(planted)
    assert sorted(line.split(": ", 1)[1] for line in found) == sorted([
        "import of optuna._imports", "import of optuna.storages._heartbeat",
        "import of optuna.storages._CachedStorage", "attribute _storage", "attribute _study_id",
        "attribute _trial_id", "attribute _max_retry", "getattr(..., '_backend')",
        "optuna.storages._heartbeat",
    ])
