"""`evalkit --version`: evalkit's version and the number-producing packages', read only when asked."""

from __future__ import annotations

import argparse
import sys

from ..versions import version_text

__all__ = ["VersionAction"]


class VersionAction(argparse.Action):
    """`--version`: evalkit's version and the number-producing packages' (read only when asked)."""

    def __init__(self, option_strings, dest, **kwargs):
        kwargs.setdefault(
            "help", "show the versions of evalkit and of the packages that produce its numbers, then exit"
        )
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            print(version_text(), flush=True)
        except BrokenPipeError:  # `evalkit --version | head -1`: the reader has what it wanted
            sys.stdout = None
        parser.exit()
