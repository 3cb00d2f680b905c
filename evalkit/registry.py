"""A name → implementation registry; evalkit's own entries and plug-ins arrive through entry points."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import lru_cache
from importlib.metadata import EntryPoints, entry_points
from types import ModuleType
from typing import Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry", "group_entries"]

T = TypeVar("T")


@lru_cache(maxsize=1)
def _installed_entry_points() -> EntryPoints:
    # One scan of the installed metadata per process, shared by every group. Python 3.11 returns
    # SelectableGroups here, 3.12 EntryPoints: both select by group.
    found = entry_points()
    return EntryPoints(point for group in found.groups for point in found.select(group=group))


def group_entries(group: str) -> EntryPoints:
    """The entry points installed packages declare in `group`."""
    return _installed_entry_points().select(group=group)


class Registry(Generic[T]):
    """A dict with a decorator that refuses duplicate names.

    Entries are declared as entry points in `group` (evalkit's own in its pyproject.toml, plug-ins
    in theirs) and loaded on first use. An entry point names either an object, registered under
    the entry point's name, or a module whose import registers its entries (with `register`).
    """

    def __init__(
        self,
        kind: str,
        group: str,
        has_builtins: bool = False,
        accepts: Callable[[object], bool] | None = None,
        expected: str = "",
    ):
        self.kind = kind
        self.group = group
        self.has_builtins = has_builtins  # evalkit declares entries in this group: none found is an install fault
        self.accepts = accepts  # what an entry point naming an object must point at (None: anything)
        self.expected = expected  # that, in words, for the message when it does not
        self._entries: dict[str, T] = {}
        self._plugins_loaded = False
        self._load_error: ConfigError | None = None

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        if name in self._entries:
            raise ConfigError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = obj

    def get(self, name: str) -> T:
        self._load_plugins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_plugins(self) -> None:
        if self._load_error is not None:  # asked again in the same process: the same answer, not half a registry
            raise self._load_error
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        try:
            for ep in sorted(group_entries(self.group), key=lambda ep: (ep.value, ep.name)):
                self._load_entry(ep)
            self._check_builtins()
        except ConfigError as err:
            self._load_error = err
            raise

    def _load_entry(self, ep) -> None:
        where = f"{self.kind} entry point {ep.name!r} ({ep.value})"
        try:
            target = ep.load()
        # SystemExit too: a plug-in that exits on import is named like any other broken one
        except (Exception, SystemExit) as err:  # noqa: BLE001 - a broken plug-in is named, not a traceback
            raise ConfigError(f"{where} cannot be loaded: {type(err).__name__}: {err}") from None
        if isinstance(target, ModuleType) or self._entries.get(ep.name) is target:
            return
        if self.accepts is not None and not self.accepts(target):
            raise ConfigError(f"{where} is a {type(target).__name__}, not {self.expected}")
        if ep.name in self._entries:
            raise ConfigError(f"{where} is named like another {self.kind}; rename the entry point")
        self.add(ep.name, target)

    def _check_builtins(self) -> None:
        if self.has_builtins and not self._entries:
            raise ConfigError(
                f"no {self.kind} is registered: the entry points of group {self.group} are "
                "missing; reinstall evalkit (pip install -e . in a checkout)"
            )
