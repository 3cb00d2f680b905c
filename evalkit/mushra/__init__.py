"""MUSHRA (ITU-R BS.1534-3) analysis: screening, stats, anova, mixed, omnibus, design, rating_plots, checks; ratings
imports and exports ratings (docs/ratings.md).

Running a test (definitions, stimuli, listeners) is shared by every test type and lives in
evalkit.listening; its functions stay reachable here under their old names (`mushra.create_test`), and
its modules under their old paths (`evalkit.mushra.spec` is `evalkit.listening.spec`, the same module).
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
from typing import Any

# old name -> module of evalkit.listening (three were renamed there after the move)
MOVED = {
    name: name
    for name in (
        "_check",
        "admin",
        "auth",
        "flow",
        "listener",
        "listeners",
        "playlog",
        "randomize",
        "safetext",
        "spec",
        "spec_parts",
        "stimuli",
        "tokens",
        "web",
    )
}
MOVED.update(demo="demo_mushra", results="responses", views="pages")


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports of `evalkit.mushra.<moved>` give the evalkit.listening module itself (one module, two names)."""

    def find_spec(self, fullname, path, target=None):
        parent, _, name = fullname.rpartition(".")
        return importlib.util.spec_from_loader(fullname, self) if parent == __name__ and name in MOVED else None

    def create_module(self, spec):
        module = importlib.import_module(f"evalkit.listening.{MOVED[spec.name.rpartition('.')[2]]}")
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = self.own_spec  # already imported under its new name: keep its own spec


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())


def __getattr__(name: str) -> Any:
    from .. import listening

    if name in listening.__all__:
        return getattr(listening, name)
    raise AttributeError(f"module 'evalkit.mushra' has no attribute {name!r}")
