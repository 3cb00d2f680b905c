"""The registry of listening-test types: evalkit's and plug-ins', all through the entry-point group
`evalkit.test_types` (evalkit's own are declared in its pyproject.toml and loaded on first use).

A type is a TestType instance exposed by an entry point, e.g. in a plug-in's pyproject.toml::

    [project.entry-points."evalkit.test_types"]
    triangle = "mypackage.triangle:TRIANGLE"

docs/listening.md says how to write one (a module and its player view).
"""

from __future__ import annotations

from ...registry import Registry
from .base import Condition, Item, Scale, TestType

__all__ = ["TEST_TYPES", "get_type", "type_names", "TestType", "Scale", "Condition", "Item"]

TEST_TYPES: Registry[TestType] = Registry("listening-test type", "evalkit.test_types", has_builtins=True)


def get_type(name: str) -> TestType:
    """The type registered under `name`; ConfigError naming the known ones otherwise."""
    return TEST_TYPES.get(name)


def type_names() -> list[str]:
    return TEST_TYPES.names()
