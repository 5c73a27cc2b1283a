"""``study cache``: the per-user cache (zero-shot cosines, tokens, frozen layers' hidden states), its size
per kind, and ``study cache clear [KIND]``. No torch."""

from __future__ import annotations

import argparse

from study.cli.base import Command


class Cache(Command):
    name = "cache"
    help = ("Show the per-user cache (zero-shot scores, tokens, hidden states; shared by every folder) and "
            "its size per kind, or clear it.")
    example = ("study cache                # where it is, and its size per kind\n"
               "  study cache clear          # delete all of it\n"
               "  study cache clear tokens   # one kind")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("action", nargs="?", choices=("show", "clear"), default="show",
                            help="show (default) or clear")
        parser.add_argument("kind", nargs="?", help="with clear: only this kind (zero_shot, tokens, hidden)")

    def take_action(self, args: argparse.Namespace) -> int:
        from study.data.tokenize import default_cache_dir  # numpy: on use only
        from study.errors import UserInputError, did_you_mean
        from study.runtime.cache import cache_budget_bytes, cache_usage, clear_cache

        root = default_cache_dir()
        usage = cache_usage(root)
        if args.action == "clear":
            if args.kind and args.kind not in {u.kind for u in usage}:
                raise UserInputError(f"The cache {root} holds no {args.kind!r}."
                                     + did_you_mean(args.kind, [u.kind for u in usage])
                                     + f" It holds: {', '.join(u.kind for u in usage) or 'nothing'}.")
            freed = clear_cache(root, args.kind)
            print(f"cleared {args.kind or 'the cache'} in {root}: {freed / 1e6:,.1f} MB freed")
            return 0
        total = sum(u.bytes for u in usage)
        print(f"cache {root} ($STUDY_CACHE_DIR, else $XDG_CACHE_HOME/study, else ~/.cache/study): "
              f"{total / 1e6:,.1f} MB; limit {cache_budget_bytes() / 1e9:g} GB (STUDY_CACHE_GB; hidden: "
              "STUDY_HIDDEN_CACHE_GB)")
        for u in usage:
            print(f"  {u.kind:<12} {u.files:>7,} files  {u.bytes / 1e6:>10,.1f} MB")
        return 0


COMMAND = Cache()
