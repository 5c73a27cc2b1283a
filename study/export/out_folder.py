"""Putting an export in place at ``--out``: written to a fresh folder beside it, then moved in by one rename,
or with ``--force`` replacing only the files the previous export's manifest names (the user's other files
stay), never through a symbolic link; a place that cannot be written is one paragraph."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from study.errors import UserInputError
from study.export.manifest import owned_files

WRITE_ERRORS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOTDIR,
                 errno.EISDIR, errno.EEXIST, errno.ENOENT)


def unwritable(out: Path, exc: OSError) -> UserInputError:
    return UserInputError(f"Cannot write the exported model to {out}: {exc.strerror or exc}. Nothing was "
                          "written there. Choose a folder you can write to (and with room for the weights) "
                          "with --out.")


def prepare_out(out: Path, *, force: bool) -> tuple[Path, list[str]]:
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
        raise unwritable(out, exc) from None
    return tmp, owned


def _through_link(out: Path, name: str) -> bool:
    """Whether ``out/name`` passes through a symbolic link (a folder of the export replaced by one)."""
    parts = Path(name).parts
    return any((out.joinpath(*parts[:i])).is_symlink() for i in range(1, len(parts)))


def replace_out(out: Path, tmp: Path, owned: list[str]) -> None:
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
