"""The registry of listening-test types: built-in ones and plug-ins (entry-point group `evalkit.test_types`).

A plug-in type is a TestType instance exposed by an entry point, e.g. in its pyproject.toml::

    [project.entry-points."evalkit.test_types"]
    triangle = "mypackage.triangle:TRIANGLE"

docs/listening.md says how to write one (a module and its player view).
"""

from __future__ import annotations

from ...registry import Registry
from .base import Condition, Item, Scale, TestType

__all__ = ["TEST_TYPES", "get_type", "type_names", "TestType", "Scale", "Condition", "Item", "BUILTIN"]

TEST_TYPES: Registry[TestType] = Registry("listening-test type", "evalkit.test_types")
BUILTIN = ("mushra", "acr", "dcr", "ccr", "ab", "abx", "bs1116")  # modules of this package, one type each
_loaded = False


def _load_builtin() -> None:
    """Import the built-in type modules once; each registers its type (as a plug-in would, by name)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from importlib import import_module

    for name in BUILTIN:
        module = import_module(f"{__name__}.{name}")
        TEST_TYPES.add(name, module.TYPE)


def get_type(name: str) -> TestType:
    """The type registered under `name`; ConfigError naming the known ones otherwise."""
    _load_builtin()
    return TEST_TYPES.get(name)


def type_names() -> list[str]:
    _load_builtin()
    return TEST_TYPES.names()
