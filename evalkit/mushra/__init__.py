"""MUSHRA (ITU-R BS.1534-3) analysis: screening, stats, anova, mixed, omnibus, design, plots, checks; ratings
imports and exports ratings (docs/ratings.md).

Running a test (definitions, stimuli, listeners) is shared by every test type and lives in
evalkit.listening; its functions stay reachable here under their old names (`mushra.create_test`).
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    from .. import listening

    if name in listening.__all__:
        return getattr(listening, name)
    raise AttributeError(f"module 'evalkit.mushra' has no attribute {name!r}")
