"""Commands that build on a finished study: report, dashboard, export, rank (filled in by later work)."""

from __future__ import annotations

import argparse
from typing import Callable


def add_parsers(subs: argparse._SubParsersAction, sub: Callable, storage_arg: Callable) -> None:
    return None
